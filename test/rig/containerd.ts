// A private containerd for one test file: its own root, state, socket and config, with a
// `stargz` proxy snapshotter plugin pointing at a socket of the test's (lazyctl's snapshotter
// or the reference one may listen there; containerd only dials it when asked to use it).
import {writeFileSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {execFileSync} from 'node:child_process'
import {ContainerdConnection} from '../../src/containerd/connection.js'
import {serverVersion} from '../../src/containerd/version.js'
import {requireCommand, startService, waitUntilReady, type ServiceProcess} from './process.js'
import {removeDir, rigTempDir} from './tmp.js'

export interface ContainerdRig {
  /** containerd's gRPC socket path. */
  address: string
  /** A namespace unique to this rig (cgroup paths are shared between daemons). */
  namespace: string
  root: string
  state: string
  dir: string
  configFile: string
  /** Where containerd expects the `stargz` proxy snapshotter. */
  snapshotterSocket: string
  process: ServiceProcess
  /** Runs `ctr` against this containerd and namespace; returns stdout. */
  ctr(args: string[], options?: {input?: string}): string
  stop(): Promise<void>
}

export interface ContainerdRigOptions {
  /** Extra TOML appended to the config (e.g. CRI settings); a function gets the rig's dir. */
  extraConfig?: string | ((dir: string) => string)
  /**
   * The whole config, from the rig's paths (a config written by `lazyctl node setup`, given the
   * test's private root, state, socket and opt dir). Replaces the rig's own config.
   */
  configText?: (paths: {dir: string; root: string; state: string; address: string; snapshotterSocket: string}) => string
  /** Keep containerd's CRI plugin (disabled by default: it is slow to start and not needed by most tests). */
  cri?: boolean
  /** containerd's socket; defaults to a path inside the rig dir (set it when a service must know it first). */
  address?: string
  /** Socket of the `stargz` proxy plugin; defaults to a path inside the rig dir. */
  snapshotterSocket?: string
}

let counter = 0

export async function startContainerd(options: ContainerdRigOptions = {}): Promise<ContainerdRig> {
  requireCommand('containerd', 'containerd')
  requireCommand('runc', 'runc')
  const dir = rigTempDir('containerd')
  const root = join(dir, 'root')
  const state = join(dir, 'state')
  const address = options.address ?? join(dir, 'containerd.sock')
  const snapshotterSocket = options.snapshotterSocket ?? join(dir, 'snapshotter.sock')
  mkdirSync(root)
  mkdirSync(state)
  const configFile = join(dir, 'config.toml')
  writeFileSync(
    configFile,
    options.configText ? options.configText({dir, root, state, address, snapshotterSocket}) : [
      'version = 2',
      `root = ${JSON.stringify(root)}`,
      `state = ${JSON.stringify(state)}`,
      options.cri ? '' : 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = ${JSON.stringify(address)}`,
      '[plugins."io.containerd.internal.v1.opt"]',
      `  path = ${JSON.stringify(join(dir, 'opt'))}`,
      '[proxy_plugins.stargz]',
      '  type = "snapshot"',
      `  address = ${JSON.stringify(snapshotterSocket)}`,
      typeof options.extraConfig === 'function' ? options.extraConfig(dir) : (options.extraConfig ?? ''),
    ].join('\n') + '\n',
  )
  const svc = startService('containerd', 'containerd', ['-c', configFile, '-l', 'debug'], {logFile: join(dir, 'containerd.log')})
  const namespace = `lazytest-${process.pid}-${++counter}`
  const conn = new ContainerdConnection({address, namespace})
  try {
    await waitUntilReady(svc, 'its socket answering', async () => {
      await serverVersion(conn)
      return true
    })
  } catch (err) {
    await svc.stop()
    removeDir(dir)
    throw err
  } finally {
    conn.close()
  }
  return {
    address,
    namespace,
    root,
    state,
    dir,
    configFile,
    snapshotterSocket,
    process: svc,
    ctr(args, ctrOptions = {}) {
      return execFileSync('ctr', ['-a', address, '-n', namespace, ...args], {encoding: 'utf8', input: ctrOptions.input ?? ''})
    },
    async stop() {
      await svc.stop()
      // Shims of containers a failed test left running belong to this containerd only.
      killShimsOf(address)
      unmountUnder(dir)
      removeDir(dir)
    },
  }
}

/** Shims are started detached by containerd; kill those whose command line names our socket. */
function killShimsOf(address: string): void {
  try {
    const out = execFileSync('pgrep', ['-f', `containerd-shim.*-address ${address}`], {encoding: 'utf8'})
    for (const pid of out.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone
      }
    }
  } catch {
    // pgrep exits 1 when nothing matches
  }
}

/** Unmounts whatever is still mounted below `dir` (deepest first), so the dir can be removed. */
export function unmountUnder(dir: string): void {
  let mounts: string[]
  try {
    mounts = execFileSync('findmnt', ['-rn', '-o', 'TARGET'], {encoding: 'utf8'})
      .split('\n')
      .map((line) => line.replace(/\\x20/g, ' '))
      .filter((target) => target === dir || target.startsWith(`${dir}/`))
  } catch {
    return
  }
  for (const target of mounts.sort((a, b) => b.length - a.length)) {
    try {
      execFileSync('umount', ['-l', target], {stdio: 'ignore'})
    } catch {
      // already gone
    }
  }
}
