// `lazyctl snapshotter serve` as the rig runs it: the built CLI in its own process group, a
// fresh root, its JSON log in a file, ready when the status service answers.
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {CLI_ENTRY} from '../../src/paths.js'
import {probeSnapshotter} from '../../src/snapshotter/status-service.js'
import {startService, waitUntilReady, type ServiceProcess} from '../rig/process.js'
import {unmountUnder} from '../rig/containerd.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

export interface SnapshotterDaemon {
  socket: string
  root: string
  configFile: string
  dir: string
  process: ServiceProcess
  /** True when this helper made `dir` (then stop() removes it). */
  ownsDir: boolean
  /** Parsed JSON log lines so far. */
  logLines(): Array<Record<string, unknown>>
  /** Waits for a log line matching `predicate` (the daemon's own account of what it did). */
  waitForLog(what: string, predicate: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  /** SIGTERM (orderly stop); then removes the dir if this helper made it. */
  stop(): Promise<void>
  /** SIGKILL, no cleanup (a crash): the root stays for a restart. */
  kill(): Promise<void>
}

export interface DaemonOptions {
  socket?: string
  /** Reuse a root (restart tests). */
  root?: string
  dir?: string
  config?: string
  logLevel?: string
  /** Extra environment (e.g. DOCKER_CONFIG: an empty one proves credentials came another way). */
  env?: NodeJS.ProcessEnv
}

let counter = 0

export async function startSnapshotterDaemon(options: DaemonOptions = {}): Promise<SnapshotterDaemon> {
  const ownsDir = options.dir === undefined
  const dir = options.dir ?? rigTempDir('snapshotter')
  const root = options.root ?? join(dir, 'root')
  const socket = options.socket ?? join(dir, 'snapshotter.sock')
  mkdirSync(root, {recursive: true})
  mkdirSync(dir, {recursive: true})
  const configFile = join(dir, `config-${++counter}.toml`)
  writeFileSync(configFile, options.config ?? '')
  const logFile = join(dir, `snapshotter-${counter}.log`)
  // The daemon writes its log straight to the file (sh redirects, then execs it, so the process
  // group and pid stay the daemon's): through a pipe, a test blocked in a synchronous exec would
  // stop draining it, and a daemon answering FUSE reads would block on its own log line.
  const daemonArgs = [CLI_ENTRY, 'snapshotter', 'serve', '--socket', socket, '--root', root, '--config', configFile, '--log-level', options.logLevel ?? 'debug']
  const svc = startService('lazyctl-snapshotter', 'sh', ['-c', 'exec "$0" "$@" >>"$LAZYCTL_TEST_LOG" 2>&1', process.execPath, ...daemonArgs], {
    logFile,
    env: {...process.env, ...options.env, LAZYCTL_TEST_LOG: logFile},
  })
  await waitUntilReady(svc, 'its status answering', async () => (await probeSnapshotter(socket, 500)).state === 'lazyctl')
  const logLines = (): Array<Record<string, unknown>> =>
    svc
      .log()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  return {
    socket,
    root,
    configFile,
    dir,
    process: svc,
    ownsDir,
    logLines,
    async waitForLog(what, predicate, timeoutMs = 30_000) {
      let found: Record<string, unknown> | undefined
      await waitUntilReady(svc, what, async () => {
        found = logLines().find(predicate)
        return found !== undefined
      }, timeoutMs)
      return found!
    },
    async stop() {
      await svc.stop()
      if (ownsDir) {
        unmountUnder(dir)
        removeDir(dir)
      }
    },
    async kill() {
      const exited = new Promise((resolve) => svc.child.once('exit', resolve))
      if (svc.child.exitCode === null && svc.child.signalCode === null) {
        process.kill(-svc.child.pid!, 'SIGKILL')
        await exited
      }
      await svc.stop()
    },
  }
}
