// Gets verified chunks of one layer: from memory, from the disk cache, or from the source (the
// registry) by range read. Contiguous missing chunks are fetched with ONE range read of their
// compressed span; every member is inflated and checked against its chunkDigest before anyone sees
// it; two requests for the same chunk share one fetch; range reads in flight are bounded.
import {createHash} from 'node:crypto'
import {setTimeout as delay} from 'node:timers/promises'
import type {RandomAccessSource, ReadProgress} from '../estargz/random-access.js'
import {LazyError, describeError, isLazyError} from '../cli/errors.js'
import type {ChunkCache} from './chunk-cache.js'
import {Semaphore} from './semaphore.js'
import type {LazyfsLog} from './log.js'
import type {LayerCounters} from './stats.js'

/** Where one eStargz chunk lives: what the reader's chunk plan gives us. */
export interface ChunkSpan {
  /** Offset of the chunk within its uncompressed file. */
  chunkOffset: number
  /** Uncompressed size of the chunk. */
  chunkSize: number
  /** Start of the gzip member holding the chunk, in the blob. */
  compressedOffset: number
  /** Start of the next member (or of the TOC): the end of what must be read to inflate the chunk. */
  compressedEnd: number
  /** `sha256:<hex>` of the uncompressed chunk. */
  chunkDigest: string
}

/**
 * Inflates one chunk from the bytes [compressedOffset, compressedEnd) of the blob. Unless the
 * decoder says it verifies, the fetcher checks the result against chunkDigest itself.
 */
export type ChunkDecoder<C extends ChunkSpan> = (chunk: C, compressed: Buffer) => Buffer | Promise<Buffer>

export interface ChunkFetcherOptions<C extends ChunkSpan> {
  source: RandomAccessSource
  cache: ChunkCache
  decode: ChunkDecoder<C>
  /** The decoder checks chunkDigest itself (the eStargz reader does): skip the second hash. */
  decoderVerifies?: boolean
  counters: LayerCounters
  log: LazyfsLog
  /** Range reads in flight at once for on-demand reads. Default 4. */
  maxFetchesInFlight?: number
  /** Largest compressed span one coalesced on-demand read may cover. Default 16 MiB. */
  maxCoalescedBytes?: number
  /** Extra attempts of a failed range read (not of a digest mismatch). Default 2. */
  retries?: number
  /** First retry delay in ms, doubled each time. Default 200. */
  retryDelayMs?: number
  /** A label for log lines (the layer digest). */
  label?: string
  /** Told about every range read attempt (metrics: fetch latency). */
  onRangeRead?: (observation: {bytes: number; ms: number; ok: boolean}) => void
}

export interface FetchOptions {
  /** Largest compressed span of one range read. */
  maxCoalescedBytes?: number
  /** The semaphore bounding these reads (background fetch uses its own). */
  semaphore?: Semaphore
  /** Don't keep the decoded chunks in memory (bulk fetches must not evict what reads use). */
  skipMemory?: boolean
}

export class ChunkFetcher<C extends ChunkSpan> {
  /** Chunks being fetched: the verified bytes, and the moment they are on disk (rejects like `decoded`). */
  private readonly inFlight = new Map<string, {decoded: Promise<Buffer>; stored: Promise<void>}>()
  readonly semaphore: Semaphore
  private readonly maxCoalescedBytes: number
  private readonly retries: number
  private readonly retryDelayMs: number

  constructor(private readonly options: ChunkFetcherOptions<C>) {
    this.semaphore = new Semaphore(options.maxFetchesInFlight ?? 4)
    this.maxCoalescedBytes = options.maxCoalescedBytes ?? 16 << 20
    this.retries = options.retries ?? 2
    this.retryDelayMs = options.retryDelayMs ?? 200
  }

  /** True when the chunk is on disk, or being fetched right now. */
  isLocalOrPending(digest: string): boolean {
    return this.options.cache.has(digest) || this.inFlight.has(digest)
  }

  /** Number of chunks being fetched. */
  get chunksInFlight(): number {
    return this.inFlight.size
  }

  /**
   * The decoded bytes of each chunk, in order. Chunks already cached are read from the cache;
   * the rest are fetched (coalesced) or joined if already in flight.
   */
  chunks(chunks: readonly C[], options: FetchOptions = {}): Promise<Buffer>[] {
    const {cache, counters} = this.options
    const result: Promise<Buffer>[] = new Array(chunks.length)
    const toFetch: C[] = []
    const fetchIndexes = new Map<string, number[]>()
    chunks.forEach((chunk, i) => {
      const digest = chunk.chunkDigest
      const pending = this.inFlight.get(digest)
      if (pending) {
        counters.cacheMisses++
        result[i] = pending.decoded
        return
      }
      const known = fetchIndexes.get(digest)
      if (known) {
        known.push(i)
        return
      }
      const memory = cache.fromMemory(digest)
      if (memory && memory.length === chunk.chunkSize) {
        counters.cacheHits++
        result[i] = Promise.resolve(memory)
        return
      }
      if (cache.has(digest)) {
        counters.cacheHits++
        result[i] = cache.readChunk(digest, chunk.chunkSize).then((data) => data ?? this.fetchOne(chunk, options))
        return
      }
      counters.cacheMisses++
      toFetch.push(chunk)
      fetchIndexes.set(digest, [i])
    })
    for (const run of coalesce(toFetch, options.maxCoalescedBytes ?? this.maxCoalescedBytes)) {
      const fetches = this.fetchRun(run, options)
      run.forEach((chunk, j) => {
        for (const i of fetchIndexes.get(chunk.chunkDigest) ?? []) result[i] = fetches[j].decoded
      })
    }
    return result
  }

