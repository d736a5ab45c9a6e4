// The services of the demo and the startup benchmark, from the test rig: a private registry, a
// private containerd whose `stargz` proxy plugin points at a socket of ours, and a lazyctl config
// naming that socket and a snapshotter root of ours — so `lazyctl run` can spawn the snapshotter
// itself there. Everything lives in one rig temp dir, which the leftovers check watches.
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as delay} from 'node:timers/promises'
import {CLI_ENTRY} from '../../src/paths.js'
import {startContainerd, unmountUnder, type ContainerdRig} from '../../test/rig/containerd.js'
import {startRegistry, type RegistryRig} from '../../test/rig/registry.js'
import {removeDir, rigTempDir} from '../../test/rig/tmp.js'

export interface LazyctlStack {
  dir: string
  registry: RegistryRig
  containerd: ContainerdRig
  snapshotterSocket: string
  snapshotterRoot: string
  /** lazyctl's config.toml for this stack (socket, root); passed as LAZYCTL_CONFIG. */
  configFile: string
  /** Environment for lazyctl commands of this stack (containerd address and namespace, config). */
  readonly env: NodeJS.ProcessEnv
  /** `node bin/run.js <args>` as [command, args], for this stack's env. */
  lazyctl(args: string[]): [string, string[]]
  /** The running lazyctl snapshotter's pid (from its root's pid file), if one runs. */
  snapshotterPid(): number | undefined
  /** Stops the snapshotter (SIGTERM, then SIGKILL), unmounts what it left; with `wipe`, removes its root (cache, metadata). */
  stopSnapshotter(options?: {wipe?: boolean}): Promise<void>
  /** A fresh containerd (new root: no images, content or snapshots), same snapshotter socket. */
  restartContainerd(): Promise<void>
  stop(): Promise<void>
}

export interface StackOptions {
  /** Extra lines for lazyctl's config.toml (e.g. `[background_fetch]` settings). */
  extraConfig?: string
  logLevel?: 'debug' | 'info'
}

export async function startLazyctlStack(options: StackOptions = {}): Promise<LazyctlStack> {
  const dir = rigTempDir('stack')
  const snapshotterSocket = join(dir, 'snapshotter.sock')
  const snapshotterRoot = join(dir, 'snapshotter-root')
  const configFile = join(dir, 'lazyctl.toml')
  writeFileSync(
    configFile,
    [`socket = ${JSON.stringify(snapshotterSocket)}`, `root = ${JSON.stringify(snapshotterRoot)}`, `log_level = ${JSON.stringify(options.logLevel ?? 'info')}`, options.extraConfig ?? ''].join('\n') + '\n',
  )
  let registry: RegistryRig | undefined
  let containerd: ContainerdRig | undefined
  try {
    registry = await startRegistry()
    containerd = await startContainerd({snapshotterSocket})
  } catch (err) {
    await containerd?.stop()
    await registry?.stop()
    removeDir(dir)
    throw err
  }
  const pidFile = join(snapshotterRoot, 'snapshotter', 'daemon.pid')
  const snapshotterPid = (): number | undefined => {
    if (!existsSync(pidFile)) return undefined
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    return Number.isSafeInteger(pid) && pid > 0 && isAlive(pid) ? pid : undefined
  }
  const stack: LazyctlStack = {
    dir,
    registry,
    containerd,
    snapshotterSocket,
    snapshotterRoot,
    configFile,
    // Through the environment (as nerdctl reads it), because `lazyctl run IMAGE CMD…` takes every
    // word after IMAGE as the container's.
    get env() {
      return {
        ...process.env,
        CONTAINERD_ADDRESS: stack.containerd.address,
        CONTAINERD_NAMESPACE: stack.containerd.namespace,
        LAZYCTL_CONFIG: configFile,
        LAZYCTL_DATA_ROOT: join(dir, 'data'),
      }
    },
    lazyctl: (args) => [process.execPath, [CLI_ENTRY, ...args]],
    snapshotterPid,
    async stopSnapshotter(stopOptions = {}) {
      const pid = snapshotterPid()
      if (pid !== undefined) await terminate(pid)
      unmountUnder(snapshotterRoot)
      if (stopOptions.wipe) removeDir(snapshotterRoot)
    },
    async restartContainerd() {
      await stack.containerd.stop()
      stack.containerd = await startContainerd({snapshotterSocket})
    },
    async stop() {
      await stack.stopSnapshotter()
      await stack.containerd.stop()
      await stack.registry.stop()
      unmountUnder(dir)
      removeDir(dir)
    },
  }
  mkdirSync(join(dir, 'data'), {recursive: true})
  return stack
}

/** SIGTERM, then SIGKILL after 15 s; resolves when the process is gone. */
export async function terminate(pid: number, graceMs = 15_000): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  const deadline = Date.now() + graceMs
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        return
      }
    }
    // Polls the process's existence; the interval only paces it.
    await delay(50)
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  // A zombie (exited, not yet reaped by its parent) counts as gone.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'))
  } catch {
    return false
  }
}

/** Peak resident set (VmHWM) of a live process, in bytes. */
export function peakRss(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) * 1024 : undefined
  } catch {
    return undefined
  }
}

/** CPU milliseconds (user + system) a live process has used so far, from /proc/PID/stat. */
export function cpuTimeMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces), 1-based from field 3: utime is 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // USER_HZ is 100 on Linux
  } catch {
    return undefined
  }
}

export function dropPageCache(): void {
  writeFileSync('/proc/sys/vm/drop_caches', '3\n')
}
