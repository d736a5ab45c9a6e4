// Runs one plan on many targets at once (bounded concurrency). A target that cannot be reached
// fails alone; the others finish. Progress: listr2 on a terminal, one plain line per step
// otherwise. The summary table and the failure list come from the same results.
import {Listr} from 'listr2'
import {describeError, ERROR_CODES, isLazyError, LazyError, type ErrorCode} from '../cli/errors.js'
import {makeContext, runPlan, type PlanPaths, type PlanRun, type Step, type StepResult} from './plan.js'
import {connectTarget, type ConnectOptions, type Target} from './targets.js'

export interface FleetOptions {
  concurrency: number
  connect: ConnectOptions
  /** Paths for a target (its root decides the offline prefix). */
  paths(target: Target): PlanPaths
  steps(target: Target): Step[]
  dryRun: boolean
  verify(target: Target): boolean
  /** 'tty' draws listr2 tasks, 'lines' prints a line per step, 'quiet' prints nothing. */
  progress: 'tty' | 'lines' | 'quiet'
  out?: NodeJS.WritableStream
}

export async function runOnTarget(target: Target, options: FleetOptions, onStep?: (r: StepResult) => void, onStart?: (title: string) => void): Promise<PlanRun> {
  let transport
  try {
    transport = await connectTarget(target, options.connect)
  } catch (err) {
    const text = describeError(err)
    const error = text.startsWith(`${target.label}: `) ? text.slice(target.label.length + 2) : text
    return {target: target.label, ok: false, steps: [], error, errorCode: isLazyError(err) ? err.code : 'INTERNAL', ...(isLazyError(err) && err.hint ? {hint: err.hint} : {})}
  }
  try {
    const ctx = makeContext(transport, options.paths(target), {dryRun: options.dryRun, verify: options.verify(target)})
    const run = await runPlan(options.steps(target), ctx, {onStepStart: (s) => onStart?.(s.title), onStepEnd: (r) => onStep?.(r)})
    return {...run, target: target.label}
  } finally {
    await transport.close()
  }
}

/** Runs `worker` over `items` with at most `limit` in flight; results keep the input order. */
export async function pool<T, R>(items: T[], limit: number, worker: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const lanes = Array.from({length: Math.max(1, Math.min(limit, items.length))}, async () => {
    while (next < items.length) {
      const i = next++
      results[i] = await worker(items[i]!)
    }
  })
  await Promise.all(lanes)
  return results
}

export async function runFleet(targets: Target[], options: FleetOptions): Promise<PlanRun[]> {
  const out = options.out ?? process.stderr
  if (options.progress !== 'tty') {
    return pool(targets, options.concurrency, async (t) => {
      const run = await runOnTarget(t, options, (r) => {
        if (options.progress === 'lines') out.write(`${t.label}: ${r.title}: ${r.status}${r.reason ? ` — ${r.reason}` : ''}\n`)
      })
      if (!run.ok && !run.steps.length && options.progress === 'lines') out.write(`${t.label}: failed — ${run.error}\n`)
      return run
    })
  }
  const results = new Array<PlanRun>(targets.length)
  const tasks = new Listr(
    targets.map((t, i) => ({
      title: t.label,
      task: async (_ctx: unknown, task: {title: string; output: string}) => {
        const run = await runOnTarget(
          t,
          options,
          (r) => {
            task.output = `${r.title}: ${r.status}`
          },
          (title) => {
            task.title = `${t.label}: ${title}…`
          },
        )
        results[i] = run
        const counts = countStatuses(run.steps)
        task.title = `${t.label}: ${run.ok ? summaryWord(counts, options.dryRun) : 'failed'}`
        if (!run.ok) throw new Error(run.error ?? 'failed')
      },
    })),
    {concurrent: options.concurrency, exitOnError: false, rendererOptions: {collapseErrors: false, showErrorMessage: true}},
  )
  try {
    await tasks.run()
  } catch {
    // per-host failures are in the results
  }
  return results
}

export function countStatuses(steps: StepResult[]): Record<StepResult['status'], number> {
  const counts = {changed: 0, unchanged: 0, 'would-change': 0, skipped: 0, failed: 0}
  for (const s of steps) counts[s.status]++
  return counts
}

function summaryWord(c: ReturnType<typeof countStatuses>, dryRun: boolean): string {
  return dryRun ? `${c['would-change']} would change, ${c.unchanged} unchanged` : `${c.changed} changed, ${c.unchanged} unchanged${c.skipped ? `, ${c.skipped} skipped` : ''}`
}

/** A plain-text table: HOST, RESULT, counts, and the reason of a failure. */
export function summaryTable(runs: PlanRun[], dryRun: boolean): string {
  const rows = [['HOST', 'RESULT', dryRun ? 'WOULD-CHANGE' : 'CHANGED', 'UNCHANGED', 'SKIPPED', 'DETAIL']]
  for (const r of runs) {
    const c = countStatuses(r.steps)
    rows.push([r.target, r.ok ? 'ok' : 'FAILED', String(dryRun ? c['would-change'] : c.changed), String(c.unchanged), String(c.skipped), r.ok ? '' : (r.error ?? '')])
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)))
  return rows.map((row) => row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  ').trimEnd()).join('\n') + '\n'
}

/** The error a fleet run ends with when some hosts failed: names each, with why. */
export function fleetError(runs: PlanRun[]): LazyError | undefined {
  const failed = runs.filter((r) => !r.ok)
  if (!failed.length) return undefined
  if (runs.length === 1) {
    const code = failed[0]!.errorCode
    const hint = failed[0]!.hint
    return new LazyError(code && code in ERROR_CODES ? (code as ErrorCode) : 'NODE_STEP_FAILED', `${failed[0]!.target}: ${failed[0]!.error ?? 'failed'}`, hint ? {hint} : {})
  }
  return new LazyError('NODE_FLEET_FAILED', `${failed.length} of ${runs.length} hosts failed: ${failed.map((r) => `${r.target} (${r.error})`).join('; ')}`)
}

/** The dry-run report: each host's plan with reasons and exact diffs. */
export function planReport(runs: PlanRun[]): string {
  const parts: string[] = []
  for (const r of runs) {
    parts.push(`# ${r.target}${r.ok ? '' : ` — FAILED: ${r.error}`}`)
    for (const s of r.steps) {
      parts.push(`${s.status.padEnd(12)} ${s.title}: ${s.reason}`)
      if (s.diff && (s.status === 'would-change' || s.status === 'changed')) parts.push(s.diff.trimEnd())
    }
    parts.push('')
  }
  return parts.join('\n')
}