  /**
   * Makes every given chunk local (cached on disk) without returning data; chunks already local
   * or in flight are not fetched again. Resolves when all are settled; returns how many failed.
   */
  async ensureLocal(chunks: readonly C[], options: FetchOptions = {}): Promise<number> {
    const unique = uniqueByDigest(chunks)
    const missing = unique.filter((c) => !this.isLocalOrPending(c.chunkDigest))
    const promises: Promise<void>[] = unique.flatMap((c) => this.inFlight.get(c.chunkDigest)?.stored ?? [])
    for (const run of coalesce(missing, options.maxCoalescedBytes ?? this.maxCoalescedBytes)) promises.push(...this.fetchRun(run, options).map((f) => f.stored))
    const results = await Promise.allSettled(promises)
    return results.filter((r) => r.status === 'rejected').length
  }

  private fetchOne(chunk: C, options: FetchOptions): Promise<Buffer> {
    const pending = this.inFlight.get(chunk.chunkDigest)
    if (pending) return pending.decoded
    return this.fetchRun([chunk], options)[0].decoded
  }

  /**
   * One range read covering `run`; a promise per member, each in the in-flight map until cached.
   * A member is inflated and verified as soon as its own bytes have arrived (when the source
   * reports progress), so a reader waiting for the first chunk of a long run (read-ahead,
   * prefetch, background fetch) does not wait for the whole run.
   */
  private fetchRun(run: readonly C[], options: FetchOptions): Array<{decoded: Promise<Buffer>; stored: Promise<void>}> {
    const start = run[0].compressedOffset
    const end = Math.max(...run.map((c) => c.compressedEnd))
    const semaphore = options.semaphore ?? this.semaphore
    const arrived = run.map(() => deferred<Buffer>())
    // Members by where their bytes end: progress settles them front to back.
    const byEnd = run.map((_, i) => i).sort((a, b) => run[a].compressedEnd - run[b].compressedEnd)
    let settled = 0
    const settle = (buffer: Buffer, received: number): void => {
      while (settled < byEnd.length && run[byEnd[settled]].compressedEnd - start <= received) {
        const chunk = run[byEnd[settled]]
        arrived[byEnd[settled]].resolve(buffer.subarray(chunk.compressedOffset - start, chunk.compressedEnd - start))
        settled++
      }
    }
    const span = semaphore.run(() => this.readRange(start, end - start, run.length > 1 ? settle : undefined))
    span.then((compressed) => settle(compressed, compressed.length), (err: unknown) => {
      for (const waiter of arrived) waiter.reject(err)
    })
    // A bulk fetch (prefetch, background fetch) inflates, checks and stores a run's members one
    // after another: at most one decoded chunk of the run is alive at a time, instead of all of a
    // 4–32 MiB range's at once on the thread pool (the daemon's memory peaked there).
    let previousStored: Promise<unknown> = Promise.resolve()
    return run.map((chunk, j) => {
      const compressedArrived = options.skipMemory ? previousStored.then(() => arrived[j].promise, () => arrived[j].promise) : arrived[j].promise
      const decoded = compressedArrived.then((compressed) => this.verify(chunk, compressed))
      // The reader gets the bytes as soon as they are verified; the chunk stays "in flight" until
      // it is on disk too, so nobody fetches it again in between.
      const stored = decoded.then((data) => this.store(chunk, data, options))
      previousStored = stored
      const entry = {decoded, stored}
      stored.catch(() => undefined).finally(() => {
        if (this.inFlight.get(chunk.chunkDigest) === entry) this.inFlight.delete(chunk.chunkDigest)
      })
      // Nobody may be awaiting these (a bulk fetch): keep a failure from becoming unhandled.
      decoded.catch(() => undefined)
      stored.catch(() => undefined)
      this.inFlight.set(chunk.chunkDigest, entry)
      return entry
    })
  }

