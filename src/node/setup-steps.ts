// The steps of `lazyctl node setup`, in order. Each is idempotent: check() reads the target and
// says whether anything differs; apply() changes only that.
import {dirname, join} from 'node:path'
import {setTimeout as delay} from 'node:timers/promises'
import {stringify} from 'smol-toml'
import {describeError, LazyError} from '../cli/errors.js'
import {buildBundle, packBundle, unameArch, type Bundle} from './bundle.js'
import {mergeContainerdConfig, parseToml} from './containerd-config.js'
import {IMAGE_SERVICE_KEY, setImageServiceEndpoint} from './kubelet-config.js'
import {describeFacts, detectScript, parseFacts, type NodeFacts} from './facts.js'
import {FileCache} from './file-cache.js'
import {mustExec, type PlanContext, type Step, type StepCheck} from './plan.js'
import {lazyctlBinary, manualStartCommand, unitPath, unitText, wantsLinkPath} from './service-unit.js'
import {shellCommand, shellQuote} from './transport.js'
import {unifiedDiff} from './unified-diff.js'
import {summarizeReport, type VerifyReport, verifyLocal} from './verify.js'

export const BACKUP_SUFFIX = '.lazyctl-backup'
/** Marks that setup created containerd's config (there was none to back up). */
export const CREATED_SUFFIX = '.lazyctl-created'
export const INSTALL_STAMP = '.install-id'

export type SetupStepId = 'detect' | 'fuse' | 'install' | 'lazyctl-config' | 'service' | 'containerd-config' | 'image-fs' | 'kubelet-config' | 'restart' | 'verify'
export const SETUP_STEP_IDS: SetupStepId[] = ['detect', 'fuse', 'install', 'lazyctl-config', 'service', 'containerd-config', 'image-fs', 'kubelet-config', 'restart', 'verify']
/** Steps the user may leave out with --skip. */
export const SKIPPABLE_STEPS: SetupStepId[] = ['fuse', 'install', 'lazyctl-config', 'service', 'image-fs']

export function facts(ctx: PlanContext): NodeFacts {
  if (!ctx.facts) throw new Error('internal: node facts not detected yet')
  return ctx.facts
}

const isOffline = (ctx: PlanContext) => ctx.paths.root !== ''

const PROBE_MARK = '@@LZ-PROBE'
const VERIFY_SETTLE_MS = 30_000

/** Files setup and teardown read; fetched with detection in one round trip. */
function watchedFiles(ctx: PlanContext): string[] {
  const cfg = ctx.paths.containerdConfig
  const kubelet = ctx.paths.kubeletConfig ? [ctx.paths.kubeletConfig, ctx.paths.kubeletConfig + BACKUP_SUFFIX] : []
  return [FUSE_CONF, join(ctx.paths.installDir, INSTALL_STAMP), ctx.paths.lazyctlConfig, unitPath(ctx.paths), cfg, cfg + BACKUP_SUFFIX, cfg + CREATED_SUFFIX, ...kubelet].map((p) => ctx.at(p))
}

export const detectStep: Step = {
  id: 'detect',
  title: 'Detect the node',
  async check(ctx) {
    // One round trip: what the node is, and every file the later steps will look at.
    const files = watchedFiles(ctx)
    const links = [ctx.at(wantsLinkPath(ctx.paths))]
    const sealer = ctx.transport.readSealer?.()
    const out = await mustExec(ctx, `${detectScript(ctx.paths.root)}\necho ${PROBE_MARK}\n${FileCache.probeScript(files, links, sealer)}`, 'detection script', {timeoutMs: 60_000})
    const cut = out.indexOf(`${PROBE_MARK}\n`)
    ctx.facts = parseFacts(cut < 0 ? out : out.slice(0, cut))
    if (cut >= 0) ctx.files.absorb(out.slice(cut), files, links, sealer)
    if (!isOffline(ctx) && ctx.facts.uid !== 0) {
      throw new LazyError('PERMISSION', `commands run as uid ${ctx.facts.uid}, not root`, {hint: 'log in as root or as a user with passwordless sudo'})
    }
    return {needed: false, reason: describeFacts(ctx.facts)}
  },
  async apply() {
    return {status: 'unchanged', reason: ''}
  },
}

