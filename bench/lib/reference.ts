// The reference stargz snapshotter (built from Debian's Go packages by
// ../shared/tools/stargz-reference/build.sh) beside lazyctl: its own containerd whose `stargz`
// proxy plugin points at the reference daemon, pulled with `ctr-remote image rpull --plain-http`
// and run with `ctr run --snapshotter stargz`. In containerd 1.6 the client resolves and fetches,
// so these clients must run in the benchmark's network namespace (they inherit ours).
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {startContainerd, unmountUnder, type ContainerdRig} from '../../test/rig/containerd.js'
import {requireCommand, startService, waitUntilReady, type ServiceProcess} from '../../test/rig/process.js'
import {removeDir, rigTempDir} from '../../test/rig/tmp.js'
import {PACKAGE_ROOT} from '../../src/paths.js'
import {probeSnapshotter} from '../../src/snapshotter/status-service.js'

export const REFERENCE_BINARY = process.env.LAZYCTL_STARGZ_REFERENCE ?? '/tmp/stargz-reference'
// shared/ sits beside the repository (as in CI's clone): found from the package root, not a fixed path.
const BUILD_SCRIPT = join(dirname(PACKAGE_ROOT), 'shared', 'tools', 'stargz-reference', 'build.sh')

export interface ReferenceStack {
  dir: string
  containerd: ContainerdRig
  socket: string
  root: string
  /**
   * A clean start, in a node's order: the daemon on a fresh root (wiped first), then a fresh
   * containerd; resolves when containerd reaches the daemon through its proxy plugin.
   */
  restart(): Promise<ServiceProcess>
  snapshotterPid(): number | undefined
  /** Stops the daemon and unmounts what it left; with `wipe`, removes its root. */
  stopSnapshotter(options?: {wipe?: boolean}): Promise<void>
  /** `ctr-remote` / `ctr` argument vectors against this containerd. */
  ctrRemote(args: string[]): [string, string[]]
  ctr(args: string[]): [string, string[]]
  stop(): Promise<void>
}

/** The reference binary, built first if missing (about 15 s). */
export function ensureReferenceBinary(): string {
  if (existsSync(REFERENCE_BINARY)) return REFERENCE_BINARY
  requireCommand('go', 'golang-go')
  if (!existsSync(BUILD_SCRIPT)) throw new Error(`${REFERENCE_BINARY} is missing and ${BUILD_SCRIPT} is not there to build it`)
  execFileSync(BUILD_SCRIPT, [REFERENCE_BINARY], {stdio: 'inherit'})
  return REFERENCE_BINARY
}

export async function startReferenceStack(): Promise<ReferenceStack> {
  const binary = ensureReferenceBinary()
  requireCommand('ctr-remote', 'stargz-snapshotter')
  const dir = rigTempDir('reference')
  const socket = join(dir, 'stargz.sock')
  const root = join(dir, 'root')
  let containerd: ContainerdRig
  try {
    containerd = await startContainerd({snapshotterSocket: socket})
  } catch (err) {
    removeDir(dir)
    throw err
  }
  let daemon: ServiceProcess | undefined
  let runs = 0
  const stack: ReferenceStack = {
    dir,
    get containerd() {
      return containerd
    },
    socket,
    root,
    async restart() {
      await stack.stopSnapshotter({wipe: true})
      await containerd.stop()
      mkdirSync(root, {recursive: true})
      const svc = startService('stargz-reference', binary, ['-address', socket, '-root', root], {logFile: join(dir, `reference-${++runs}.log`)})
      daemon = svc
      await waitUntilReady(svc, 'its socket answering', async () => (await probeSnapshotter(socket, 500)).state !== 'absent')
      containerd = await startContainerd({snapshotterSocket: socket})
      // containerd dials the proxy plugin lazily; a snapshots call through it proves the path.
      await waitUntilReady(svc, 'containerd reaching it', async () => {
        execFileSync('ctr', ['-a', containerd.address, '-n', containerd.namespace, 'snapshots', '--snapshotter', 'stargz', 'ls'], {stdio: 'ignore', timeout: 5000})
        return true
      })
      return svc
    },
    snapshotterPid: () => (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null ? daemon.child.pid : undefined),
    async stopSnapshotter(options = {}) {
      await daemon?.stop()
      daemon = undefined
      unmountUnder(root)
      if (options.wipe) removeDir(root)
    },
    ctrRemote: (args) => ['ctr-remote', ['-a', containerd.address, '-n', containerd.namespace, ...args]],
    ctr: (args) => ['ctr', ['-a', containerd.address, '-n', containerd.namespace, ...args]],
    async stop() {
      await stack.stopSnapshotter()
      await containerd.stop()
      unmountUnder(dir)
      removeDir(dir)
    },
  }
  return stack
}
