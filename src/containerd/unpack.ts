// Unpacks an image's layers into snapshots, as containerd's unpacker does: per layer, Stat(chainID)
// → Prepare("extract-… <chainID>", parent, labels incl. containerd.io/snapshot.ref) → Diff.Apply →
// Commit(chainID). A Prepare answered with ALREADY_EXISTS means the snapshotter (a remote one, or
// another client) already has the layer: Stat(chainID) and move on without fetching its blob.
import {randomBytes} from 'node:crypto'
import {describeError, LazyError} from '../cli/errors.js'
import {chainIds} from '../oci/chain-id.js'
import type {Descriptor} from '../oci/descriptor.js'
import type {Digest} from '../oci/digest.js'
import {GrpcStatus, isGrpcStatus, type ContainerdConnection} from './connection.js'
import {setContentLabels} from './content.js'
import {toProtoDescriptor} from './images.js'
import {inheritedLabels, SNAPSHOT_REF_LABEL} from './remote-snapshot-labels.js'
import {commitSnapshot, prepareSnapshot, removeSnapshot, statSnapshot, type Mount} from './snapshots.js'

export const UNCOMPRESSED_LABEL = 'containerd.io/uncompressed'

export interface UnpackOptions {
  snapshotter: string
  /** The pull's lease: every snapshot and blob created is added to it. */
  lease: string
  /** The manifest's layers, in order. */
  layers: readonly Descriptor[]
  /** The config's rootfs.diff_ids; must be as many as the layers. */
  diffIds: readonly Digest[]
  /**
   * Extra Prepare labels for layer `index` (the remote-snapshot hook: see remoteSnapshotLabels).
   * Inherited `containerd.io/snapshot/*` annotations and `containerd.io/snapshot.ref` are always added.
   */
  layerLabels?: (index: number) => Record<string, string>
  /** Makes sure layer `index`'s blob is in the content store (fetching it); called only for layers that need applying. */
  fetchLayer: (layer: Descriptor, index: number) => Promise<void>
  /** How many layer blobs to fetch at once once fetching starts. Default 3. */
  fetchConcurrency?: number
  /** Reports each layer's outcome (progress output). */
  onLayer?: (event: {index: number; chainId: Digest; outcome: 'exists' | 'remote' | 'applied'}) => void
  /**
   * Called before a layer that was offered to the snapshotter as a remote one is downloaded
   * instead (the snapshotter fell back). Throwing refuses the download: the pull fails with it.
   */
  onDownload?: (index: number, chainId: Digest) => Promise<void>
}

export interface UnpackResult {
  /** Chain ID of the top layer: the parent of a container's rootfs snapshot. */
  chainId: Digest
  chainIds: Digest[]
  /** Layers the snapshotter provided without their blobs (remote snapshots). */
  remoteLayers: number[]
  appliedLayers: number[]
}

const PREPARE_ATTEMPTS = 3

export async function unpackLayers(conn: ContainerdConnection, options: UnpackOptions): Promise<UnpackResult> {
  const {snapshotter, lease, layers, diffIds} = options
  if (layers.length !== diffIds.length) {
    throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `image has ${layers.length} layers but its config lists ${diffIds.length} diff_ids`)
  }
  if (layers.length === 0) throw new LazyError('UNSUPPORTED_MEDIA_TYPE', 'image has no layers')
  const chain = chainIds(diffIds)
  const fetches = new LayerFetches(options)
  const result: UnpackResult = {chainId: chain.at(-1)!, chainIds: chain, remoteLayers: [], appliedLayers: []}
  try {
    for (let i = 0; i < layers.length; i++) {
      const chainId = chain[i]!
      const parent = i === 0 ? '' : chain[i - 1]!
      if (await statSnapshot(conn, snapshotter, chainId)) {
        options.onLayer?.({index: i, chainId, outcome: 'exists'})
        continue
      }
      const labels = {...inheritedLabels(layers[i]!), ...options.layerLabels?.(i), [SNAPSHOT_REF_LABEL]: chainId}
      const prepared = await prepareLayer(conn, snapshotter, chainId, parent, labels, lease)
      if (prepared === 'exists') {
        result.remoteLayers.push(i)
        options.onLayer?.({index: i, chainId, outcome: 'remote'})
        continue
      }
      if (options.onDownload) {
        try {
          await options.onDownload(i, chainId)
        } catch (err) {
          await removeSnapshot(conn, snapshotter, prepared.key).catch(() => undefined)
          throw err
        }
      }
      // From the first layer that needs its bytes on, fetch the rest in the background.
      fetches.startFrom(i)
      try {
        await fetches.wait(i)
        const applied = await conn.call(
          'diff',
          'Apply',
          {diff: toProtoDescriptor(layers[i]!), mounts: prepared.mounts, payloads: {}},
          `apply layer ${layers[i]!.digest}`,
          {lease},
        )
        if (applied.applied?.digest !== diffIds[i]) {
          throw new LazyError('DIGEST_MISMATCH', `layer ${layers[i]!.digest} unpacks to ${applied.applied?.digest}, but the image config says ${diffIds[i]}`)
        }
        try {
          await commitSnapshot(conn, snapshotter, chainId, prepared.key, labels, {lease})
        } catch (err) {
          // Someone else committed the same chain meanwhile: theirs is identical.
          if (!isGrpcStatus(err, GrpcStatus.ALREADY_EXISTS)) throw err
          await removeSnapshot(conn, snapshotter, prepared.key)
        }
      } catch (err) {
        await removeSnapshot(conn, snapshotter, prepared.key).catch(() => undefined)
        throw err
      }
      await setContentLabels(conn, layers[i]!.digest, {[UNCOMPRESSED_LABEL]: diffIds[i]!}, lease)
      result.appliedLayers.push(i)
      options.onLayer?.({index: i, chainId, outcome: 'applied'})
    }
  } finally {
    await fetches.settle()
  }
  return result
}