const FUSE_CONF = '/etc/modules-load.d/fuse.conf'

function fusePackage(pm: string): string {
  return pm === 'apt-get' ? 'fuse3' : 'fuse'
}

function installCommand(ctx: PlanContext, pm: string, pkg: string): string {
  const inner = pm === 'apt-get' ? `DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${pkg} || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ${pkg}; }` : `${pm} install -y -q ${pkg}`
  return isOffline(ctx) ? `chroot ${shellQuote(ctx.paths.root)} /bin/sh -c ${shellQuote(inner)}` : inner
}

export const fuseStep: Step = {
  id: 'fuse',
  title: 'Install FUSE and load its module',
  async check(ctx) {
    const f = facts(ctx)
    const conf = (await ctx.files.read(ctx.at(FUSE_CONF)))?.toString('utf8') ?? ''
    const missing: string[] = []
    if (!f.fuseBinary) missing.push('FUSE is not installed')
    if (!/^\s*fuse\s*$/m.test(conf)) missing.push(`${FUSE_CONF} does not load fuse at boot`)
    if (!isOffline(ctx) && !f.fuseKernel) missing.push('the fuse module is not loaded')
    if (!missing.length) return {needed: false, reason: `${f.fuseBinary}; loaded at boot${isOffline(ctx) ? '' : ' and now'}`}
    return {needed: true, reason: missing.join('; ')}
  },
  async apply(ctx) {
    const f = facts(ctx)
    const done: string[] = []
    if (!f.fuseBinary) {
      if (!f.packageManager) throw new LazyError('NODE_UNSUPPORTED', 'FUSE is not installed and no apt-get, dnf or yum was found', {hint: 'install FUSE (fusermount) by hand, then run setup again'})
      const pkg = fusePackage(f.packageManager)
      await mustExec(ctx, installCommand(ctx, f.packageManager, pkg), `${f.packageManager} install ${pkg}`, {timeoutMs: 600_000})
      done.push(`installed ${pkg} with ${f.packageManager}`)
    }
    const conf = (await ctx.files.read(ctx.at(FUSE_CONF)))?.toString('utf8') ?? ''
    if (!/^\s*fuse\s*$/m.test(conf)) {
      await ctx.files.write(ctx.at(FUSE_CONF), 'fuse\n', 0o644)
      done.push(`wrote ${FUSE_CONF}`)
    }
    if (!isOffline(ctx) && !f.fuseKernel) {
      await mustExec(ctx, 'modprobe fuse || [ -c /dev/fuse ]', 'modprobe fuse')
      done.push('loaded the fuse module')
    }
    return {status: 'changed', reason: done.join('; ')}
  },
}

