// The seam between the snapshotter (metadata, mounts, the remote-snapshot decision) and the lazy
// filesystem (registry resolution, eStargz footer/TOC, FUSE). The snapshotter only knows this
// contract; src/snapshotter/estargz-layer-mounter.ts implements it over src/registry, src/estargz
// and src/lazyfs.
import type {Platform} from '../oci/platform.js'
import type {Logger} from './log.js'
import type {RemoteLayerRequestLabels} from './remote-labels.js'

export interface RemoteLayerMountRequest extends RemoteLayerRequestLabels {
  /** Empty directory to mount the layer on (`<root>/snapshotter/snapshots/<id>/fs`). */
  mountpoint: string
  /** The snapshot's id: a stable key for per-layer state (cache dirs) that survives restarts. */
  snapshotId: number
  /** All the labels of the Prepare (or of the stored snapshot, on remount). */
  labels: Record<string, string>
  /** Aborted when the resolution takes longer than the configured bound; the mounter must give up. */
  signal: AbortSignal
  log: Logger
}

/** What a mounter reports about a mounted layer (grows with issue 7). */
export interface MountedLayerStatus {
  mountpoint: string
  imageRef: string
  layerDigest: string
  /** Compressed blob size. */
  size: number
  /** Compressed bytes of chunks read from the registry for this layer so far. */
  bytesFetched?: number
  /** Footer and TOC bytes read from the registry when the layer was mounted (not in bytesFetched). */
  metadataBytesFetched?: number
  /** Share of the layer's distinct chunks that are in the local cache, 0–100. */
  percentLocal?: number
  prefetch?: 'none' | 'pending' | 'running' | 'done' | 'failed'
  backgroundFetch?: 'off' | 'running' | 'done' | 'failed' | 'stopped'
  /** Uncompressed bytes returned to readers of the mount. */
  bytesServed?: number
  /** Range requests sent to the registry for chunks (footer/TOC reads at mount not included). */
  rangeReads?: number
  /** Distinct chunks of the layer, and how many are in the local cache. */
  chunksTotal?: number
  chunksLocal?: number
  /** Reads answered with EIO. */
  readErrors?: number
  error?: string
}

/** The chunk cache shared by every lazy layer. */
export interface ChunkCacheStatus {
  bytesOnDisk: number
  /** `[cache] max_bytes`; 0 = unbounded. */
  maxBytes: number
  chunks: number
  /** Chunks deleted to stay under maxBytes since the daemon started. */
  evictions: number
}

/** Counters summed over every layer mounted since the daemon started (they only grow). */
export interface LayerTotals {
  bytesFetched: number
  bytesServed: number
  rangeReads: number
  fetchErrors: number
  cacheHits: number
  cacheMisses: number
  readErrors: number
  verifyFailures: number
}

/** One range read to the registry. */
export interface RangeReadObservation {
  bytes: number
  ms: number
  ok: boolean
}

export interface RemoteLayerMounter {
  /** New credentials exist for `registry` (a pull secret arrived through the CRI image service). */
  credentialsChanged?(registry: string): void
  /** The shared chunk cache (absent when nothing is cached). */
  cacheStatus?(): ChunkCacheStatus
  /** Counters over every layer mounted since start. */
  totals?(): LayerTotals
  /** Follows every range read to the registry. */
  observeRangeReads?(observer: (observation: RangeReadObservation) => void): void
  /**
   * Starts finding these layers of `imageRef` and reading their TOCs before any Prepare names
   * them (a hint from `lazyctl run`/`pull`, which knows the layers from the manifest). Returns
   * how many it started; never throws for a layer it cannot resolve (its Prepare will say why).
   */
  resolveAhead?(imageRef: string, layerDigests: string[]): number
  /**
   * The eStargz layers (those with a TOC digest) of `imageRef` for `platform` (default: this
   * host's), from the manifest in its registry: for a hint that names the image only (`lazyctl
   * run` as it starts, before it has read the manifest itself).
   */
  lazyLayersOf?(imageRef: string, platform?: Platform): Promise<string[]>

  /**
   * Mounts the layer on `request.mountpoint`. Resolves once the mount serves the layer's tree;
   * rejects (with a message fit for the fallback log line) if the layer cannot be mounted — not
   * eStargz, TOC digest mismatch, registry unreachable or refusing, timeout. Must leave nothing
   * mounted when it rejects.
   */
  mount(request: RemoteLayerMountRequest): Promise<MountedLayerStatus>
  /**
   * Waits (bounded by the mounter's own config) until the prioritized range of a just-mounted
   * layer is local; the snapshotter calls it before committing the snapshot.
   */
  waitForPrefetch(mountpoint: string): Promise<'done' | 'timeout' | 'none'>
  /** Unmounts (idempotent: an unknown or already gone mountpoint is not an error). */
  unmount(mountpoint: string): Promise<void>
  /** Whether the mount at `mountpoint` is served by this process now. */
  isMounted(mountpoint: string): boolean
  /** One entry per mounted layer. */
  status(): MountedLayerStatus[]
  /** Unmounts everything (daemon shutdown). */
  close(): Promise<void>
}

/** A mounter that refuses every layer: remote snapshots disabled, or the lazy filesystem not built in. */
export class RefusingLayerMounter implements RemoteLayerMounter {
  constructor(private readonly reason: string) {}

  async mount(): Promise<MountedLayerStatus> {
    throw new Error(this.reason)
  }

  async unmount(): Promise<void> {}

  async waitForPrefetch(): Promise<'none'> {
    return 'none'
  }

  isMounted(): boolean {
    return false
  }

  status(): MountedLayerStatus[] {
    return []
  }

  async close(): Promise<void> {}
}
