// A plan is an ordered list of idempotent steps run against one target. Each step first checks
// (read-only) whether the target already is as wanted; only then, and not under --dry-run, it
// acts. Every step ends changed, unchanged, skipped (with why) or failed (with why).
import {describeError, isLazyError} from '../cli/errors.js'
import type {NodeFacts} from './facts.js'
import {FileCache} from './file-cache.js'
import type {ExecOptions, NodeTransport} from './transport.js'

export type StepStatus = 'changed' | 'unchanged' | 'would-change' | 'skipped' | 'failed'

export interface StepResult {
  id: string
  title: string
  status: StepStatus
  reason: string
  /** A unified diff of a file the step changes (or would change). */
  diff?: string
  /** The LazyError code of a failure. */
  code?: string
}

export interface StepCheck {
  /** True when the target differs from what the step wants. */
  needed: boolean
  reason: string
  diff?: string
  /** Set when the step cannot apply here (no systemd, offline root…): reported as skipped. */
  skip?: boolean
}

export interface StepOutcome {
  status: 'changed' | 'unchanged' | 'skipped'
  reason: string
}

export interface PlanPaths {
  /** Offline root prefix ('' for a live node). */
  root: string
  containerdConfig: string
  containerdAddress: string
  /** kubelet's KubeletConfiguration file to point at the snapshotter's image service ('' = leave kubelet alone). */
  kubeletConfig: string
  snapshotterSocket: string
  snapshotterRoot: string
  lazyctlConfig: string
  installDir: string
  pluginName: string
  unitName: string
}

export interface PlanContext {
  transport: NodeTransport
  paths: PlanPaths
  dryRun: boolean
  /** Filled by the detect step; later steps read it. */
  facts?: NodeFacts
  /** Ids of steps that changed something in this run. */
  changed: Set<string>
  /** Verification on (live default) or off (offline root default). */
  verify: boolean
  /** Extra per-plan state shared between steps (e.g. the bundle chosen by install). */
  state: Map<string, unknown>
  /** The path on the target for a node path, prefixed with the offline root. */
  at(path: string): string
  /** The target's files as this plan has seen and written them (paths already under at()). */
  files: FileCache
}

export interface Step {
  id: string
  title: string
  check(ctx: PlanContext): Promise<StepCheck>
  apply(ctx: PlanContext, check: StepCheck): Promise<StepOutcome>
}

export interface PlanHooks {
  onStepStart?(step: Step): void
  onStepEnd?(result: StepResult): void
}

export interface PlanRun {
  target: string
  ok: boolean
  steps: StepResult[]
  /** Why the host failed, one line. */
  error?: string
  errorCode?: string
  /** What the user can do about the failure, when known. */
  hint?: string
}

export function makeContext(transport: NodeTransport, paths: PlanPaths, options: {dryRun: boolean; verify: boolean}): PlanContext {
  const root = paths.root.replace(/\/+$/, '')
  return {
    transport,
    paths,
    dryRun: options.dryRun,
    verify: options.verify,
    changed: new Set(),
    state: new Map(),
    at: (path: string) => (root ? `${root}${path.startsWith('/') ? '' : '/'}${path}` : path),
    files: new FileCache(transport),
  }
}

/** Runs the steps in order; the first failure stops the plan (later steps depend on earlier ones). */
export async function runPlan(steps: Step[], ctx: PlanContext, hooks: PlanHooks = {}): Promise<PlanRun> {
  const results: StepResult[] = []
  for (const step of steps) {
    hooks.onStepStart?.(step)
    const result = await runStep(step, ctx)
    results.push(result)
    hooks.onStepEnd?.(result)
    if (result.status === 'failed') {
      return {target: ctx.transport.label, ok: false, steps: results, error: `${step.title}: ${result.reason}`, errorCode: result.code ?? 'NODE_STEP_FAILED'}
    }
  }
  return {target: ctx.transport.label, ok: true, steps: results}
}

async function runStep(step: Step, ctx: PlanContext): Promise<StepResult> {
  const base = {id: step.id, title: step.title}
  try {
    const check = await step.check(ctx)
    const withDiff = check.diff ? {diff: check.diff} : {}
    if (check.skip) return {...base, status: 'skipped', reason: check.reason}
    if (!check.needed) return {...base, status: 'unchanged', reason: check.reason, ...withDiff}
    if (ctx.dryRun) {
      // Later steps (restart) plan on what this one would change.
      ctx.changed.add(step.id)
      return {...base, status: 'would-change', reason: check.reason, ...withDiff}
    }
    const outcome = await step.apply(ctx, check)
    if (outcome.status === 'changed') ctx.changed.add(step.id)
    return {...base, status: outcome.status, reason: outcome.reason, ...withDiff}
  } catch (err) {
    return {...base, status: 'failed', reason: stepErrorText(err), code: isLazyError(err) ? err.code : 'NODE_STEP_FAILED'}
  }
}

export function stepErrorText(err: unknown): string {
  const text = describeError(err)
  return isLazyError(err) && err.hint ? `${text}; hint: ${err.hint}` : text
}

/** Runs a command and throws a one-line error naming `what` when it exits non-zero. */
export async function mustExec(ctx: PlanContext, command: string, what: string, options: ExecOptions = {}): Promise<string> {
  const r = await ctx.transport.exec(command, options)
  if (r.code !== 0) {
    const detail = (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-3).join(' / ')
    throw new Error(`${what} failed (exit ${r.code})${detail ? `: ${detail}` : ''}`)
  }
  return r.stdout
}
