// Progress of image transfers: listr2 on a terminal (one line per blob with phase, bytes and
// rate), plain lines on stderr otherwise (one per finished blob), nothing with --quiet.
import {Listr} from 'listr2'
import type {LayerPhase, LayerProgress, ProgressReporter} from '../convert/progress.js'
import {silentProgress} from '../convert/progress.js'
import {describeError} from './errors.js'
import {formatBytes} from './format.js'


/** The part of a listr2 task wrapper we touch. */
interface TaskView {
  title: string | undefined
  output: string | undefined
}

interface Meter {
  phase: LayerPhase | undefined
  total: number | undefined
  done: number
  started: number
}

function describe(m: Meter): string {
  if (!m.phase) return 'waiting'
  const secs = Math.max(0.001, (Date.now() - m.started) / 1000)
  const rate = m.done > 0 ? `, ${formatBytes(m.done / secs)}/s` : ''
  const amount = m.total ? `${formatBytes(m.done)} / ${formatBytes(m.total)}` : formatBytes(m.done)
  return m.phase === 'check' ? 'checking eStargz footer and TOC' : `${m.phase}: ${amount}${rate}`
}

/** The reporter for a command: `quiet` wins, then a TTY gets listr2, anything else plain lines. */
export function createProgress(options: {quiet?: boolean; stream?: NodeJS.WriteStream} = {}): ProgressReporter {
  if (options.quiet) return silentProgress
  const stream = options.stream ?? process.stderr
  return stream.isTTY ? new ListrProgress() : new PlainProgress(stream)
}

class PlainProgress implements ProgressReporter {
  constructor(private readonly stream: NodeJS.WritableStream) {}

  task(title: string): LayerProgress {
    const m: Meter = {phase: undefined, total: undefined, done: 0, started: Date.now()}
    let moved = 0
    return {
      phase: (phase, total) => {
        m.phase = phase
        m.total = total
        m.done = 0
        m.started = Date.now()
        moved = 0
      },
      bytes: (n) => {
        m.done += n
        moved += n
      },
      done: (note) => {
        const secs = (Date.now() - m.started) / 1000
        const rate = moved > 0 && secs > 0 ? ` at ${formatBytes(moved / secs)}/s` : ''
        this.stream.write(`${title}: ${note}${moved > 0 ? ` (${formatBytes(moved)}${rate})` : ''}\n`)
      },
      failed: (err) => this.stream.write(`${title}: failed: ${describeError(err)}\n`),
    }
  }

  note(text: string): void {
    this.stream.write(`${text}\n`)
  }

  async close(): Promise<void> {}
}

/**
 * listr2 needs its task list before it runs, so the pipeline announces every title first
 * (plan); each listr task then waits for its blob's events and shows them as output.
 */
class ListrProgress implements ProgressReporter {
  private readonly slots = new Map<string, {resolve: () => void; reject: (e: unknown) => void; wrapper?: TaskView; meter: Meter; finalTitle?: string; settled: Promise<void>; over: boolean}>()
  private running: Promise<unknown> | undefined
  private timer: NodeJS.Timeout | undefined

  plan(titles: string[]): void {
    for (const t of titles) this.slot(t)
    const list = new Listr(
      titles.map((title) => ({
        title,
        task: async (_ctx: unknown, wrapper: TaskView) => {
          const s = this.slot(title)
          s.wrapper = wrapper
          try {
            await s.settled
          } finally {
            s.over = true
          }
          if (s.finalTitle) wrapper.title = s.finalTitle
        },
      })),
      {concurrent: true, exitOnError: false},
    )
    this.running = list.run().catch(() => undefined)
    this.timer = setInterval(() => {
      for (const s of this.slots.values()) if (s.wrapper && !s.over && s.meter.phase) s.wrapper.output = describe(s.meter)
    }, 200)
    this.timer.unref()
  }

  private slot(title: string) {
    let s = this.slots.get(title)
    if (!s) {
      let resolve!: () => void
      let reject!: (e: unknown) => void
      const settled = new Promise<void>((res, rej) => {
        resolve = res
        reject = rej
      })
      settled.catch(() => undefined)
      s = {resolve, reject, meter: {phase: undefined, total: undefined, done: 0, started: Date.now()}, settled, over: false}
      this.slots.set(title, s)
    }
    return s
  }

  task(title: string): LayerProgress {
    const s = this.slot(title)
    return {
      phase: (phase, total) => {
        s.meter = {phase, total, done: 0, started: Date.now()}
      },
      bytes: (n) => {
        s.meter.done += n
      },
      done: (note) => {
        s.over = true
        s.finalTitle = `${title}: ${note}`
        s.resolve()
      },
      failed: (err) => {
        s.over = true
        s.reject(new Error(describeError(err)))
      },
    }
  }

  note(text: string): void {
    if (!this.running) process.stderr.write(`${text}\n`)
  }

  async close(): Promise<void> {
    // Tasks that never started (an earlier failure) are settled so listr can finish.
    if (this.timer) clearInterval(this.timer)
    for (const s of this.slots.values()) {
      s.over = true
      s.reject(new Error('not started'))
    }
    await this.running
  }
}

/**
 * Ctrl-C or a TERM during a transfer: exit through process.exit so 'exit' hooks (temp spools of
 * the image pipeline) run; nothing was committed, so the destination is left as it was.
 */
export function exitOnSignals(): void {
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`lazyctl: interrupted (${signal}); nothing was committed\n`)
      process.exit(status)
    })
  }
}