export const installStep: Step = {
  id: 'install',
  title: 'Install lazyctl',
  async check(ctx) {
    const f = facts(ctx)
    if (f.arch !== unameArch()) {
      throw new LazyError('NODE_UNSUPPORTED', `the node is ${f.arch} but this machine is ${unameArch()}; lazyctl's native modules and Node runtime would not run there`, {
        hint: `run setup from a ${f.arch} machine, or bake lazyctl into the image`,
      })
    }
    const bundle = await buildBundle({installDir: ctx.paths.installDir, ...(f.node ? {nodeOnNode: f.node.path} : {})})
    ctx.state.set('bundle', bundle)
    const stamp = (await ctx.files.read(ctx.at(join(ctx.paths.installDir, INSTALL_STAMP))))?.toString('utf8').trim()
    const how = bundle.bundlesNode ? `with this machine's Node ${process.version}` : `using the node's Node ${f.node!.version} at ${f.node!.path}`
    if (stamp === bundle.id) return {needed: false, reason: `${ctx.paths.installDir} is current (${how})`}
    return {needed: true, reason: `${stamp ? 'replace' : 'copy'} ${bundle.files.length} files (${(bundle.totalBytes / 1e6).toFixed(0)} MB) to ${ctx.paths.installDir}, ${how}`}
  },
  async apply(ctx, check) {
    const bundle = ctx.state.get('bundle') as Bundle
    if (!ctx.transport.streamsStdin) {
      throw new LazyError('NODE_UNSUPPORTED', `${ctx.transport.kind} cannot stream the ${(bundle.totalBytes / 1e6).toFixed(0)} MB program to the node`, {
        hint: `bake lazyctl into the AMI (lazyctl node setup --root), or use --ssh for the first install; then pass --skip install`,
      })
    }
    const dir = ctx.at(ctx.paths.installDir)
    // Unpack beside the install, then swap: a broken copy never replaces a working one. The stamp,
    // written last, marks the install complete.
    const script = [
      'set -e',
      `D=${shellQuote(dir)}`,
      'S="$D/.staging"',
      'rm -rf "$S" && mkdir -p "$S"',
      'tar -x -f - -C "$S" --no-same-owner',
      `rm -f "$D/${INSTALL_STAMP}"`,
      'rm -rf "$D/app" "$D/node" "$D/bin"',
      'for e in "$S"/*; do mv "$e" "$D/"; done',
      'rmdir "$S"',
    ].join('\n')
    await mustExec(ctx, script, 'unpacking lazyctl', {stdin: packBundle(bundle), timeoutMs: 1_800_000})
    await ctx.files.write(ctx.at(join(ctx.paths.installDir, INSTALL_STAMP)), `${bundle.id}\n`, 0o644)
    return {status: 'changed', reason: check.reason.replace(/^(copy|replace)/, (w) => (w === 'copy' ? 'copied' : 'replaced'))}
  },
}

/** What `node setup` asks of lazyctl's config beyond the socket and root. */
export interface LazyctlConfigWants {
  /** Serve kubelet's image calls and keep its pull secrets ([cri_keychain], as stargz-snapshotter names it). */
  criKeychain: boolean
}

export function lazyctlConfigText(ctx: PlanContext, wants: LazyctlConfigWants = {criKeychain: false}): string {
  const lines = [
    '# lazyctl snapshotter configuration, written by lazyctl node setup.',
    '# Every key and its default: lazyctl snapshotter serve --help.',
    `socket = ${JSON.stringify(ctx.paths.snapshotterSocket)}`,
    `root = ${JSON.stringify(ctx.paths.snapshotterRoot)}`,
    'log_level = "info"',
  ]
  if (wants.criKeychain) {
    lines.push(
      '',
      '# kubelet --image-service-endpoint=unix://<socket above>: pull secrets reach the lazy reads.',
      '[cri_keychain]',
      'enable_keychain = true',
      `image_service_path = ${JSON.stringify(ctx.paths.containerdAddress)}`,
    )
  }
  return `${lines.join('\n')}\n`
}

