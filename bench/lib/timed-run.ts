// A child process timed the way a user feels a container start: from spawn to the first byte the
// container writes on stdout (`lazyctl run` and `ctr run` print only the container's output
// there; progress goes to stderr), and to its exit.
import {spawn} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export interface TimedRun {
  command: string
  args: string[]
  /** Wall clock (ms since epoch) at spawn, at the first stdout byte, at exit. */
  startedAt: number
  firstOutputAt?: number
  exitedAt: number
  /** Milliseconds from spawn to the first stdout byte (undefined when nothing was printed). */
  firstOutputMs?: number
  exitMs: number
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** With `cpu`: user + system CPU milliseconds of the command and the children it waited for. */
  cpuMs?: number
}

export interface TimedRunOptions {
  env?: NodeJS.ProcessEnv
  /** Killed (SIGKILL, its process group) after this long. Default 15 min. */
  timeoutMs?: number
  /** Called with each stderr line as it arrives (progress of the command). */
  onStderrLine?: (line: string) => void
  /** Measure the command's CPU time (through GNU time, Debian package `time`). */
  cpu?: boolean
}

const running = new Set<number>()

/** Kills (SIGKILL, process group) every timed command still running: teardown on Ctrl-C or failure. */
export function killTimedRuns(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // gone
    }
  }
  running.clear()
}

export function runTimed(command: string, args: string[], options: TimedRunOptions = {}): Promise<TimedRun> {
  const cpuFile = options.cpu ? join(tmpdir(), `lazyctl-bench-cpu-${randomUUID()}`) : undefined
  const [file, argv] = cpuFile ? ['/usr/bin/time', ['-f', '%U %S', '-o', cpuFile, command, ...args]] : [command, args]
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const startedAt = Date.now()
    const child = spawn(file, argv, {env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true})
    const pid = child.pid
    if (pid) running.add(pid)
    let firstOutput: number | undefined
    const out: Buffer[] = []
    const err: Buffer[] = []
    let partial = ''
    child.stdout.on('data', (chunk: Buffer) => {
      firstOutput ??= performance.now()
      out.push(chunk)
    })
    child.stderr.on('data', (chunk: Buffer) => {
      err.push(chunk)
      if (!options.onStderrLine) return
      const lines = (partial + chunk.toString('utf8')).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) options.onStderrLine(line)
    })
    const timer = setTimeout(() => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, options.timeoutMs ?? 15 * 60_000)
    child.once('error', (e) => {
      clearTimeout(timer)
      if (pid) running.delete(pid)
      reject(e)
    })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      if (pid) running.delete(pid)
      const exitMs = performance.now() - t0
      let cpuMs: number | undefined
      if (cpuFile) {
        try {
          const [user, system] = readFileSync(cpuFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number)
          cpuMs = ((user ?? 0) + (system ?? 0)) * 1000
        } catch {
          // time could not write it (killed): no CPU figure
        }
        rmSync(cpuFile, {force: true})
      }
      resolve({
        ...(cpuMs !== undefined ? {cpuMs} : {}),
        command,
        args,
        startedAt,
        ...(firstOutput !== undefined ? {firstOutputAt: startedAt + (firstOutput - t0), firstOutputMs: firstOutput - t0} : {}),
        exitedAt: startedAt + exitMs,
        exitMs,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      })
    })
  })
}

/** Throws with the command's stderr when it did not exit 0. */
export function assertSucceeded(run: TimedRun, what: string): TimedRun {
  if (run.code !== 0) {
    const tail = run.stderr.trim().split('\n').slice(-15).join('\n')
    throw new Error(`${what} failed (${run.signal ?? `exit ${run.code}`}): ${run.command} ${run.args.join(' ')}\n${tail}`)
  }
  return run
}
