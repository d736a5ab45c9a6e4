// The real RemoteLayerMounter: finds the layer in its registry (credentials from the docker
// config, plain http for loopback and configured insecure hosts), reads footer and TOC by range,
// checks the TOC against the manifest's digest, and mounts it with lazyfs over a chunk cache
// shared by every layer.
import {join} from 'node:path'
import {describeError} from '../cli/errors.js'
import {openEstargz} from '../estargz/reader.js'
import {ChunkCache} from '../lazyfs/chunk-cache.js'
import {mountLayer, type MountedLayer} from '../lazyfs/mount.js'
import {short, type Digest} from '../oci/digest.js'
import {parseReference} from '../oci/reference.js'
import {RegistryClient} from '../registry/client.js'
import type {SnapshotterConfig} from './config.js'
import type {Logger} from './log.js'
import type {RemoteLayerSource} from './remote-labels.js'
import type {MountedLayerStatus, RemoteLayerMountRequest, RemoteLayerMounter} from './remote-layer-mounter.js'

interface LiveLayer {
  layer: MountedLayer
  source: RemoteLayerSource
  size: number
}

export class EstargzLayerMounter implements RemoteLayerMounter {
  private readonly live = new Map<string, LiveLayer>()

  private constructor(
    private readonly registry: RegistryClient,
    private readonly cache: ChunkCache,
    private readonly config: SnapshotterConfig,
    private readonly log: Logger,
  ) {}

  static async create(config: SnapshotterConfig, log: Logger): Promise<EstargzLayerMounter> {
    const cache = await ChunkCache.open({dir: join(config.root, 'cache', 'chunks')})
    const registry = new RegistryClient({insecureRegistries: config.registry.insecure, hostsDir: config.registry.hostsDir})
    return new EstargzLayerMounter(registry, cache, config, log)
  }

  async mount(request: RemoteLayerMountRequest): Promise<MountedLayerStatus> {
    const failures: string[] = []
    // CRI's labels first, then stargz's: the first source that mounts wins.
    for (const source of request.sources) {
      if (request.signal.aborted) break
      try {
        return await this.mountFrom(source, request)
      } catch (err) {
        failures.push(request.sources.length > 1 ? `${source.imageRef}: ${describeError(err)}` : describeError(err))
      }
    }
    throw new Error(failures.join('; ') || 'resolution aborted')
  }

  private async mountFrom(source: RemoteLayerSource, request: RemoteLayerMountRequest): Promise<MountedLayerStatus> {
    const ref = parseReference(source.imageRef)
    const digest = source.layerDigest as Digest
    const started = Date.now()
    const size = await this.registry.blobSize(ref, digest)
    if (size === undefined) throw new Error(`layer ${short(digest)} not found in ${ref.registry}/${ref.repository}`)
    request.log.debug('layer resolved', {image: source.imageRef, size, ms: Date.now() - started})
    const blob = this.registry.blobRangeSource(ref, digest, size)
    const reader = await openEstargz(blob, {expectedTocDigest: request.tocDigest, label: `layer ${short(digest)}`})
    request.log.debug('TOC read and verified', {entries: reader.toc.entries.length, ms: Date.now() - started})
    if (request.signal.aborted) throw new Error('resolution aborted (took too long)')
    const layer = await mountLayer({mountpoint: request.mountpoint, reader, cache: this.cache, log: request.log, label: digest})
    if (request.signal.aborted) {
      await layer.unmount().catch(() => {})
      throw new Error('resolution aborted (took too long)')
    }
    this.live.set(request.mountpoint, {layer, source, size})
    if (this.config.prefetch.enable) this.startPrefetch(layer, digest, request.log)
    return this.statusOf(request.mountpoint, this.live.get(request.mountpoint)!)
  }

  /** The prioritized files, in large range reads; the container does not wait for it here (issue 7 bounds that wait). */
  private startPrefetch(layer: MountedLayer, digest: string, log: Logger): void {
    layer.prefetch().then(
      (result) => log.debug('prefetch finished', {layer: digest, ...result}),
      (err: unknown) => log.warn('prefetch failed', {layer: digest, error: describeError(err)}),
    )
  }

  async unmount(mountpoint: string): Promise<void> {
    const live = this.live.get(mountpoint)
    if (!live) return
    this.live.delete(mountpoint)
    await live.layer.unmount()
  }

  isMounted(mountpoint: string): boolean {
    return this.live.has(mountpoint)
  }

  status(): MountedLayerStatus[] {
    return [...this.live.entries()].map(([mountpoint, live]) => this.statusOf(mountpoint, live))
  }

  private statusOf(mountpoint: string, live: LiveLayer): MountedLayerStatus {
    const stats = live.layer.stats()
    return {
      mountpoint,
      imageRef: live.source.imageRef,
      layerDigest: live.source.layerDigest,
      size: live.size,
      bytesFetched: stats.bytesFetched,
      percentLocal: stats.chunksTotal === 0 ? 100 : Math.floor((stats.chunksLocal / stats.chunksTotal) * 100),
      prefetch: stats.prefetch,
      backgroundFetch: stats.backgroundFetch,
    }
  }

  async close(): Promise<void> {
    for (const mountpoint of [...this.live.keys()]) {
      await this.unmount(mountpoint).catch((err: unknown) => this.log.warn('cannot unmount lazy layer', {mountpoint, error: describeError(err)}))
    }
    await this.registry.close()
  }
}