/** Writes lazyctl's config, or sets in an existing one only the keys setup owns (other keys stay). */
export function lazyctlConfigStep(wants: LazyctlConfigWants = {criKeychain: false}): Step {
  return {
    id: 'lazyctl-config',
    title: `Write lazyctl's config`,
    async check(ctx) {
      const path = ctx.at(ctx.paths.lazyctlConfig)
      const current = (await ctx.files.read(path))?.toString('utf8')
      if (current === undefined) return {needed: true, reason: `create ${ctx.paths.lazyctlConfig}`, diff: unifiedDiff('', lazyctlConfigText(ctx, wants), '/dev/null', ctx.paths.lazyctlConfig)}
      const tree = parseToml(current, ctx.paths.lazyctlConfig)
      const wrong: string[] = []
      for (const [key, value] of Object.entries({socket: ctx.paths.snapshotterSocket, root: ctx.paths.snapshotterRoot})) {
        if (tree[key] !== value) {
          tree[key] = value
          wrong.push(key)
        }
      }
      if (wants.criKeychain) {
        const table = (typeof tree.cri_keychain === 'object' && tree.cri_keychain !== null ? tree.cri_keychain : {}) as Record<string, unknown>
        for (const [key, value] of Object.entries({enable_keychain: true, image_service_path: ctx.paths.containerdAddress})) {
          if (table[key] !== value) {
            table[key] = value
            wrong.push(`cri_keychain.${key}`)
          }
        }
        tree.cri_keychain = table as typeof tree.cri_keychain
      }
      if (!wrong.length) return {needed: false, reason: `${ctx.paths.lazyctlConfig} names the socket and root${wants.criKeychain ? ' and serves the CRI keychain' : ''}`}
      const text = `# lazyctl snapshotter configuration (${wrong.join(', ')} set by lazyctl node setup).\n${stringify(tree)}\n`
      ctx.state.set('lazyctl-config', text)
      return {needed: true, reason: `set ${wrong.join(', ')} in ${ctx.paths.lazyctlConfig}`, diff: unifiedDiff(current, text, ctx.paths.lazyctlConfig, ctx.paths.lazyctlConfig)}
    },
    async apply(ctx, check) {
      const text = (ctx.state.get('lazyctl-config') as string | undefined) ?? lazyctlConfigText(ctx, wants)
      await ctx.files.write(ctx.at(ctx.paths.lazyctlConfig), text, 0o644)
      return {status: 'changed', reason: check.reason.replace(/^create\b/, 'created')}
    },
  }
}

export const serviceStep: Step = {
  id: 'service',
  title: 'Install the snapshotter service',
  async check(ctx) {
    const f = facts(ctx)
    if (!f.systemd) return {needed: false, skip: true, reason: `no systemd on the node; start the snapshotter yourself: ${manualStartCommand(ctx.paths)}`}
    const unit = ctx.at(unitPath(ctx.paths))
    const want = unitText(ctx.paths)
    const current = (await ctx.files.read(unit))?.toString('utf8')
    const missing: string[] = []
    if (current !== want) missing.push(current === undefined ? `create ${unitPath(ctx.paths)}` : `update ${unitPath(ctx.paths)}`)
    if ((await ctx.files.readLink(ctx.at(wantsLinkPath(ctx.paths)))) !== unitPath(ctx.paths)) missing.push('enable it')
    if (!isOffline(ctx)) {
      const active = await ctx.transport.exec(`systemctl is-active --quiet ${shellQuote(ctx.paths.unitName)}`)
      if (active.code !== 0) missing.push('start it')
    }
    const diff = current !== want ? unifiedDiff(current ?? '', want, current === undefined ? '/dev/null' : unitPath(ctx.paths), unitPath(ctx.paths)) : undefined
    if (!missing.length) return {needed: false, reason: `${ctx.paths.unitName}.service installed, enabled${isOffline(ctx) ? '' : ' and running'}`}
    return {needed: true, reason: missing.join(', '), ...(diff ? {diff} : {})}
  },
  async apply(ctx, check) {
    await ctx.files.write(ctx.at(unitPath(ctx.paths)), unitText(ctx.paths), 0o644)
    const link = ctx.at(wantsLinkPath(ctx.paths))
    await mustExec(ctx, `mkdir -p ${shellQuote(dirname(link))} && ln -sfn ${shellQuote(unitPath(ctx.paths))} ${shellQuote(link)}`, 'enabling the unit')
    ctx.files.forget(link)
    if (!isOffline(ctx)) {
      const unit = shellQuote(ctx.paths.unitName)
      await mustExec(ctx, `systemctl daemon-reload && systemctl restart ${unit}`, `starting ${ctx.paths.unitName}`, {timeoutMs: 120_000})
    }
    return {status: 'changed', reason: check.reason}
  },
}

