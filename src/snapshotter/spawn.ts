// Starts the snapshotter when nothing answers on its socket: `lazyctl snapshotter serve` as a
// detached process of the same program (this Node, this bin/run.js), logging to a file, and
// waits — bounded — until it answers. `lazyctl run` and `pull` call this before a lazy pull.
import {spawn} from 'node:child_process'
import {closeSync, mkdirSync, openSync, readFileSync, statSync} from 'node:fs'
import {dirname} from 'node:path'
import type {Readable} from 'node:stream'
import {setTimeout as delay} from 'node:timers/promises'
import {LazyError} from '../cli/errors.js'
import {CLI_ENTRY} from '../paths.js'
import {probeSnapshotter} from './status-service.js'

export const DEFAULT_SNAPSHOTTER_LOG = '/var/log/lazyctl-snapshotter.log'
/** How long to keep waiting after our child exited, for a concurrently spawned one to answer. */
const RACE_GRACE_MS = 5_000

export interface EnsureSnapshotterOptions {
  socket: string
  root?: string
  /** Config file passed to `serve --config`; omitted: serve's default. */
  config?: string
  /** Where the spawned daemon's stderr (its JSON log) goes; appended to. */
  logFile?: string
  /** How long to wait for the spawned daemon to answer. */
  timeoutMs?: number
  logLevel?: string
  /**
   * After the socket answers, polled until true (same deadline). containerd redials a proxy plugin
   * with a backoff of up to 3 s after a failed dial, so a caller about to pull through containerd
   * passes a check that a containerd Snapshots call with `snapshotter: stargz` gets through.
   */
  readyCheck?: () => Promise<boolean>
  /** Told as soon as the socket answers, before readyCheck passes (the daemon's own RPCs work then). */
  onAnswering?: () => void
}

export interface EnsureSnapshotterResult {
  spawned: boolean
  pid?: number
  logFile?: string
}

export async function ensureSnapshotter(options: EnsureSnapshotterOptions): Promise<EnsureSnapshotterResult> {
  const first = await probeSnapshotter(options.socket, 2000)
  // Something answers: ours, or a compatible snapshotter (stargz) — either serves containerd. It
  // may have started just now, while containerd's dial to it is still backing off: check that too.
  if (first.state !== 'absent') {
    options.onAnswering?.()
    await waitForCheck(options.readyCheck, Date.now() + (options.timeoutMs ?? 30_000), options.socket)
    return {spawned: false}
  }

  const logFile = options.logFile ?? DEFAULT_SNAPSHOTTER_LOG
  mkdirSync(dirname(logFile), {recursive: true})
  const args = [CLI_ENTRY, 'snapshotter', 'serve', '--socket', options.socket, '--ready-fd', '3']
  if (options.root) args.push('--root', options.root)
  if (options.config) args.push('--config', options.config)
  if (options.logLevel) args.push('--log-level', options.logLevel)
  const logFd = openSync(logFile, 'a', 0o600)
  const startOffset = currentSize(logFile)
  let child
  try {
    // fd 3: the daemon writes "ready" there once its socket answers (or closes it by exiting).
    child = spawn(process.execPath, args, {detached: true, stdio: ['ignore', logFd, logFd, 'pipe']})
  } finally {
    closeSync(logFd)
  }
  let exit: string | undefined
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = signal ? `killed by ${signal}` : `exit status ${code}`
      resolve()
    })
    child.once('error', (err) => {
      exit = err.message
      resolve()
    })
  })
  const readyPipe = child.stdio[3] as Readable
  const signalled = new Promise<boolean>((resolve) => {
    let said = ''
    readyPipe.setEncoding('utf8')
    readyPipe.on('data', (chunk: string) => {
      said += chunk
      if (said.includes('ready\n')) resolve(true)
    })
    readyPipe.on('close', () => resolve(said.includes('ready\n')))
    readyPipe.on('error', () => resolve(false))
  })
  const timeoutMs = options.timeoutMs ?? 30_000
  const deadline = Date.now() + timeoutMs
  const notAnswering = () =>
    new LazyError('SNAPSHOTTER_UNREACHABLE', `the snapshotter started for ${options.socket} did not answer within ${Math.round(timeoutMs / 1000)} s`, {
      hint: `see its log: ${logFile}`,
    })
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  try {
    const outcome = await Promise.race([signalled, timedOut])
    if (outcome === true) {
      options.onAnswering?.()
      await waitForCheck(options.readyCheck, deadline, options.socket)
      return {spawned: true, pid: child.pid!, logFile}
    }
    if (outcome === 'timeout') throw notAnswering()
    // Our child stopped before serving. If it lost a race with another `run`'s spawn (the root
    // lock or the socket was taken), that one answers soon; otherwise report the child's last words.
    // (A pipe that failed while the child lives on ends at the deadline, not never.)
    if ((await Promise.race([exited, timedOut])) === 'timeout') throw notAnswering()
    const graceEnd = Math.min(deadline, Date.now() + RACE_GRACE_MS)
    while (Date.now() < graceEnd) {
      if ((await probeSnapshotter(options.socket, 1000)).state !== 'absent') {
        options.onAnswering?.()
        await waitForCheck(options.readyCheck, deadline, options.socket)
        return {spawned: false}
      }
      // Paces the poll for another process's daemon; the condition is its socket answering.
      await delay(100)
    }
    throw new LazyError('SNAPSHOTTER_UNREACHABLE', `the snapshotter started for ${options.socket} stopped (${exit}): ${lastLogLine(logFile, startOffset)}`, {
      hint: `see its log: ${logFile}`,
    })
  } finally {
    clearTimeout(timer)
    readyPipe.destroy()
    child.unref()
  }
}

async function waitForCheck(check: (() => Promise<boolean>) | undefined, deadline: number, socket: string): Promise<void> {
  if (!check) return
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    // Paces the poll; the condition is the caller's check passing.
    await delay(200)
  }
  throw new LazyError('SNAPSHOTTER_UNREACHABLE', `the snapshotter answers at ${socket}, but containerd does not reach it`, {
    hint: "check that containerd's config has [proxy_plugins.stargz] with this address",
  })
}

function currentSize(file: string): number {
  try {
    return statSync(file).size
  } catch {
    return 0
  }
}

/** The daemon's last words (its JSON log's last msg), for the error line. */
function lastLogLine(file: string, from: number): string {
  let text: string
  try {
    text = readFileSync(file).subarray(from).toString('utf8')
  } catch {
    return 'no log'
  }
  const lines = text.trim().split('\n').filter(Boolean)
  // The CLI's own error line (a startup failure), else the daemon's last JSON line.
  const cliError = lines.find((line) => line.startsWith('lazyctl: '))
  if (cliError) return cliError.slice('lazyctl: '.length)
  const last = lines[lines.length - 1] ?? 'no log output'
  try {
    const parsed = JSON.parse(last) as {msg?: string; error?: string; reason?: string}
    return [parsed.msg, parsed.error ?? parsed.reason].filter(Boolean).join(': ')
  } catch {
    return last.slice(0, 300)
  }
}
