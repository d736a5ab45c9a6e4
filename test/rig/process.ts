// Long-running service processes of the rig: started in their own process group, logged to a
// file, ready-checked by polling a real condition, and always killed (group-wide) on stop.
import {spawn, type ChildProcess} from 'node:child_process'
import {closeSync, existsSync, openSync, readFileSync} from 'node:fs'
import {setTimeout as delay} from 'node:timers/promises'

export interface ServiceProcess {
  readonly name: string
  readonly child: ChildProcess
  readonly logFile: string
  /** The service's log so far (for assertions and failure messages). */
  log(): string
  stop(): Promise<void>
}

const live = new Set<ServiceProcess>()

/** Kills every service still running when the test process exits, whatever the cause. */
function killAllSync(): void {
  for (const svc of live) {
    try {
      if (svc.child.pid) process.kill(-svc.child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
}
process.once('exit', killAllSync)
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killAllSync()
    process.exit(130)
  })
}

export function requireCommand(command: string, debianPackage: string): void {
  const found = (process.env.PATH ?? '').split(':').some((dir) => existsSync(`${dir}/${command}`))
  if (!found) throw new Error(`${command} is not installed: run scripts/bootstrap (apt-get install ${debianPackage})`)
}

export function startService(name: string, command: string, args: string[], options: {logFile: string; env?: NodeJS.ProcessEnv; cwd?: string}): ServiceProcess {
  // The service writes its log straight into the file: a pipe through this process would stall
  // the service (and with it the test) whenever this process is busy in a synchronous call.
  const logFd = openSync(options.logFile, 'a')
  let child: ChildProcess
  try {
    child = spawn(command, args, {
      detached: true, // own process group, so stop() reaches its children too
      stdio: ['ignore', logFd, logFd],
      env: options.env ?? process.env,
      cwd: options.cwd,
    })
  } finally {
    closeSync(logFd)
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const svc: ServiceProcess = {
    name,
    child,
    logFile: options.logFile,
    log: () => (existsSync(options.logFile) ? readFileSync(options.logFile, 'utf8') : ''),
    async stop() {
      live.delete(svc)
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          process.kill(-child.pid, 'SIGTERM')
        } catch {
          // already gone
        }
        // An unref'd, aborted timer: a stopped service must not keep the test process alive 5 s more.
        const grace = new AbortController()
        const killed = await Promise.race([
          exited.then(() => true),
          delay(5000, false, {signal: grace.signal, ref: false}).catch(() => false),
        ])
        grace.abort()
        if (!killed) {
          try {
            process.kill(-child.pid, 'SIGKILL')
          } catch {
            // already gone
          }
          await exited
        }
      }
    },
  }
  live.add(svc)
  return svc
}

/**
 * Polls `check` until it returns true, the process dies, or `timeoutMs` passes. Polling a real
 * readiness condition (a socket that answers) is the synchronisation; the interval only paces it.
 */
export async function waitUntilReady(svc: ServiceProcess, what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (svc.child.exitCode !== null || svc.child.signalCode !== null) {
      throw new Error(`${svc.name} exited before ${what} (exit ${svc.child.exitCode ?? svc.child.signalCode}); log:\n${tail(svc.log())}`)
    }
    if (await check().catch(() => false)) return
    await delay(50)
  }
  throw new Error(`${svc.name}: ${what} not reached within ${timeoutMs} ms; log:\n${tail(svc.log())}`)
}

function tail(text: string, lines = 30): string {
  return text.split('\n').slice(-lines).join('\n')
}