  private async readRange(offset: number, length: number, onProgress?: ReadProgress): Promise<Buffer> {
    const {source, counters, log, label} = this.options
    for (let attempt = 0; ; attempt++) {
      const started = performance.now()
      try {
        const data = await source.readAt(offset, length, onProgress)
        const ms = performance.now() - started
        counters.rangeReads++
        counters.bytesFetched += data.length
        counters.fetchMillis += ms
        this.options.onRangeRead?.({bytes: data.length, ms, ok: true})
        return data
      } catch (err) {
        const ms = performance.now() - started
        counters.fetchMillis += ms
        this.options.onRangeRead?.({bytes: 0, ms, ok: false})
        if (attempt >= this.retries || isPermanent(err)) {
          counters.fetchErrors++
          if (isRefusedCredentials(err)) {
            // Every later read of the layer meets the same answer: say what to do once, not per EIO.
            if (!this.credentialsReported) {
              this.credentialsReported = true
              log.error('the registry refused a lazy read: reads of this layer fail with EIO until the snapshotter has valid credentials for it', {
                layer: label,
                error: describeError(err),
                hint: "give the snapshotter credentials for the registry: a docker config or credential helper, or kubelet's image-service endpoint on the snapshotter's socket ([cri_keychain]) so the pod's pull secret reaches it",
              })
            }
            throw err
          }
          log.warn('range read failed', {layer: label, offset, length, attempts: attempt + 1, error: describeError(err)})
          throw err
        }
        await delay(this.retryDelayMs * 2 ** attempt)
      }
    }
  }

  /** Set once a refusal of credentials has been logged for this layer. */
  private credentialsReported = false

  private async verify(chunk: C, compressed: Buffer): Promise<Buffer> {
    const {counters, log, label, decode} = this.options
    let data: Buffer
    try {
      data = await decode(chunk, compressed)
    } catch (err) {
      counters.verifyFailures++
      log.error('chunk does not decode', {layer: label, digest: chunk.chunkDigest, offset: chunk.compressedOffset, error: describeError(err)})
      throw err instanceof LazyError ? err : new LazyError('ESTARGZ_CHUNK_DIGEST', `chunk ${chunk.chunkDigest} at ${chunk.compressedOffset}: ${describeError(err)}`, {cause: err})
    }
    const actual = this.options.decoderVerifies ? chunk.chunkDigest : `sha256:${createHash('sha256').update(data).digest('hex')}`
    if (data.length !== chunk.chunkSize || actual !== chunk.chunkDigest) {
      counters.verifyFailures++
      log.error('chunk digest mismatch: refusing to serve or cache it', {layer: label, expected: chunk.chunkDigest, actual, size: data.length, expectedSize: chunk.chunkSize, offset: chunk.compressedOffset})
      throw new LazyError('ESTARGZ_CHUNK_DIGEST', `chunk at ${chunk.compressedOffset}: digest ${actual} (${data.length} bytes) is not ${chunk.chunkDigest} (${chunk.chunkSize} bytes)`)
    }
    return data
  }

  private async store(chunk: C, data: Buffer, options: FetchOptions): Promise<void> {
    const {cache, log, label} = this.options
    try {
      if (options.skipMemory) await cache.put(chunk.chunkDigest, data, {skipMemory: true})
      else await cache.put(chunk.chunkDigest, data)
    } catch (err) {
      // A full or broken cache disk must not fail the read: the bytes are verified already.
      log.warn('cannot cache chunk', {layer: label, digest: chunk.chunkDigest, error: describeError(err)})
    }
  }
}

/** Splits chunks (any order) into runs whose compressed spans touch, each at most `maxBytes`. */
export function coalesce<C extends ChunkSpan>(chunks: readonly C[], maxBytes: number): C[][] {
  const sorted = [...chunks].sort((a, b) => a.compressedOffset - b.compressedOffset)
  const runs: C[][] = []
  let run: C[] = []
  let runStart = 0
  let runEnd = 0
  for (const chunk of sorted) {
    const end = Math.max(runEnd, chunk.compressedEnd)
    if (run.length > 0 && chunk.compressedOffset <= runEnd && end - runStart <= maxBytes) {
      run.push(chunk)
      runEnd = end
      continue
    }
    if (run.length > 0) runs.push(run)
    run = [chunk]
    runStart = chunk.compressedOffset
    runEnd = chunk.compressedEnd
  }
  if (run.length > 0) runs.push(run)
  return runs
}

function deferred<T>(): {promise: Promise<T>; resolve: (value: T) => void; reject: (reason: unknown) => void} {
  let resolve!: (value: T) => void
  let reject!: (reason: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return {promise, resolve, reject}
}

function uniqueByDigest<C extends ChunkSpan>(chunks: readonly C[]): C[] {
  const seen = new Set<string>()
  return chunks.filter((c) => !seen.has(c.chunkDigest) && seen.add(c.chunkDigest))
}

function isPermanent(err: unknown): boolean {
  // Asking again will not change a 404, a denial or a range past the end.
  return err instanceof LazyError && ['BLOB_UNKNOWN', 'DENIED', 'AUTH_FAILED', 'ESTARGZ_TRUNCATED', 'INTERNAL'].includes(err.code)
}

/** 401 or 403 from the registry: retrying or re-reading will not help until the credentials change. */
function isRefusedCredentials(err: unknown): boolean {
  return isLazyError(err, 'AUTH_REQUIRED') || isLazyError(err, 'AUTH_FAILED') || isLazyError(err, 'DENIED')
}
