// What a target is: OS, package manager, init system, containerd and Node versions, FUSE. One
// shell script gathers it all in one round trip. Under an offline root, binaries are probed
// with chroot (when the root can run them) and files are looked at under the root.
import {parseContainerdVersion, type ContainerdVersion} from './containerd-config.js'
import {shellQuote} from './transport.js'

export type PackageManager = 'apt-get' | 'dnf' | 'yum'

export interface NodeFacts {
  osId: string
  osName: string
  packageManager?: PackageManager
  systemd: boolean
  containerd?: ContainerdVersion
  /** `uname -m` of the machine the commands run on. */
  arch: string
  /**
   * A Node.js on the node of the same major version as the one lazyctl runs on here (path as seen
   * from the node, version): the shipped native addons (better-sqlite3) are built for that ABI.
   */
  node?: {path: string; version: string}
  kubelet: boolean
  /** Path of fusermount3 / fusermount, if FUSE's userspace is installed. */
  fuseBinary?: string
  /** FUSE is available in the running kernel (live nodes only). */
  fuseKernel: boolean
  uid: number
}

/** The major version of the Node.js lazyctl runs on (and ships): a node's own is used only if it matches. */
const RUNTIME_MAJOR = process.versions.node.split('.')[0]

export function detectScript(root: string): string {
  return `R=${shellQuote(root)}
run() { if [ -z "$R" ]; then "$@"; else chroot "$R" "$@"; fi; }
if [ -r "$R/etc/os-release" ]; then (. "$R/etc/os-release"; echo "os_id=$ID"; echo "os_name=$PRETTY_NAME"); fi
for pm in apt-get dnf yum; do if [ -x "$R/usr/bin/$pm" ] || [ -x "$R/bin/$pm" ]; then echo "pm=$pm"; break; fi; done
if [ -z "$R" ]; then [ -d /run/systemd/system ] && echo systemd=1
else { [ -e "$R/lib/systemd/systemd" ] || [ -e "$R/usr/lib/systemd/systemd" ] || [ -d "$R/etc/systemd/system" ]; } && echo systemd=1; fi
echo "containerd=$(run containerd --version 2>/dev/null | head -n1)"
np=$(run sh -c 'command -v node' 2>/dev/null); [ -n "$np" ] && echo "node=$np $(run "$np" --version 2>/dev/null)"
echo "arch=$(uname -m)"
for k in "$R/etc/systemd/system/kubelet.service" "$R/usr/lib/systemd/system/kubelet.service" "$R/lib/systemd/system/kubelet.service" "$R/usr/bin/kubelet"; do [ -e "$k" ] && { echo kubelet=1; break; }; done
for f in fusermount3 fusermount; do for d in /usr/bin /bin /usr/sbin /sbin; do [ -x "$R$d/$f" ] && { echo "fuse=$d/$f"; break 2; }; done; done
if [ -z "$R" ] && grep -qw fuse /proc/filesystems 2>/dev/null; then echo fusekernel=1; fi
echo "uid=$(id -u)"
`
}

export function parseFacts(output: string): NodeFacts {
  const kv = new Map<string, string>()
  for (const line of output.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim())
  }
  const facts: NodeFacts = {
    osId: kv.get('os_id') || 'unknown',
    osName: kv.get('os_name') || kv.get('os_id') || 'unknown OS',
    systemd: kv.get('systemd') === '1',
    arch: kv.get('arch') || 'unknown',
    kubelet: kv.get('kubelet') === '1',
    fuseKernel: kv.get('fusekernel') === '1',
    uid: Number(kv.get('uid') ?? -1),
  }
  const pm = kv.get('pm')
  if (pm === 'apt-get' || pm === 'dnf' || pm === 'yum') facts.packageManager = pm
  const containerd = parseContainerdVersion(kv.get('containerd') ?? '')
  if (containerd) facts.containerd = containerd
  const node = /^(\S+)\s+v(\d+)\.(\d+)\.(\d+)/.exec(kv.get('node') ?? '')
  if (node && node[2] === RUNTIME_MAJOR) facts.node = {path: node[1]!, version: `${node[2]}.${node[3]}.${node[4]}`}
  const fuse = kv.get('fuse')
  if (fuse) facts.fuseBinary = fuse
  return facts
}

export function describeFacts(f: NodeFacts): string {
  return [
    f.osName,
    `${f.arch}`,
    f.packageManager ?? 'no package manager',
    f.systemd ? 'systemd' : 'no systemd',
    f.containerd ? `containerd ${f.containerd.version}` : 'containerd not found',
    f.node ? `node ${f.node.version}` : `no node ${RUNTIME_MAJOR}.x`,
    f.kubelet ? 'kubelet' : 'no kubelet',
  ].join(', ')
}