export const containerdConfigStep: Step = {
  id: 'containerd-config',
  title: "Merge containerd's config",
  async check(ctx) {
    const path = ctx.paths.containerdConfig
    const original = await ctx.files.read(ctx.at(path))
    const merge = mergeContainerdConfig(original?.toString('utf8'), {
      snapshotterSocket: ctx.paths.snapshotterSocket,
      pluginName: ctx.paths.pluginName,
      path,
      ...(facts(ctx).containerd ? {containerd: facts(ctx).containerd!} : {}),
    })
    ctx.state.set('merge', {merge, original})
    if (!merge.changed) return {needed: false, reason: `${path} already uses the ${ctx.paths.pluginName} snapshotter (config version ${merge.schema})`}
    return {
      needed: true,
      reason: `${merge.changes.length} setting(s) for config version ${merge.schema}: ${merge.changes.join('; ')}`,
      diff: unifiedDiff(original?.toString('utf8') ?? '', merge.text, original ? path : '/dev/null', path),
    }
  },
  async apply(ctx, check) {
    const {merge, original} = ctx.state.get('merge') as {merge: ReturnType<typeof mergeContainerdConfig>; original: Buffer | undefined}
    const path = ctx.paths.containerdConfig
    const backup = ctx.at(path + BACKUP_SUFFIX)
    const created = ctx.at(path + CREATED_SUFFIX)
    let backedUp = ''
    // The backup is the file as it was before lazyctl ever touched it: taken once, never refreshed.
    if (!(await ctx.files.exists(backup)) && !(await ctx.files.exists(created))) {
      if (original) await ctx.files.write(backup, original, 0o600)
      else await ctx.files.write(created, 'lazyctl node setup created this containerd config; teardown removes it\n', 0o600)
      backedUp = original ? `; original saved as ${path}${BACKUP_SUFFIX}` : ''
    }
    await ctx.files.write(ctx.at(path), merge.text, original ? ((await modeOf(ctx, ctx.at(path))) ?? 0o644) : 0o644)
    return {status: 'changed', reason: `${check.reason}${backedUp}`}
  },
}

/**
 * containerd before 1.6.32 and 1.7.16 ignores a proxy plugin's `exports.root` and tells kubelet
 * that the image filesystem is `<containerd root>/io.containerd.snapshotter.v1.<plugin>`; when that
 * directory does not exist, kubelet reports "invalid capacity 0 on image filesystem" and image GC
 * never runs (containerd#10095). Newer containerd needs nothing here.
 */
export function containerdNeedsImageFsDir(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version)
  if (!m) return false
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (major !== 1) return false
  if (minor < 6) return true
  if (minor === 6) return patch < 32
  if (minor === 7) return patch < 16
  return false
}

function imageFsDir(ctx: PlanContext): string {
  const merged = ctx.state.get('merge') as {merge: ReturnType<typeof mergeContainerdConfig>} | undefined
  const root = typeof merged?.merge.tree.root === 'string' ? merged.merge.tree.root : '/var/lib/containerd'
  return join(root, `io.containerd.snapshotter.v1.${ctx.paths.pluginName}`)
}

