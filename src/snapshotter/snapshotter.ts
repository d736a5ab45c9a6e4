// The snapshotter: containerd's overlayfs snapshotter semantics over the SQLite metadata, plus the
// remote-snapshot decision of Prepare. No gRPC here (grpc-service.ts adapts it), so it can be
// driven and tested directly.
//
// Layout under the root (as stargz-snapshotter's):
//   <root>/snapshotter/metadata.db
//   <root>/snapshotter/snapshots/<id>/fs     upper dir, or FUSE mountpoint of a remote layer
//   <root>/snapshotter/snapshots/<id>/work   overlay workdir (active snapshots)
//
// Never touch a remote layer's mountpoint with a synchronous fs call: the FUSE server answers on
// this process's event loop, so a blocking call from here would wait on itself forever.
import {existsSync, renameSync} from 'node:fs'
import {chown, mkdir, mkdtemp, readdir, rm, stat} from 'node:fs/promises'
import {basename, join} from 'node:path'
import {diskUsage, type DiskUsage} from './disk-usage.js'
import {parseFilters} from './filters.js'
import type {Logger} from './log.js'
import {MetadataStore, type Labels, type SnapshotChain, type SnapshotInfo, type SnapshotRecord} from './metadata-store.js'
import {forceUnmount, mountsUnder} from './mount-table.js'
import {REMOTE_SNAPSHOT_LABEL, REMOTE_SNAPSHOT_LABEL_VALUE, layerSubject, readRemoteLabels, type RemoteLayerRequestLabels} from './remote-labels.js'
import type {RemoteLayerMounter} from './remote-layer-mounter.js'
import {fallbackReasonClass} from './fallback-reason.js'
import {SnapshotError, isSnapshotError} from './snapshot-error.js'
import {describeError} from '../cli/errors.js'

export interface Mount {
  type: string
  source: string
  options: string[]
}

export interface SnapshotterOptions {
  /** The daemon's root (e.g. /var/lib/lazyctl); the snapshotter uses `<root>/snapshotter`. */
  root: string
  mounter: RemoteLayerMounter
  log: Logger
  /** Whether to try remote snapshots at all, and how long the resolution may take before falling back. */
  remote: {enable: boolean; resolveTimeoutSec: number; requireLazy?: boolean}
}

/** Outcome of one remote-snapshot attempt, kept for `status` and tests. */
export interface RemoteAttempt {
  target: string
  key: string
  /** containerd's namespace of the Prepare (from the key containerd's metadata store wrote). */
  namespace?: string
  /** The image and the layer's blob digest, from the Prepare's labels. */
  image?: string
  layer?: string
  remote: boolean
  reason?: string
  at: string
}

export interface SnapshotterSummary {
  root: string
  snapshots: Array<SnapshotInfo & {id: number; remote: boolean; mounted?: boolean}>
  recentRemoteAttempts: RemoteAttempt[]
}

const RECENT_ATTEMPTS = 50
const RESTORE_CONCURRENCY = 4

export class Snapshotter {
  private readonly fallbacks = new Map<string, number>()
  readonly dir: string
  readonly snapshotsDir: string
  private readonly store: MetadataStore
  private readonly mounter: RemoteLayerMounter
  private readonly log: Logger
  private readonly remoteConfig: SnapshotterOptions['remote']
  /** Overlay's `index=off` is only understood when the module has the parameter. */
  private readonly overlayIndexOff: boolean
  private readonly attempts: RemoteAttempt[] = []
  /** Directories of snapshots being created (not yet recorded): cleanup must leave them alone. */
  private readonly creating = new Set<string>()

  private constructor(options: SnapshotterOptions, store: MetadataStore) {
    this.dir = join(options.root, 'snapshotter')
    this.snapshotsDir = join(this.dir, 'snapshots')
    this.store = store
    this.mounter = options.mounter
    this.log = options.log
    this.remoteConfig = options.remote
    this.overlayIndexOff = existsSync('/sys/module/overlay/parameters/index')
  }

