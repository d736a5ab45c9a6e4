// The real RemoteLayerMounter: finds the layer in its registry (credentials from the docker
// config, plain http for loopback and configured insecure hosts), reads footer and TOC by range,
// checks the TOC against the manifest's digest, and mounts it with lazyfs over a chunk cache
// shared by every layer.
//
// containerd prepares an image's layers one after another, and each Prepare names the layers that
// follow it (`cri.image-layers`, `stargz.layers`). As the stargz snapshotter does, the first
// Prepare also starts resolving those (blob size, footer, TOC, parse) in the background, so when
// their own Prepare comes the registry round trips are behind us. A pre-resolved TOC is only
// parsed, never trusted: its digest is checked against the Prepare's label like any other.
import {statfsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {describeError} from '../cli/errors.js'
import {openEstargz, type EstargzReader} from '../estargz/reader.js'
import type {RandomAccessSource} from '../estargz/random-access.js'
import {eStargzLayerDigests, MAX_FOOTER_SIZE} from '../estargz/toc.js'
import {ChunkCache} from '../lazyfs/chunk-cache.js'
import {mountLayer, prepareEstargzFetch, type EstargzLayerFetch, type MountedLayer} from '../lazyfs/mount.js'
import type {LayerStats} from '../lazyfs/stats.js'
import {short, type Digest} from '../oci/digest.js'
import {selectManifest, type Platform} from '../oci/platform.js'
import {parseReference, type ImageReference} from '../oci/reference.js'
import {RegistryClient} from '../registry/client.js'
import {CredentialStore, defaultCredentialLocators, type CredentialLocator} from '../registry/credentials.js'
import type {RangeSource} from '../registry/range-source.js'
import type {SnapshotterConfig} from './config.js'
import type {Logger} from './log.js'
import type {RemoteLayerSource} from './remote-labels.js'
import type {ChunkCacheStatus, LayerTotals, MountedLayerStatus, RangeReadObservation, RemoteLayerMountRequest, RemoteLayerMounter} from './remote-layer-mounter.js'

interface LiveLayer {
  layer: MountedLayer
  source: RemoteLayerSource
  size: number
  /** Footer and TOC bytes read at mount. */
  metadataBytes: number
  /** Settles when the prioritized range is local (or failed); resolved at once without a landmark. */
  prefetched: Promise<void>
  /** Pending start of the background fetch (cleared on unmount). */
  backgroundTimer?: NodeJS.Timeout
}

/**
 * The first read of a layer asks for its footer only (a suffix range that also gives the size).
 * A longer tail would often hold all of a small TOC, but also file data before it, which chunk
 * reads and background fetch would then download a second time.
 */
const METADATA_TAIL_BYTES = MAX_FOOTER_SIZE

/** A layer found in its registry with its TOC read and parsed. */
interface ResolvedLayer {
  size: number
  blob: RangeSource
  reader: EstargzReader
  /** Footer and TOC bytes read from the registry. */
  metadataBytes: number
  /** Resolved ahead of its Prepare: its fetcher, already fetching the prioritized range (`done` settles when it ends). */
  prefetchAhead?: {fetch: EstargzLayerFetch; done: Promise<unknown>}
}

/** A resolution started before the layer's Prepare, kept until that Prepare takes it or it expires. */
interface AheadEntry {
  resolving: Promise<ResolvedLayer>
  expiry: NodeJS.Timeout
}

/** At most this many layers resolved ahead at once (a big TOC holds megabytes while it waits). */
const MAX_AHEAD = 8

/**
 * The chunk cache's bound when `[cache] max_bytes` is not set: half the size of the filesystem
 * holding the snapshotter's root, so lazily read layers cannot fill a node's disk (kubelet's image
 * GC does not see this cache). 0 (unbounded) when the filesystem cannot be asked.
 */
export function defaultCacheBound(root: string): number {
  // The root may not exist yet: its nearest existing ancestor is on the same filesystem.
  for (let dir = root; ; dir = dirname(dir)) {
    try {
      const fs = statfsSync(dir)
      return Math.floor((fs.blocks * fs.bsize) / 2)
    } catch {
      if (dir === dirname(dir)) return 0
    }
  }
}
/** A layer resolved ahead and not asked for within this time is dropped (its Prepare is not coming). */
const AHEAD_TTL_MS = 60_000

const TOTAL_KEYS = ['bytesFetched', 'bytesServed', 'rangeReads', 'fetchErrors', 'cacheHits', 'cacheMisses', 'readErrors', 'verifyFailures'] as const


export class EstargzLayerMounter implements RemoteLayerMounter {
  private readonly live = new Map<string, LiveLayer>()
  private readonly retired: LayerTotals = zeroTotals()
  private readonly rangeReadObservers: Array<(observation: RangeReadObservation) => void> = []
  /** Layers resolved ahead of their Prepare, by registry/repository@digest. */
  private readonly ahead = new Map<string, AheadEntry>()
  /** Layers a Prepare is resolving or mounting now (a hint for them starts nothing). */
  private readonly mounting = new Set<string>()

  private constructor(
    private readonly registry: RegistryClient,
    private readonly cache: ChunkCache,
    private readonly config: SnapshotterConfig,
    private readonly log: Logger,
    /** The chunk cache's bound in bytes (0 = unbounded): `[cache] max_bytes`, or its default. */
    private readonly cacheMaxBytes: number,
  ) {}

  /** `extraCredentials` are asked after the docker config's (the CRI keychain's pull secrets). */
  static async create(config: SnapshotterConfig, log: Logger, extraCredentials: CredentialLocator[] = []): Promise<EstargzLayerMounter> {
    const dir = join(config.root, 'cache', 'chunks')
    const cacheMaxBytes = config.cache.maxBytes ?? defaultCacheBound(config.root)
    const cache = await ChunkCache.open({dir, ...(cacheMaxBytes > 0 ? {maxBytes: cacheMaxBytes} : {})})
    const credentials = new CredentialStore([...defaultCredentialLocators(), ...extraCredentials])
    const registry = new RegistryClient({insecureRegistries: config.registry.insecure, hostsDir: config.registry.hostsDir, credentials, requestTimeoutMs: config.registry.requestTimeoutSec * 1000})
    return new EstargzLayerMounter(registry, cache, config, log, cacheMaxBytes)
  }

  credentialsChanged(registry: string): void {
    this.registry.credentialsChanged(registry)
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
    // While this layer resolves and mounts, a hint for it must not start a second resolution.
    const key = aheadKey(ref, digest)
    this.mounting.add(key)
    try {
      return await this.resolveAndMount(ref, digest, source, request)
    } finally {
      this.mounting.delete(key)
    }
  }

  private async resolveAndMount(ref: ImageReference, digest: Digest, source: RemoteLayerSource, request: RemoteLayerMountRequest): Promise<MountedLayerStatus> {
    const started = Date.now()
    const label = `layer ${short(digest)}`
    const resolving = this.resolvedAhead(ref, digest, request.tocDigest, request.log)
      .then((early) => early ?? this.resolve(ref, digest, label, request.tocDigest, request.log))
    // The layers after this one: their reads start now, their parse waits for this layer's.
    this.startResolvingAhead(ref, source.imageLayers.filter((d) => d !== digest), resolving)
    const {size, blob, reader, metadataBytes, prefetchAhead} = await resolving
    request.log.debug('TOC read and verified', {entries: reader.toc.entries.length, ms: Date.now() - started})
    if (request.signal.aborted) throw new Error('resolution aborted (took too long)')
    const layer = await mountLayer({
      mountpoint: request.mountpoint, reader, source: blob, cache: this.cache, log: request.log, label: digest,
      // The registry range source retries transient failures itself (bounded backoff): retrying
      // again here would multiply the wait before a read fails with EIO.
      fetchRetries: 0,
      onRangeRead: (observation) => this.observeRangeRead(observation),
      ...(prefetchAhead ? {prepared: prefetchAhead.fetch} : {}),
    })
    if (request.signal.aborted) {
      await layer.unmount().catch(() => {})
      throw new Error('resolution aborted (took too long)')
    }
    const live: LiveLayer = {layer, source, size, metadataBytes, prefetched: Promise.resolve()}
    this.live.set(request.mountpoint, live)
    live.prefetched = this.config.prefetch.enable ? this.startPrefetch(layer, digest, request.log) : Promise.resolve()
    if (this.config.backgroundFetch.enable) {
      // After the prioritized range (the container's start reads come first), and then only
      // after a pause, so the container's own first reads do not queue behind it.
      void live.prefetched.then(() => {
        if (this.live.get(request.mountpoint) !== live) return
        live.backgroundTimer = setTimeout(() => this.startBackgroundFetch(live, digest, request.log), this.config.backgroundFetch.startDelaySec * 1000)
        live.backgroundTimer.unref()
      })
    }
    return this.statusOf(request.mountpoint, live)
  }

  /**
   * Finds the blob, reads footer and TOC by range and parses the TOC; checks it against
   * `expectedTocDigest` when given. `gate` holds back the parse (not the reads) until it settles.
   */
  private async resolve(ref: ImageReference, digest: Digest, label: string, expectedTocDigest: string | undefined, log: Logger, gate?: Promise<unknown>): Promise<ResolvedLayer> {
    const started = Date.now()
    // Size and footer in one request, then the TOC.
    const found = await this.registry.blobTail(ref, digest, METADATA_TAIL_BYTES)
    if (found === undefined) throw new Error(`layer ${short(digest)} not found in ${ref.registry}/${ref.repository}`)
    const {size, tail} = found
    log.debug('layer resolved', {image: formatRef(ref), size, tail: tail.length, ms: Date.now() - started})
    const blob = this.registry.blobRangeSource(ref, digest, size)
    const tailStart = size - tail.length
    // Footer and TOC reads, counted apart from the chunk reads lazyfs counts: together they are
    // every body byte this layer took from the registry.
    let metadataBytes = tail.length
    const fetch = async (offset: number, length: number): Promise<Buffer> => {
      const data = await blob.readAt(offset, length)
      metadataBytes += data.length
      return data
    }
    const metadataSource: RandomAccessSource = {
      size,
      readAt: async (offset: number, length: number): Promise<Buffer> => {
        let data: Buffer
        if (offset >= tailStart) data = tail.subarray(offset - tailStart, offset - tailStart + length)
        else if (offset + length > tailStart) data = Buffer.concat([await fetch(offset, tailStart - offset), tail.subarray(0, offset + length - tailStart)])
        else data = await fetch(offset, length)
        if (gate) await gate.catch(() => undefined)
        return data
      },
    }
    try {
      // Ahead of its Prepare (gate set) the layer may not be eStargz at all: no truncation diagnosis.
      const reader = await openEstargz(metadataSource, {expectedTocDigest, label, diagnoseTruncation: gate === undefined})
      return {size, blob, reader, metadataBytes}
    } catch (err) {
      // A layer that falls back still cost these bytes: the metrics count them.
      this.retired.bytesFetched += metadataBytes
      throw err
    }
  }

  async lazyLayersOf(imageRef: string, platform?: Platform): Promise<string[]> {
    const ref = parseReference(imageRef)
    let fetched = await this.registry.getManifest(ref)
    if (fetched.parsed.kind === 'index') {
      fetched = await this.registry.getManifest(ref, selectManifest(fetched.parsed.index.manifests, platform, imageRef).digest)
    }
    if (fetched.parsed.kind !== 'manifest') return []
    return eStargzLayerDigests(fetched.parsed.manifest)
  }

  resolveAhead(imageRef: string, layerDigests: string[]): number {
    const before = this.ahead.size
    this.startResolvingAhead(parseReference(imageRef), layerDigests, Promise.resolve())
    return this.ahead.size - before
  }

  /** Starts resolving the layers that will be asked for next (bounded; never rejects). */
  private startResolvingAhead(ref: ImageReference, digests: string[], gate: Promise<unknown>): void {
    for (const digest of digests) {
      const key = aheadKey(ref, digest)
      if (this.ahead.size >= MAX_AHEAD) break
      if (this.ahead.has(key) || this.mounting.has(key) || [...this.live.values()].some((l) => l.source.layerDigest === digest)) continue
      const log = this.log.with({layer: digest})
      const started = Date.now()
      const resolving = this.resolve(ref, digest as Digest, `layer ${short(digest as Digest)}`, undefined, log, gate).then((resolved) => this.prefetchAhead(resolved, digest, log))
      resolving.then(
        (resolved) => log.debug('layer pre-resolved', {image: formatRef(ref), entries: resolved.reader.toc.entries.length, ms: Date.now() - started}),
        (err: unknown) => log.debug('layer not pre-resolved', {image: formatRef(ref), error: describeError(err)}),
      )
      const expiry = setTimeout(() => this.dropAhead(key), AHEAD_TTL_MS)
      expiry.unref()
      this.ahead.set(key, {resolving, expiry})
    }
  }

  /**
   * Starts fetching a layer's prioritized range as soon as it is resolved ahead, rather than when
   * its Prepare mounts it: for an image `lazyctl run` named as it started, the range arrives while
   * the CLI loads and pulls. The mount takes over the same fetcher (see LayerFetch).
   * Chunks are checked against their own digests and the cache is content-addressed, so a TOC that
   * the Prepare later refuses costs bytes, never wrong data.
   */
  private prefetchAhead(resolved: ResolvedLayer, digest: string, log: Logger): ResolvedLayer {
    if (!this.config.prefetch.enable) return resolved
    const fetch = prepareEstargzFetch({reader: resolved.reader, source: resolved.blob, cache: this.cache, log, label: digest, fetchRetries: 0, onRangeRead: (o) => this.observeRangeRead(o)})
    if (fetch.content.prefetchEnd === undefined) return resolved
    const started = Date.now()
    const done = fetch.prefetch().then(
      (result) => log.debug('prefetch ahead of the Prepare finished', {layer: digest, ...result, ms: Date.now() - started}),
      (err: unknown) => log.debug('prefetch ahead of the Prepare failed', {layer: digest, error: describeError(err)}),
    )
    return {...resolved, prefetchAhead: {fetch, done}}
  }

  private observeRangeRead(observation: RangeReadObservation): void {
    for (const observer of this.rangeReadObservers) observer(observation)
  }

  /**
   * The layer as resolved ahead, if it was and its TOC is the one the Prepare names; otherwise
   * undefined (and the caller resolves it itself, so any error is the Prepare's own).
   */
  private async resolvedAhead(ref: ImageReference, digest: Digest, expectedTocDigest: string, log: Logger): Promise<ResolvedLayer | undefined> {
    const key = aheadKey(ref, digest)
    const entry = this.ahead.get(key)
    if (!entry) return undefined
    this.ahead.delete(key)
    clearTimeout(entry.expiry)
    const resolved = await entry.resolving.catch(() => undefined)
    if (!resolved) return undefined
    if (resolved.reader.tocDigest !== expectedTocDigest) {
      log.warn('pre-resolved TOC does not match the Prepare\'s digest; reading it again', {tocDigest: resolved.reader.tocDigest, expected: expectedTocDigest})
      this.retire(resolved)
      return undefined
    }
    log.debug('TOC was resolved ahead', {entries: resolved.reader.toc.entries.length})
    return resolved
  }

  private dropAhead(key: string): void {
    const entry = this.ahead.get(key)
    if (!entry) return
    this.ahead.delete(key)
    clearTimeout(entry.expiry)
    // Unused, but the registry served those bytes.
    void entry.resolving.then((resolved) => this.retire(resolved), () => undefined)
  }

  /** Counts what a layer resolved ahead and never mounted took from the registry (its prefetch once it settles). */
  private retire(resolved: ResolvedLayer): void {
    this.retired.bytesFetched += resolved.metadataBytes
    const ahead = resolved.prefetchAhead
    if (ahead) void ahead.done.then(() => {
      this.retired.bytesFetched += ahead.fetch.counters.bytesFetched
    })
  }

  /** The prioritized files (up to the landmark), in large range reads. Never rejects. */
  private startPrefetch(layer: MountedLayer, digest: string, log: Logger): Promise<void> {
    return layer.prefetch().then(
      (result) => log.debug('prefetch finished', {layer: digest, ...result}),
      (err: unknown) => log.warn('prefetch failed', {layer: digest, error: describeError(err)}),
    )
  }

  private startBackgroundFetch(live: LiveLayer, digest: string, log: Logger): void {
    live.backgroundTimer = undefined
    const maxBytes = this.cacheMaxBytes
    if (maxBytes > 0) {
      // A layer that cannot fit in what is left of a bounded cache would only evict the chunks
      // running containers use (its prioritized files among them) and fetch them again later.
      const stats = live.layer.stats()
      const missing = stats.chunkBytesTotal - stats.chunkBytesLocal
      const free = maxBytes - this.cache.bytesOnDisk
      if (missing > free) {
        log.info('background fetch skipped: the layer does not fit in the bounded cache', {layer: digest, missingBytes: missing, freeBytes: free, maxBytes})
        return
      }
    }
    const rate = this.config.backgroundFetch.rateBytesPerSec
    const {concurrency} = this.config.backgroundFetch
    const fetch = live.layer.backgroundFetch({bytesPerSecond: rate > 0 ? rate : Number.POSITIVE_INFINITY, concurrency})
    log.debug('background fetch started', {layer: digest, bytesPerSecond: rate || 'unlimited', concurrency})
    void fetch.finished.then((state) => log.info('background fetch ended', {layer: digest, state, ...pickFetchStats(live.layer.stats())}))
  }

  /**
   * Waits until the layer's prioritized range is local, at most `[prefetch] timeout_sec`: the
   * snapshotter calls it before it commits the snapshot, so the container's first reads of its
   * prioritized files are local. A prefetch that takes longer goes on in the background.
   */
  async waitForPrefetch(mountpoint: string): Promise<'done' | 'timeout' | 'none'> {
    const live = this.live.get(mountpoint)
    if (!live || !this.config.prefetch.enable) return 'none'
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.config.prefetch.timeoutSec * 1000)
    })
    try {
      return await Promise.race([live.prefetched.then(() => 'done' as const), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Follows every range read to the registry (fetch latency histogram). */
  observeRangeReads(observer: (observation: RangeReadObservation) => void): void {
    this.rangeReadObservers.push(observer)
  }

  /** Counters summed over every layer mounted since start (unmounted ones included); bytesFetched includes footer and TOC reads. */
  totals(): LayerTotals {
    const sum = {...this.retired}
    for (const live of this.live.values()) addTotals(sum, live.layer.stats(), live.metadataBytes)
    return sum
  }

  /** The shared chunk cache: bytes on disk, its bound, chunks evicted. */
  cacheStatus(): ChunkCacheStatus {
    return {bytesOnDisk: this.cache.bytesOnDisk, maxBytes: this.cacheMaxBytes, chunks: this.cache.chunkCount, evictions: this.cache.evictions}
  }

  async unmount(mountpoint: string): Promise<void> {
    const live = this.live.get(mountpoint)
    if (!live) return
    this.live.delete(mountpoint)
    clearTimeout(live.backgroundTimer)
    addTotals(this.retired, live.layer.stats(), live.metadataBytes)
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
      metadataBytesFetched: live.metadataBytes,
      percentLocal: stats.chunksTotal === 0 ? 100 : Math.floor((stats.chunksLocal / stats.chunksTotal) * 100),
      prefetch: stats.prefetch,
      backgroundFetch: stats.backgroundFetch,
      bytesServed: stats.bytesServed,
      rangeReads: stats.rangeReads,
      chunksTotal: stats.chunksTotal,
      chunksLocal: stats.chunksLocal,
      readErrors: stats.readErrors,
    }
  }

  async close(): Promise<void> {
    for (const key of [...this.ahead.keys()]) this.dropAhead(key)
    for (const mountpoint of [...this.live.keys()]) {
      await this.unmount(mountpoint).catch((err: unknown) => this.log.warn('cannot unmount lazy layer', {mountpoint, error: describeError(err)}))
    }
    await this.registry.close()
  }
}

function aheadKey(ref: ImageReference, digest: string): string {
  return `${ref.registry}/${ref.repository}@${digest}`
}

function formatRef(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`
}

function zeroTotals(): LayerTotals {
  return {bytesFetched: 0, bytesServed: 0, rangeReads: 0, fetchErrors: 0, cacheHits: 0, cacheMisses: 0, readErrors: 0, verifyFailures: 0}
}

/** Adds one layer's counters; its footer and TOC bytes count as fetched too (the registry served them). */
function addTotals(sum: LayerTotals, stats: LayerTotals, metadataBytes: number): void {
  for (const key of TOTAL_KEYS) sum[key] += stats[key]
  sum.bytesFetched += metadataBytes
}

function pickFetchStats(stats: LayerStats): Record<string, number> {
  return {bytesFetched: stats.bytesFetched, rangeReads: stats.rangeReads, chunksLocal: stats.chunksLocal, chunksTotal: stats.chunksTotal}
}
