// `lazyctl node setup` and `teardown` without the CLI: typed options in, per-host results out.
import {LazyError} from '../cli/errors.js'
import {DEFAULT_CONFIG_FILE, DEFAULT_SNAPSHOTTER_ROOT, DEFAULT_SNAPSHOTTER_SOCKET, SNAPSHOTTER_PLUGIN_NAME} from '../snapshotter/config.js'
import {runFleet, type FleetOptions} from './fleet.js'
import type {PlanPaths, PlanRun} from './plan.js'
import {SKIPPABLE_STEPS, setupSteps} from './setup-steps.js'
import {checkUnique, type ConnectOptions, type Target} from './targets.js'
import {teardownSteps} from './teardown-steps.js'

export const DEFAULT_CONTAINERD_CONFIG = '/etc/containerd/config.toml'
export const DEFAULT_INSTALL_DIR = '/opt/lazyctl'
export const DEFAULT_UNIT_NAME = 'lazyctl-snapshotter'

export type NodePaths = Omit<PlanPaths, 'root'>

export function defaultNodePaths(): NodePaths {
  return {
    containerdConfig: DEFAULT_CONTAINERD_CONFIG,
    containerdAddress: '/run/containerd/containerd.sock',
    kubeletConfig: '',
    snapshotterSocket: DEFAULT_SNAPSHOTTER_SOCKET,
    snapshotterRoot: DEFAULT_SNAPSHOTTER_ROOT,
    lazyctlConfig: DEFAULT_CONFIG_FILE,
    installDir: DEFAULT_INSTALL_DIR,
    pluginName: SNAPSHOTTER_PLUGIN_NAME,
    unitName: DEFAULT_UNIT_NAME,
  }
}

export interface NodeRunOptions {
  targets: Target[]
  /** Offline root applied to every target without its own root=. */
  root?: string
  dryRun: boolean
  /** Undefined: verify live nodes, not offline roots. */
  verify?: boolean
  concurrency: number
  progress: FleetOptions['progress']
  connect: ConnectOptions
  paths: NodePaths
  out?: NodeJS.WritableStream
}

function validate(options: NodeRunOptions): void {
  if (!options.targets.length) throw new LazyError('USAGE', 'no target given', {hint: 'pass --local, --ssh user@host, --ssm INSTANCE_ID or --inventory FILE'})
  if (!(options.concurrency >= 1)) throw new LazyError('USAGE', `--concurrency must be at least 1, not ${options.concurrency}`)
  checkUnique(options.targets)
  for (const t of options.targets) {
    const root = t.root ?? options.root
    if (root !== undefined && !root.startsWith('/')) throw new LazyError('USAGE', `offline root "${root}" must be an absolute path`)
    if (root === '/') throw new LazyError('USAGE', 'offline root "/" is the live system: leave out --root instead')
  }
}

function fleetOptions(options: NodeRunOptions): Omit<FleetOptions, 'steps'> {
  const rootOf = (t: Target) => (t.root ?? options.root ?? '').replace(/\/+$/, '')
  return {
    concurrency: options.concurrency,
    connect: options.connect,
    dryRun: options.dryRun,
    progress: options.progress,
    paths: (t) => ({...options.paths, root: rootOf(t)}),
    verify: (t) => options.verify ?? rootOf(t) === '',
    ...(options.out ? {out: options.out} : {}),
  }
}

export async function setupNodes(options: NodeRunOptions & {skip: string[]; criKeychain?: boolean}): Promise<PlanRun[]> {
  validate(options)
  for (const s of options.skip) {
    if (!(SKIPPABLE_STEPS as string[]).includes(s)) throw new LazyError('USAGE', `--skip ${s}: only ${SKIPPABLE_STEPS.join(', ')} can be skipped`)
  }
  const base = fleetOptions(options)
  const skip = new Set(options.skip)
  return runFleet(options.targets, {...base, steps: (t) => setupSteps({skip, offline: base.paths(t).root !== '', verify: base.verify(t), criKeychain: options.criKeychain ?? false, kubeletConfig: options.paths.kubeletConfig !== ''})})
}

export async function teardownNodes(options: NodeRunOptions & {purge: boolean}): Promise<PlanRun[]> {
  validate(options)
  const base = fleetOptions(options)
  return runFleet(options.targets, {...base, verify: () => false, steps: (t) => teardownSteps({offline: base.paths(t).root !== '', purge: options.purge, kubeletConfig: options.paths.kubeletConfig !== ''})})
}