  /** Opens (or creates) the metadata and directories under `root`. Call `recover()` before serving. */
  static async open(options: SnapshotterOptions): Promise<Snapshotter> {
    const dir = join(options.root, 'snapshotter')
    await mkdir(join(dir, 'snapshots'), {recursive: true, mode: 0o700})
    const store = new MetadataStore(join(dir, 'metadata.db'))
    return new Snapshotter(options, store)
  }

  fsPath(id: number): string {
    return join(this.snapshotsDir, String(id), 'fs')
  }

  private workPath(id: number): string {
    return join(this.snapshotsDir, String(id), 'work')
  }

  // ---- the Snapshots API ----

  async prepare(key: string, parent: string, labels: Labels): Promise<Mount[]> {
    const decision = this.remoteConfig.enable ? readRemoteLabels(labels) : {remote: false as const}
    if (decision.remote === true) {
      const existing = this.existingTarget(decision.request.target, parent)
      if (existing) throw alreadyExistsTarget(decision.request.target)
    }
    const chain = await this.createSnapshot('ACTIVE', key, parent, labels)
    if (decision.remote === 'refused') {
      this.recordAttempt({target: decision.target, key, remote: false, reason: decision.reason}, labels)
      await this.refuseIfStrict(key, decision.reason)
      this.log.warn('remote snapshot not possible, falling back to a normal snapshot (containerd will download the layer)', {
        key,
        target: decision.target,
        reason: decision.reason,
        'remote-snapshot-prepared': false,
      })
    } else if (decision.remote === true) {
      await this.tryRemote(key, chain, decision.request, labels)
    } else if (!this.remoteConfig.enable && labels['containerd.io/snapshot.ref']) {
      this.log.info('remote snapshots disabled in the config: normal snapshot', {key, target: labels['containerd.io/snapshot.ref']})
    }
    return this.mountsOrUndo(key, chain)
  }

  async view(key: string, parent: string, labels: Labels): Promise<Mount[]> {
    const chain = await this.createSnapshot('VIEW', key, parent, labels)
    return this.mountsOrUndo(key, chain)
  }

  /** The new snapshot's mounts; if a lazy ancestor is not served, the snapshot is not kept either. */
  private async mountsOrUndo(key: string, chain: SnapshotChain): Promise<Mount[]> {
    try {
      return this.mountsOf(chain)
    } catch (err) {
      await this.remove(key).catch(() => {})
      throw err
    }
  }

  async mounts(key: string): Promise<Mount[]> {
    return this.mountsOf(this.store.chain(key))
  }

