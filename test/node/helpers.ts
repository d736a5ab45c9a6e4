// Shared pieces of the node tests: a realistic EKS node root filesystem, the CLI as a child
// process, and checksums of a whole tree (to prove a run changed nothing).
import {execFileSync, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {APP_ENTRIES} from '../../src/node/bundle.js'
import {PACKAGE_ROOT} from '../../src/paths.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

export const EKS_CONFIG = join(PACKAGE_ROOT, 'test', 'node', 'fixtures', 'eks-containerd-config.toml')

const AL2_OS_RELEASE = `NAME="Amazon Linux"
VERSION="2"
ID="amzn"
ID_LIKE="centos rhel fedora"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
ANSI_COLOR="0;33"
`

const KUBELET_UNIT = `[Unit]
Description=Kubernetes Kubelet
After=containerd.service
Requires=containerd.service

[Service]
ExecStart=/usr/bin/kubelet --config /etc/kubernetes/kubelet/kubelet-config.json --kubeconfig /var/lib/kubelet/kubeconfig --container-runtime-endpoint unix:///run/containerd/containerd.sock
Restart=on-failure

[Install]
WantedBy=multi-user.target
`

/**
 * An offline root like an EKS AL2 node's: containerd's config as the AMI writes it, os-release,
 * kubelet's unit, and FUSE's fusermount (a copy of this machine's real binary; AL2 ships fuse).
 */
export function makeEksRoot(label = 'node-root'): string {
  const root = rigTempDir(label)
  mkdirSync(join(root, 'etc/containerd'), {recursive: true})
  mkdirSync(join(root, 'etc/systemd/system'), {recursive: true})
  mkdirSync(join(root, 'usr/bin'), {recursive: true})
  copyFileSync(EKS_CONFIG, join(root, 'etc/containerd/config.toml'))
  writeFileSync(join(root, 'etc/os-release'), AL2_OS_RELEASE)
  writeFileSync(join(root, 'etc/systemd/system/kubelet.service'), KUBELET_UNIT)
  copyFileSync('/usr/bin/fusermount3', join(root, 'usr/bin/fusermount3'))
  return root
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/**
 * A private copy of the built app (dist, bin, proto, package.json; node_modules linked). The
 * shared tree is rebuilt by other work at any moment; setup ships the app it runs from, so a
 * test that compares two runs needs an app that holds still.
 */
export interface FrozenApp {
  dir: string
  entry: string
  remove(): void
}

export function freezeApp(): FrozenApp {
  const dir = rigTempDir('app')
  mkdirSync(join(dir, 'dist'))
  for (const entry of APP_ENTRIES) execFileSync('cp', ['-a', join(PACKAGE_ROOT, entry), join(dir, entry)])
  symlinkSync(join(PACKAGE_ROOT, 'node_modules'), join(dir, 'node_modules'))
  return {dir, entry: join(dir, 'bin', 'run.js'), remove: () => removeDir(dir)}
}

/** Runs `lazyctl ARGS` from `app` without blocking the test's event loop. */
export function runCli(app: FrozenApp, args: string[], options: {env?: NodeJS.ProcessEnv} = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = {...process.env, ...options.env}
    // Tests offer exactly the keys they name: no agent of the caller's, unless the test brings one.
    if (!options.env?.SSH_AUTH_SOCK) delete env.SSH_AUTH_SOCK
    const child = spawn(process.execPath, [app.entry, ...args], {env, stdio: ['ignore', 'pipe', 'pipe']})
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? 1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')}))
  })
}

/** sha256 of every file (and the target of every symlink) under `dir`, by relative path. */
export function treeChecksums(dir: string): Map<string, string> {
  const sums = new Map<string, string>()
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${entry}` : entry
      const st = lstatSync(join(dir, r))
      if (st.isDirectory()) walk(r)
      else if (st.isSymbolicLink()) sums.set(r, `link:${readlinkSync(join(dir, r))}`)
      else sums.set(r, createHash('sha256').update(readFileSync(join(dir, r))).digest('hex') + `:${(st.mode & 0o777).toString(8)}`)
    }
  }
  walk('')
  return sums
}

/** Every leaf of a parsed TOML tree as `a.b.c` → value (arrays as one leaf). */
export function leaves(tree: unknown, prefix: string[] = [], out = new Map<string, unknown>()): Map<string, unknown> {
  if (tree && typeof tree === 'object' && !Array.isArray(tree) && !(tree instanceof Date)) {
    for (const [k, v] of Object.entries(tree)) leaves(v, [...prefix, k], out)
  } else {
    out.set(JSON.stringify(prefix), tree)
  }
  return out
}

/** Lines of the private key's body, to prove no output or log ever contains one. */
export function secretFragments(privateKeyFile: string): string[] {
  return readFileSync(privateKeyFile, 'utf8')
    .split('\n')
    .filter((l) => l && !l.startsWith('-----'))
    .map((l) => l.slice(0, 40))
}