export const imageFsStep: Step = {
  id: 'image-fs',
  title: "Give kubelet containerd's image filesystem",
  async check(ctx) {
    // Unknown (an offline root whose containerd cannot run here): an empty directory costs nothing.
    const version = facts(ctx).containerd?.version
    if (version && !containerdNeedsImageFsDir(version)) return {needed: false, reason: `containerd ${version} reports the snapshotter's own root to kubelet`}
    const which = version ? `containerd ${version}` : 'containerd before 1.6.32 (its version is unknown here)'
    const dir = imageFsDir(ctx)
    const present = await ctx.transport.exec(`test -d ${shellQuote(ctx.at(dir))}`)
    if (present.code === 0) return {needed: false, reason: `${dir} exists (kubelet's image filesystem on ${which})`}
    return {needed: true, reason: `create ${dir}: ${which} reports it to kubelet as the image filesystem (else kubelet's image GC never runs)`}
  },
  async apply(ctx, check) {
    await mustExec(ctx, `mkdir -p ${shellQuote(ctx.at(imageFsDir(ctx)))}`, 'creating the image filesystem directory')
    return {status: 'changed', reason: check.reason.replace(/^create\b/, 'created')}
  },
}

export function restartCommand(kubelet: boolean): string {
  return `systemctl daemon-reload && systemctl restart containerd${kubelet ? ' && if systemctl cat kubelet.service >/dev/null 2>&1; then systemctl restart kubelet; fi' : ''}`
}

/** Restarts containerd (and kubelet) so they read the new config. Skipped, with the command to run, without systemd. */
export async function restartContainerd(ctx: PlanContext): Promise<{restarted: boolean; reason: string}> {
  const f = facts(ctx)
  if (!f.systemd) {
    return {restarted: false, reason: `no systemd on the node: restart containerd yourself${f.kubelet ? ' and kubelet' : ''} (stop it and start it again with the same arguments), then run: ${shellCommand([lazyctlBinary(ctx.paths), 'node', 'verify'])}`}
  }
  await mustExec(ctx, restartCommand(f.kubelet), 'restarting containerd', {timeoutMs: 180_000})
  return {restarted: true, reason: `restarted containerd${f.kubelet ? ' and kubelet' : ''}`}
}

export const restartStep: Step = {
  id: 'restart',
  title: 'Restart containerd',
  async check(ctx) {
    if (!ctx.changed.has('containerd-config') && !ctx.changed.has('kubelet-config')) return {needed: false, reason: `containerd${ctx.paths.kubeletConfig ? ' and kubelet' : ''} config unchanged; no restart`}
    if (!facts(ctx).systemd) {
      const {reason} = await restartContainerd(ctx)
      ctx.state.set('restart-skipped', true)
      return {needed: false, skip: true, reason}
    }
    return {needed: true, reason: `restart containerd${facts(ctx).kubelet ? ' and kubelet' : ''} to load the new config`}
  },
  async apply(ctx) {
    const {reason} = await restartContainerd(ctx)
    return {status: 'changed', reason}
  },
}

/** The command that runs the installed lazyctl on the node (bypassing the wrapper under an offline root). */
function lazyctlOnNode(ctx: PlanContext): string[] {
  const bundle = ctx.state.get('bundle') as Bundle | undefined
  if (bundle) return [ctx.at(bundle.nodePath), ctx.at(join(ctx.paths.installDir, 'app', 'bin', 'run.js'))]
  return [ctx.at(lazyctlBinary(ctx.paths))]
}

export async function verifyNode(ctx: PlanContext): Promise<VerifyReport> {
  const options = {containerdAddress: ctx.paths.containerdAddress, snapshotterSocket: ctx.paths.snapshotterSocket, pluginName: ctx.paths.pluginName, timeoutMs: 10_000}
  if (ctx.transport.kind === 'local') return verifyLocal(options)
  const args = [...lazyctlOnNode(ctx), 'node', 'verify', '-a', options.containerdAddress, '--snapshotter-socket', options.snapshotterSocket, '--plugin', options.pluginName, '--format', 'json']
  const r = await ctx.transport.exec(shellCommand(args), {timeoutMs: 60_000})
  try {
    return JSON.parse(r.stdout) as VerifyReport
  } catch {
    throw new Error(`lazyctl node verify on the node failed (exit ${r.code}): ${(r.stderr.trim() || r.stdout.trim()).split('\n').slice(-2).join(' / ')}`)
  }
}

