// The steps of `lazyctl node teardown`: put containerd's original config back, remove the
// snapshotter service, restart containerd when its config changed, and (with --purge) remove
// lazyctl's files.
import {join} from 'node:path'
import {mustExec, type PlanContext, type Step} from './plan.js'
import {manualStartCommand, unitPath, wantsLinkPath} from './service-unit.js'
import {BACKUP_SUFFIX, CREATED_SUFFIX, detectStep, facts, restartContainerd, restoreContainerdConfig, restoreOriginal} from './setup-steps.js'
import {shellQuote} from './transport.js'

const isOffline = (ctx: PlanContext) => ctx.paths.root !== ''

export const restoreConfigStep: Step = {
  id: 'restore-config',
  title: "Restore containerd's original config",
  async check(ctx) {
    const path = ctx.paths.containerdConfig
    const backup = await ctx.files.exists(ctx.at(path + BACKUP_SUFFIX))
    const created = await ctx.files.exists(ctx.at(path + CREATED_SUFFIX))
    if (backup) return {needed: true, reason: `restore ${path} from ${path}${BACKUP_SUFFIX}`}
    if (created) return {needed: true, reason: `remove ${path}, which setup created`}
    return {needed: false, reason: `no ${path}${BACKUP_SUFFIX}: nothing to restore`}
  },
  async apply(ctx) {
    const done = await restoreContainerdConfig(ctx, {dropBackup: true})
    if (!done) return {status: 'unchanged', reason: `${ctx.paths.containerdConfig} already equals the original; backup removed`}
    return {status: 'changed', reason: done}
  },
}

export const restoreKubeletConfigStep: Step = {
  id: 'restore-kubelet-config',
  title: "Restore kubelet's original config",
  async check(ctx) {
    const path = ctx.paths.kubeletConfig
    if (await ctx.files.exists(ctx.at(path + BACKUP_SUFFIX))) return {needed: true, reason: `restore ${path} from ${path}${BACKUP_SUFFIX}`}
    return {needed: false, reason: `no ${path}${BACKUP_SUFFIX}: nothing to restore`}
  },
  async apply(ctx) {
    const done = await restoreOriginal(ctx, ctx.paths.kubeletConfig, {dropBackup: true})
    if (!done) return {status: 'unchanged', reason: `${ctx.paths.kubeletConfig} already equals the original; backup removed`}
    return {status: 'changed', reason: done}
  },
}

export const removeServiceStep: Step = {
  id: 'remove-service',
  title: 'Remove the snapshotter service',
  async check(ctx) {
    const unit = await ctx.files.exists(ctx.at(unitPath(ctx.paths)))
    const link = await ctx.files.readLink(ctx.at(wantsLinkPath(ctx.paths)))
    if (!unit && link === undefined) {
      if (!isOffline(ctx) && !facts(ctx).systemd) return {needed: false, skip: true, reason: `no systemd: stop the process started with "${manualStartCommand(ctx.paths)}" yourself`}
      return {needed: false, reason: `${ctx.paths.unitName}.service is not installed`}
    }
    return {needed: true, reason: `stop, disable and delete ${unitPath(ctx.paths)}`}
  },
  async apply(ctx) {
    const unit = shellQuote(ctx.paths.unitName)
    if (!isOffline(ctx) && facts(ctx).systemd) {
      await mustExec(ctx, `systemctl disable --now ${unit} || true`, `stopping ${ctx.paths.unitName}`, {timeoutMs: 120_000})
    }
    await mustExec(ctx, `rm -f ${shellQuote(ctx.at(wantsLinkPath(ctx.paths)))} ${shellQuote(ctx.at(unitPath(ctx.paths)))}`, 'removing the unit')
    ctx.files.forget(ctx.at(wantsLinkPath(ctx.paths)), ctx.at(unitPath(ctx.paths)))
    if (!isOffline(ctx) && facts(ctx).systemd) await mustExec(ctx, 'systemctl daemon-reload', 'systemctl daemon-reload')
    return {status: 'changed', reason: `removed ${unitPath(ctx.paths)}`}
  },
}

export const teardownRestartStep: Step = {
  id: 'restart',
  title: 'Restart containerd',
  async check(ctx) {
    if (!ctx.changed.has('restore-config') && !ctx.changed.has('restore-kubelet-config')) return {needed: false, reason: `containerd${ctx.paths.kubeletConfig ? ' and kubelet' : ''} config unchanged; no restart`}
    if (!facts(ctx).systemd) {
      const {reason} = await restartContainerd(ctx)
      return {needed: false, skip: true, reason}
    }
    return {needed: true, reason: 'restart containerd to load the original config'}
  },
  async apply(ctx) {
    const {reason} = await restartContainerd(ctx)
    return {status: 'changed', reason}
  },
}

export const purgeStep: Step = {
  id: 'purge',
  title: "Remove lazyctl's files",
  async check(ctx) {
    const present: string[] = []
    for (const p of [join(ctx.paths.installDir, 'bin', 'lazyctl'), ctx.paths.lazyctlConfig]) {
      if ((await ctx.transport.exec(`[ -e ${shellQuote(ctx.at(p))} ]`)).code === 0) present.push(p)
    }
    if (!present.length) return {needed: false, reason: 'nothing left to remove'}
    return {needed: true, reason: `remove ${ctx.paths.installDir}, ${ctx.paths.lazyctlConfig} and ${ctx.paths.snapshotterRoot}`}
  },
  async apply(ctx, check) {
    const dirs = [ctx.paths.installDir, ctx.paths.lazyctlConfig, ctx.paths.snapshotterRoot].map((p) => shellQuote(ctx.at(p)))
    await mustExec(ctx, `rm -rf --one-file-system ${dirs.join(' ')}`, 'removing files')
    return {status: 'changed', reason: check.reason.replace(/^remove/, 'removed')}
  },
}

export function teardownSteps(options: {offline: boolean; purge: boolean; kubeletConfig?: boolean}): Step[] {
  const steps = [detectStep, restoreConfigStep, ...(options.kubeletConfig ? [restoreKubeletConfigStep] : []), removeServiceStep]
  if (!options.offline) steps.push(teardownRestartStep)
  if (options.purge) steps.push(purgeStep)
  return steps
}
