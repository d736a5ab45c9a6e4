// Before a pull or run on a remote (lazy) snapshotter: make sure containerd has it as a proxy
// plugin, and that something serves its socket — starting `lazyctl snapshotter serve` when nothing
// does (src/snapshotter/spawn.ts) and waiting until containerd's calls get through to it.
import {existsSync} from 'node:fs'
import {randomBytes} from 'node:crypto'
import {LazyError, isLazyError} from '../cli/errors.js'
import type {ContainerdConnection} from '../containerd/connection.js'
import {snapshotterPlugin} from '../containerd/introspection.js'
import {isRemoteSnapshotter} from '../containerd/remote-snapshot-labels.js'
import {prepareSnapshot, removeSnapshot} from '../containerd/snapshots.js'
import {eStargzLayerDigests} from '../estargz/toc.js'
import type {PullOptions} from '../containerd/pull.js'
import type {ImageManifest} from '../oci/descriptor.js'
import {sendResolveAhead} from '../snapshotter/status-protocol.js'

/**
 * Whether containerd's calls get through to the proxy snapshotter. A Stat would not tell: containerd
 * answers it from its own metadata. A Prepare reaches the snapshotter; the probe snapshot is removed
 * at once. containerd redials a proxy plugin with a backoff after a failed dial, so this is polled.
 */
export async function containerdReachesSnapshotter(conn: ContainerdConnection, snapshotter: string): Promise<boolean> {
  const key = `lazyctl-readiness-probe-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    await prepareSnapshot(conn, snapshotter, key, '')
  } catch (err) {
    if (isLazyError(err, 'SNAPSHOTTER_UNREACHABLE')) return false
    throw err
  }
  await removeSnapshot(conn, snapshotter, key)
  return true
}

export interface LazySnapshotterReady {
  spawned: boolean
  /** The socket of the proxy snapshotter containerd dials (absent for builtin snapshotters). */
  socket?: string
}

/** `onAnswering` hears the proxy's socket once the snapshotter answers there, before containerd is known to reach it. */
export async function ensureLazySnapshotter(conn: ContainerdConnection, snapshotter: string, onAnswering?: (socket: string) => void): Promise<LazySnapshotterReady> {
  if (!isRemoteSnapshotter(snapshotter)) return {spawned: false}
  const plugin = await snapshotterPlugin(conn, snapshotter)
  if (!plugin) {
    throw new LazyError('SNAPSHOTTER_NOT_CONFIGURED', `containerd at ${conn.address} has no snapshotter "${snapshotter}"`, {
      hint: 'configure it with lazyctl node setup --local, or pull without lazy loading: --snapshotter overlayfs',
    })
  }
  const socket = plugin.exports.address
  // Builtin (not a proxy): containerd runs it itself.
  if (!socket) return {spawned: false}
  // The usual case: the daemon runs and containerd reaches it, which one probe through containerd
  // shows. Without a socket file nothing runs there, and a probe would only set containerd's redial
  // backoff going before the daemon is spawned.
  if (existsSync(socket) && (await containerdReachesSnapshotter(conn, snapshotter).catch(() => false))) {
    onAnswering?.(socket)
    return {spawned: false, socket}
  }
  const [{ensureSnapshotter}, {locateSnapshotter}] = await Promise.all([import('../snapshotter/spawn.js'), import('../snapshotter/locate.js')])
  // The socket is the one containerd dials; root and config come from lazyctl's config (or its env).
  const location = locateSnapshotter({socket})
  const result = await ensureSnapshotter({
    socket,
    root: location.root,
    // serve refuses a --config that does not exist; without one it uses its defaults.
    ...(existsSync(location.configFile) ? {config: location.configFile} : {}),
    readyCheck: () => containerdReachesSnapshotter(conn, snapshotter),
    ...(onAnswering ? {onAnswering: () => onAnswering(socket)} : {}),
  })
  return {spawned: result.spawned, socket}
}

export interface LazySnapshotterStart {
  /** containerd reaches the snapshotter (or it needs none): snapshots may be prepared. */
  ready: Promise<LazySnapshotterReady>
  /**
   * The proxy snapshotter's socket as soon as something answers there; undefined for a builtin
   * snapshotter or when starting failed. Comes before `ready` by containerd's reachability probe,
   * which the daemon's own RPCs (ResolveAhead) need not wait for.
   */
  answering: Promise<string | undefined>
}

/** ensureLazySnapshotter, started now and awaited by the caller later (see whileSnapshotterStarts). */
export function startLazySnapshotter(conn: ContainerdConnection, snapshotter: string): LazySnapshotterStart {
  let answered!: (socket: string | undefined) => void
  const answering = new Promise<string | undefined>((resolve) => {
    answered = resolve
  })
  const ready = ensureLazySnapshotter(conn, snapshotter, answered)
  // Awaited later, after other work: a failure meanwhile must not count as unhandled.
  ready.then(() => answered(undefined), () => answered(undefined))
  return {ready, answering}
}

/**
 * Runs `work` (image lookup, manifest and config fetch) while the snapshotter starts. When both
 * fail, the snapshotter's error is the one reported: without it there is nothing to pull into.
 */
export async function whileSnapshotterStarts<T>(snapshotterReady: Promise<unknown>, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    await snapshotterReady
    throw err
  }
}

/**
 * A pull's onManifest that tells lazyctl's snapshotter which eStargz layers it is about to be asked
 * for: it reads their TOCs while the pull stores manifest and config, instead of when each
 * Prepare arrives. Best effort (a snapshotter that is not lazyctl's ignores it).
 */
export function hintLayersToSnapshotter(answering: Promise<string | undefined>): (name: string, manifest: ImageManifest) => void {
  return (name, manifest) => {
    const layers = eStargzLayerDigests(manifest)
    if (layers.length === 0) return
    void answering.then(
      (socket) => {
        if (socket) sendResolveAhead(socket, {image: name, layers})
      },
      () => undefined,
    )
  }
}

/**
 * What to do when the lazy snapshotter declines a layer of a pull: one notice line per image on
 * stderr with the snapshotter's own reason (a fallback should never be silent), or, in strict
 * mode, a refusal that fails the pull with that reason before anything is downloaded.
 */
export function notLazyHandler(answering: Promise<string | undefined>, o: {requireLazy?: boolean | undefined; notice?: ((line: string) => void) | undefined}): NonNullable<PullOptions['onNotLazy']> {
  const notice = o.notice ?? ((line: string) => process.stderr.write(`lazyctl: ${line}\n`))
  const told = new Set<string>()
  return async ({name, layer, chainId}) => {
    const socket = await answering
    const reason = (socket ? await fallbackReason(socket, chainId).catch(() => undefined) : undefined) ?? 'the snapshotter did not say why'
    if (o.requireLazy) {
      throw new LazyError('NOT_LAZY', `layer ${layer.digest} of ${name} is not lazy: ${reason}`, {hint: 'convert the image to eStargz (lazyctl convert), or leave out --require-lazy to download such layers'})
    }
    if (told.has(name)) return
    told.add(name)
    notice(`layer ${layer.digest} of ${name}: not lazy: ${reason}; downloading it`)
  }
}

/** The snapshotter's own reason for not serving `chainId` lazily, from its recent attempts. */
async function fallbackReason(socket: string, chainId: string): Promise<string | undefined> {
  // Only on a fallback: the status client (grpc-js) stays off the lazy path's start.
  const {querySnapshotterStatus} = await import('../snapshotter/status-service.js')
  const status = await querySnapshotterStatus(socket, 2000)
  return status.recentRemoteAttempts.findLast((a) => a.target === chainId && !a.remote)?.reason
}