/** Puts the original containerd config back, byte for byte (or removes the one setup created). */
export async function restoreContainerdConfig(ctx: PlanContext, options: {dropBackup: boolean}): Promise<string | undefined> {
  return restoreOriginal(ctx, ctx.paths.containerdConfig, options)
}

/** Puts back the file setup backed up (or removes the one it created); undefined when nothing changed. */
export async function restoreOriginal(ctx: PlanContext, path: string, options: {dropBackup: boolean}): Promise<string | undefined> {
  const backup = await ctx.files.read(ctx.at(path + BACKUP_SUFFIX))
  const createdMarker = await ctx.files.exists(ctx.at(path + CREATED_SUFFIX))
  let done: string | undefined
  if (backup) {
    const current = await ctx.files.read(ctx.at(path))
    if (!current || !current.equals(backup)) {
      // Setup kept the original's mode on the file it wrote, so the file's mode is the original's.
      await ctx.files.write(ctx.at(path), backup, (await modeOf(ctx, ctx.at(path))) ?? 0o644)
      done = `restored ${path} from ${path}${BACKUP_SUFFIX}`
    }
    if (options.dropBackup) {
      await mustExec(ctx, `rm -f ${shellQuote(ctx.at(path + BACKUP_SUFFIX))}`, 'removing the backup')
      ctx.files.forget(ctx.at(path + BACKUP_SUFFIX))
    }
  } else if (createdMarker) {
    await mustExec(ctx, `rm -f ${shellQuote(ctx.at(path))}${options.dropBackup ? ` ${shellQuote(ctx.at(path + CREATED_SUFFIX))}` : ''}`, 'removing the config setup created')
    ctx.files.forget(ctx.at(path), ctx.at(path + CREATED_SUFFIX))
    done = `removed ${path}, which setup had created`
  }
  return done
}

/**
 * The permission bits of a file on the target, to write it back with them: containerd's config may
 * hold registry passwords, and an original 0600 must not come back 0644.
 */
async function modeOf(ctx: PlanContext, path: string): Promise<number | undefined> {
  const r = await ctx.transport.exec(`stat -c %a ${shellQuote(path)}`)
  const mode = r.code === 0 ? Number.parseInt(r.stdout.trim(), 8) : NaN
  return Number.isInteger(mode) ? mode : undefined
}

/** The endpoint kubelet is given: the snapshotter's socket, where the CRI image service answers. */
function kubeletImageEndpoint(ctx: PlanContext): string {
  return `unix://${ctx.paths.snapshotterSocket}`
}

export const kubeletConfigStep: Step = {
  id: 'kubelet-config',
  title: "Point kubelet's image service at the snapshotter",
  async check(ctx) {
    const path = ctx.paths.kubeletConfig
    const current = await ctx.files.read(ctx.at(path))
    if (!current) throw new LazyError('NODE_STEP_FAILED', `${path}: no such file on the node`, {hint: "name kubelet's config file (kubelet --config=…) with --kubelet-config"})
    const edit = setImageServiceEndpoint(current.toString('utf8'), kubeletImageEndpoint(ctx), path)
    ctx.state.set('kubelet-edit', edit)
    if (!edit.changed) return {needed: false, reason: `${path} sends image calls to ${kubeletImageEndpoint(ctx)}`}
    return {
      needed: true,
      reason: `set ${IMAGE_SERVICE_KEY} = ${kubeletImageEndpoint(ctx)} in ${path}${edit.previous ? ` (was ${edit.previous})` : ''}`,
      diff: unifiedDiff(current.toString('utf8'), edit.text, path, path),
    }
  },
  async apply(ctx, check) {
    const path = ctx.paths.kubeletConfig
    const edit = ctx.state.get('kubelet-edit') as ReturnType<typeof setImageServiceEndpoint>
    const backup = ctx.at(path + BACKUP_SUFFIX)
    let backedUp = ''
    // As for containerd's config: the file as it was before lazyctl ever touched it, taken once.
    if (!(await ctx.files.exists(backup))) {
      await ctx.files.write(backup, (await ctx.files.read(ctx.at(path)))!, 0o600)
      backedUp = `; original saved as ${path}${BACKUP_SUFFIX}`
    }
    await ctx.files.write(ctx.at(path), edit.text, (await modeOf(ctx, ctx.at(path))) ?? 0o644)
    return {status: 'changed', reason: `${check.reason}${backedUp}`}
  },
}