/** Prepares the extraction snapshot of one layer; 'exists' when the snapshotter already has the chain. */
async function prepareLayer(
  conn: ContainerdConnection,
  snapshotter: string,
  chainId: Digest,
  parent: string,
  labels: Record<string, string>,
  lease: string,
): Promise<'exists' | {key: string; mounts: Mount[]}> {
  for (let attempt = 1; ; attempt++) {
    // The Go client's key format ("extract-%s %s"): unique, and names the target for debugging.
    const key = `extract-${process.hrtime.bigint()}-${randomBytes(3).toString('base64url')} ${chainId}`
    try {
      return {key, mounts: await prepareSnapshot(conn, snapshotter, key, parent, labels, {lease})}
    } catch (err) {
      // A lazy snapshotter in strict mode refuses a layer it cannot mount ([remote] require_lazy).
      if (isGrpcStatus(err, GrpcStatus.FAILED_PRECONDITION) && /require_lazy/.test(describeError(err))) {
        throw new LazyError('NOT_LAZY', `layer ${chainId} on ${snapshotter}: ${describeError(err).replace(/^.*?not lazy/, 'not lazy')}`, {cause: err, hint: 'the snapshotter is in strict mode: convert the image to eStargz (lazyctl convert)'})
      }
      if (!isGrpcStatus(err, GrpcStatus.ALREADY_EXISTS)) throw err
      if (await statSnapshot(conn, snapshotter, chainId)) return 'exists'
      // ALREADY_EXISTS for our key but no chain: a key collision or a racing remove. Retry.
      if (attempt >= PREPARE_ATTEMPTS) throw err
    }
  }
}

/** Background layer fetches with bounded concurrency, started lazily from the first layer that needs bytes. */
class LayerFetches {
  private readonly promises = new Map<number, Promise<void>>()
  private started = false
  constructor(private readonly options: UnpackOptions) {}

  startFrom(first: number): void {
    if (this.started) return
    this.started = true
    const queue = this.options.layers.map((_, i) => i).filter((i) => i >= first)
    const limit = this.options.fetchConcurrency ?? 3
    const resolvers = new Map<number, {resolve: () => void; reject: (e: unknown) => void}>()
    for (const i of queue) {
      const p = new Promise<void>((resolve, reject) => resolvers.set(i, {resolve, reject}))
      p.catch(() => undefined) // observed through wait(); don't crash on an unawaited rejection
      this.promises.set(i, p)
    }
    const worker = async (): Promise<void> => {
      for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
        const r = resolvers.get(i)!
        try {
          await this.options.fetchLayer(this.options.layers[i]!, i)
          r.resolve()
        } catch (err) {
          r.reject(err)
          // Fail the queued ones too: the unpack stops at this layer anyway.
          for (const j of queue.splice(0)) resolvers.get(j)!.reject(err)
        }
      }
    }
    this.running = Promise.all(Array.from({length: Math.min(limit, queue.length)}, worker)).then(() => undefined)
  }

  private running: Promise<void> = Promise.resolve()

  wait(index: number): Promise<void> {
    return this.promises.get(index) ?? Promise.reject(new Error(`layer ${index} was never scheduled for fetching`))
  }

  /** Waits for in-flight fetches, so none outlives the pull's lease. */
  async settle(): Promise<void> {
    await this.running.catch(() => undefined)
  }
}