  async commit(name: string, key: string, labels: Labels): Promise<void> {
    // Same order of checks as containerd's storage: the name first, then the key.
    if (this.store.has(name)) throw new SnapshotError('ALREADY_EXISTS', `committed snapshot ${name}: already exists`)
    // Usage is measured before the metadata changes, as containerd's overlay snapshotter does.
    const record = this.store.get(key)
    if (record.info.kind !== 'ACTIVE') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${key} is not active`)
    const usage = await diskUsage(this.fsPath(record.id))
    this.store.transaction(() => this.store.commit(key, name, labels, usage))
  }

  async remove(key: string): Promise<void> {
    const removed = this.store.transaction(() => this.store.remove(key))
    // The record is gone first: no new child can name it as parent while we unmount and delete.
    await this.removeDirectory(removed.id, removed.remote)
  }

  stat(key: string): SnapshotInfo {
    return this.store.get(key).info
  }

  update(info: {name: string; labels: Labels}, paths: string[]): SnapshotInfo {
    return this.store.transaction(() => this.store.updateLabels(info.name, info.labels, paths))
  }

  async usage(key: string): Promise<DiskUsage> {
    const record = this.store.get(key)
    if (record.info.kind === 'ACTIVE' && !record.remote) return diskUsage(this.fsPath(record.id))
    return {size: record.size, inodes: record.inodes}
  }

  /** Every snapshot matching `filters` (containerd syntax; empty = all), in key order. */
  walk(filters: string[]): SnapshotInfo[] {
    const filter = parseFilters(filters)
    return this.store
      .all()
      .map((record) => record.info)
      .filter((info) => filter.match((path) => snapshotField(info, path)))
  }

  /** Removes directories no snapshot owns any more (removals interrupted by a crash). */
  async cleanup(): Promise<void> {
    const entries = await readdir(this.snapshotsDir)
    // Read after the listing: a snapshot recorded meanwhile has its dir renamed in the same
    // synchronous transaction, so every listed id dir is either in `owned` or really orphaned.
    const owned = this.store.ids()
    for (const entry of entries) {
      const id = Number(entry)
      if (Number.isSafeInteger(id) && owned.has(id)) continue
      if (this.creating.has(entry)) continue
      await this.removeTree(join(this.snapshotsDir, entry))
    }
  }

  // ---- lifecycle ----

  /**
   * After a start: detaches mounts a killed daemon left under snapshots/ (dead FUSE servers),
   * removes orphaned directories, and mounts the remote layers recorded in the metadata again.
   * A layer that cannot be remounted stays recorded; Mounts over it then answer Unavailable.
   */
  async recover(): Promise<{remounted: number; failed: number}> {
    for (const stale of await mountsUnder(this.snapshotsDir)) {
      this.log.info('detaching a mount left by a previous run', {mountpoint: stale.target, fstype: stale.fsType})
      await forceUnmount(stale.target).catch((err: unknown) => this.log.warn('cannot detach stale mount', {mountpoint: stale.target, error: describeError(err)}))
    }
    await this.cleanup()
    let remounted = 0
    let failed = 0
    const remote = this.store.all().filter((record) => record.remote)
    // A few at a time: each waits on the registry (bounded by resolve_timeout_sec), and an image
    // has many layers; one at a time would keep the socket closed for the sum of them.
    const restoreOne = async (record: SnapshotRecord): Promise<void> => {
      const decision = readRemoteLabels(record.info.labels)
      if (decision.remote !== true) {
        failed++
        this.log.error('cannot restore remote snapshot: its labels no longer name a layer', {name: record.info.name, id: record.id})
        return
      }
      try {
        await this.mountRemote(record.id, decision.request, record.info.labels)
        remounted++
        this.log.info('restored remote snapshot', {name: record.info.name, id: record.id})
      } catch (err) {
        failed++
        this.log.error('failed to restore remote snapshot; containers using it will get Unavailable until it is removed', {
          name: record.info.name,
          id: record.id,
          reason: describeError(err),
        })
      }
    }
    const queue = [...remote]
    const workers = Array.from({length: Math.min(RESTORE_CONCURRENCY, queue.length)}, async () => {
      for (let record = queue.shift(); record; record = queue.shift()) await restoreOne(record)
    })
    await Promise.all(workers)
    return {remounted, failed}
  }

  /** Unmounts the remote layers and closes the metadata. */
  async close(): Promise<void> {
    await this.mounter.close()
    this.store.close()
  }

  summary(): SnapshotterSummary {
    return {
      root: this.dir,
      snapshots: this.store.all().map((record) => {
        const item: SnapshotInfo & {id: number; remote: boolean; mounted?: boolean} = {...record.info, id: record.id, remote: record.remote}
        if (record.remote) item.mounted = this.mounter.isMounted(this.fsPath(record.id))
        return item
      }),
      recentRemoteAttempts: [...this.attempts],
    }
  }

  // ---- internals ----

  private existingTarget(target: string, parent: string): SnapshotRecord | undefined {
    if (!this.store.has(target)) return undefined
    const record = this.store.get(target)
    return record.info.kind === 'COMMITTED' && record.info.parent === parent ? record : undefined
  }

  /**
   * Creates the directories under a temporary name, then records the snapshot and renames them to
   * its id in one transaction: a crash leaves either both or an orphan dir that cleanup removes.
   */
  private async createSnapshot(kind: 'ACTIVE' | 'VIEW', key: string, parent: string, labels: Labels): Promise<SnapshotChain> {
    const temp = await mkdtemp(join(this.snapshotsDir, 'new-'))
    this.creating.add(basename(temp))
    try {
      await mkdir(join(temp, 'fs'), {mode: 0o755})
      if (kind === 'ACTIVE') await mkdir(join(temp, 'work'), {mode: 0o711})
      // The upper dir takes the owner of the parent's root, so a container's / keeps its owner.
      if (parent !== '' && this.store.has(parent)) {
        const parentRecord = this.store.get(parent)
        const owner = await stat(this.fsPath(parentRecord.id))
        if (owner.uid !== 0 || owner.gid !== 0) await chown(join(temp, 'fs'), owner.uid, owner.gid)
      }
      // Checks, insert and rename in one synchronous transaction: a failed rename rolls the insert
      // back, and a crash before the commit leaves only an orphan dir (removed by cleanup).
      const chain = this.store.transaction(() => {
        const created = this.store.create(kind, key, parent, labels)
        renameSync(temp, join(this.snapshotsDir, String(created.id)))
        return created
      })
      return chain
    } catch (err) {
      await rm(temp, {recursive: true, force: true})
      throw err
    } finally {
      this.creating.delete(basename(temp))
    }
  }

  private mountsOf(chain: SnapshotChain): Mount[] {
    for (const id of chain.remoteParentIds) {
      if (!this.mounter.isMounted(this.fsPath(id))) {
        throw new SnapshotError('UNAVAILABLE', `layer of snapshot id ${id} unavailable: its lazy mount is not served (remount failed or registry unreachable)`)
      }
    }
    if (chain.parentIds.length === 0) {
      return [{type: 'bind', source: this.fsPath(chain.id), options: [chain.kind === 'VIEW' ? 'ro' : 'rw', 'rbind']}]
    }
    const options: string[] = []
    if (this.overlayIndexOff) options.push('index=off')
    if (chain.kind === 'ACTIVE') {
      options.push(`workdir=${this.workPath(chain.id)}`, `upperdir=${this.fsPath(chain.id)}`)
    } else if (chain.parentIds.length === 1) {
      return [{type: 'bind', source: this.fsPath(chain.parentIds[0]!), options: ['ro', 'rbind']}]
    }
    options.push(`lowerdir=${chain.parentIds.map((id) => this.fsPath(id)).join(':')}`)
    return [{type: 'overlay', source: 'overlay', options}]
  }

  /**
   * Tries to serve the layer lazily. On success the active snapshot is committed under the target
   * and containerd is told ALREADY_EXISTS (it then skips download and apply). Any failure before
   * the mount leaves the active snapshot as it was: containerd downloads and applies the layer.
   */
  /**
   * Strict mode ([remote] require_lazy): a layer that cannot be served lazily fails its Prepare with
   * the reason, so the pull fails, instead of being downloaded in full.
   */
  private async refuseIfStrict(key: string, reason: string): Promise<void> {
    if (!this.remoteConfig.requireLazy) return
    await this.remove(key).catch((err: unknown) => this.log.warn('cannot remove the refused active snapshot', {key, error: describeError(err)}))
    throw new SnapshotError('FAILED_PRECONDITION', `not lazy ([remote] require_lazy): ${reason}`)
  }

  private async tryRemote(key: string, chain: SnapshotChain, request: RemoteLayerRequestLabels, labels: Labels): Promise<void> {
    const started = Date.now()
    try {
      await this.mountRemote(chain.id, request, labels)
    } catch (err) {
      const reason = describeError(err)
      this.recordAttempt({target: request.target, key, remote: false, reason}, labels)
      this.log.warn('failed to prepare remote snapshot, falling back to a normal snapshot (containerd will download the layer)', {
        key,
        target: request.target,
        image: request.sources[0]?.imageRef,
        layer: request.sources[0]?.layerDigest,
        reason,
        'remote-snapshot-prepared': false,
      })
      await this.refuseIfStrict(key, reason)
      return
    }
    // The prioritized files local before containerd sees the layer as ready (bounded wait).
    const prefetch = await this.mounter.waitForPrefetch(this.fsPath(chain.id))
    if (prefetch !== 'none') this.log.debug('prefetch wait over', {key, layer: request.sources[0]?.layerDigest, result: prefetch, ms: Date.now() - started})
    const commitLabels = {...labels, [REMOTE_SNAPSHOT_LABEL]: REMOTE_SNAPSHOT_LABEL_VALUE}
    try {
      this.store.transaction(() => this.store.commit(key, request.target, commitLabels, {size: 0, inodes: 0}, true))
    } catch (err) {
      // Mounted but not recorded: undo the mount and the active snapshot.
      await this.mounter.unmount(this.fsPath(chain.id)).catch(() => {})
      if (isSnapshotError(err, 'ALREADY_EXISTS')) {
        // Another Prepare of the same chain won the race: its snapshot serves containerd just as well.
        await this.remove(key).catch((removeErr: unknown) => this.log.warn('cannot remove duplicate active snapshot', {key, error: describeError(removeErr)}))
        throw alreadyExistsTarget(request.target)
      }
      throw err
    }
    this.recordAttempt({target: request.target, key, remote: true}, labels)
    this.log.info('remote snapshot prepared', {key, target: request.target, layer: request.sources[0]?.layerDigest, ms: Date.now() - started, 'remote-snapshot-prepared': true})
    throw alreadyExistsTarget(request.target)
  }

  private async mountRemote(id: number, request: RemoteLayerRequestLabels, labels: Labels): Promise<void> {
    const controller = new AbortController()
    const timeoutMs = this.remoteConfig.resolveTimeoutSec * 1000
    const mountpoint = this.fsPath(id)
    const mounting = this.mounter.mount({...request, mountpoint, snapshotId: id, labels, signal: controller.signal, log: this.log.with({layer: request.sources[0]?.layerDigest, image: request.sources[0]?.imageRef})})
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        controller.abort()
        reject(new Error(`layer resolution took longer than ${this.remoteConfig.resolveTimeoutSec} s`))
      }, timeoutMs)
    })
    try {
      await Promise.race([mounting, timeout])
    } catch (err) {
      // A mount that completes after we gave up must not stay behind.
      mounting.then(() => this.mounter.unmount(mountpoint)).catch(() => {})
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  private async removeDirectory(id: number, remote: boolean): Promise<void> {
    const dir = join(this.snapshotsDir, String(id))
    if (remote) {
      await this.mounter.unmount(this.fsPath(id)).catch((err: unknown) => this.log.warn('cannot unmount remote layer', {id, error: describeError(err)}))
    }
    await this.removeTree(dir).catch((err: unknown) => {
      // The record is gone; cleanup will retry the directory.
      this.log.warn('cannot remove snapshot directory; Cleanup will retry', {dir, error: describeError(err)})
    })
  }

  /** Deletes a snapshot directory, detaching anything still mounted in it first (rm must never walk into a mount). */
  private async removeTree(dir: string): Promise<void> {
    for (const mount of await mountsUnder(dir)) {
      if (this.mounter.isMounted(mount.target)) await this.mounter.unmount(mount.target)
      else await forceUnmount(mount.target)
    }
    await rm(dir, {recursive: true, force: true})
  }

  /** Fallbacks to a full download since start, by coarse reason (metrics). */
  fallbackCounts(): Record<string, number> {
    return Object.fromEntries(this.fallbacks)
  }

  private recordAttempt(outcome: Pick<RemoteAttempt, 'target' | 'key' | 'remote' | 'reason'>, labels: Labels): void {
    // containerd's metadata store names backend snapshots `<namespace>/<seq>/<key>`.
    const namespace = /^([^/]+)\/\d+\//.exec(outcome.key)?.[1]
    const attempt: Omit<RemoteAttempt, 'at'> = {...outcome, ...(namespace ? {namespace} : {}), ...layerSubject(labels)}
    if (!attempt.remote) {
      const reason = fallbackReasonClass(attempt.reason ?? '')
      this.fallbacks.set(reason, (this.fallbacks.get(reason) ?? 0) + 1)
    }
    this.attempts.push({...attempt, at: new Date().toISOString()})
    if (this.attempts.length > RECENT_ATTEMPTS) this.attempts.shift()
  }
}

function alreadyExistsTarget(target: string): SnapshotError {
  return new SnapshotError('ALREADY_EXISTS', `target snapshot ${JSON.stringify(target)}: already exists`)
}

/** The fields containerd's snapshot filters can name: kind, name, parent, labels.<key>. */
function snapshotField(info: SnapshotInfo, path: string[]): string | undefined {
  switch (path[0]) {
    case 'kind':
      return info.kind.toLowerCase()
    case 'name':
      return info.name
    case 'parent':
      return info.parent
    case 'labels':
      return info.labels[path.slice(1).join('.')]
    default:
      return undefined
  }
}