export const verifyStep: Step = {
  id: 'verify',
  title: 'Verify the snapshotter',
  async check(ctx): Promise<StepCheck> {
    if (ctx.dryRun) return {needed: false, skip: true, reason: 'dry run: nothing to verify'}
    if (ctx.state.get('restart-skipped')) return {needed: false, skip: true, reason: 'containerd was not restarted; verify after restarting it'}
    // Right after a restart containerd and the snapshotter need a moment; give them up to 30 s.
    const restarted = !isOffline(ctx) && (ctx.changed.has('restart') || ctx.changed.has('service'))
    const deadline = Date.now() + (restarted ? VERIFY_SETTLE_MS : 0)
    let report: VerifyReport
    for (;;) {
      try {
        report = await verifyNode(ctx)
      } catch (err) {
        // A verifier that cannot even run is a failed verification: roll back all the same.
        report = {ok: false, checks: [{name: 'verification', ok: false, detail: describeError(err)}]}
      }
      if (report.ok || Date.now() >= deadline) break
      await delay(1000)
    }
    ctx.state.set('verify-report', report)
    if (report.ok) return {needed: false, reason: summarizeReport(report)}
    return {needed: true, reason: summarizeReport(report)}
  },
  async apply(ctx) {
    // Verification failed. Undo this run's config change so containerd keeps working as before.
    const report = ctx.state.get('verify-report') as VerifyReport
    const undone: string[] = []
    if (ctx.changed.has('containerd-config') || ctx.changed.has('kubelet-config')) {
      if (ctx.changed.has('containerd-config')) {
        const restored = await restoreContainerdConfig(ctx, {dropBackup: false})
        if (restored) undone.push(restored)
      }
      // kubelet must not keep sending its image calls to a snapshotter that failed verification.
      if (ctx.changed.has('kubelet-config')) {
        const restored = await restoreOriginal(ctx, ctx.paths.kubeletConfig, {dropBackup: false})
        if (restored) undone.push(restored)
      }
      if (!isOffline(ctx) && facts(ctx).systemd) undone.push((await restartContainerd(ctx)).reason)
    }
    throw new LazyError('NODE_VERIFY_FAILED', `${summarizeReport(report)}${undone.length ? `; rolled back: ${undone.join('; ')}` : ''}`)
  },
}

export interface SetupPlanOptions {
  skip: Set<string>
  offline: boolean
  verify: boolean
  /** `--cri-keychain`: lazyctl's config serves kubelet's image service. */
  criKeychain?: boolean
  /** `--kubelet-config` given: point kubelet's image service at the snapshotter. */
  kubeletConfig?: boolean
}

export function setupSteps(options: SetupPlanOptions): Step[] {
  const steps: Step[] = [detectStep]
  for (const step of [fuseStep, installStep, lazyctlConfigStep({criKeychain: options.criKeychain ?? false}), serviceStep]) if (!options.skip.has(step.id)) steps.push(step)
  steps.push(containerdConfigStep)
  if (!options.skip.has(imageFsStep.id)) steps.push(imageFsStep)
  if (options.kubeletConfig) steps.push(kubeletConfigStep)
  // An offline root has no daemon to restart; verification there runs only when asked for.
  if (!options.offline) steps.push(restartStep)
  if (options.verify) steps.push(verifyStep)
  return steps
}
