// The seam between the snapshotter (metadata, mounts, the remote-snapshot decision) and the lazy
// filesystem (registry resolution, eStargz footer/TOC, FUSE). The snapshotter only knows this
// contract; src/snapshotter/estargz-layer-mounter.ts implements it over src/registry, src/estargz
// and src/lazyfs.
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
  /** Compressed bytes read from the registry for this layer so far. */
  bytesFetched?: number
  /** Share of the layer's distinct chunks that are in the local cache, 0–100. */
  percentLocal?: number
  prefetch?: 'none' | 'pending' | 'running' | 'done' | 'failed'
  backgroundFetch?: 'off' | 'running' | 'done' | 'failed' | 'stopped'
  error?: string
}

export interface RemoteLayerMounter {
  /**
   * Mounts the layer on `request.mountpoint`. Resolves once the mount serves the layer's tree;
   * rejects (with a message fit for the fallback log line) if the layer cannot be mounted — not
   * eStargz, TOC digest mismatch, registry unreachable or refusing, timeout. Must leave nothing
   * mounted when it rejects.
   */
  mount(request: RemoteLayerMountRequest): Promise<MountedLayerStatus>
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

  isMounted(): boolean {
    return false
  }

  status(): MountedLayerStatus[] {
    return []
  }

  async close(): Promise<void> {}
}
