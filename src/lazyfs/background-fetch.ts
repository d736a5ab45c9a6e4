// Fetching what nobody asked for yet: the prioritized range before a container starts
// (prefetch), and the rest of the layer at a bounded rate afterwards (background fetch), so later
// reads and offline use are local. Both go through the layer's ChunkFetcher, so a chunk that is
// cached or in flight is never fetched again, whoever asked first.
import {setTimeout as delay} from 'node:timers/promises'
import {describeError} from '../cli/errors.js'
import type {ChunkFetcher, ChunkSpan} from './chunk-fetcher.js'
import type {LazyfsLog} from './log.js'
import {Semaphore} from './semaphore.js'

export interface PrefetchOptions {
  /** Prefetch chunks whose member starts below this compressed offset. Default: the landmark's offset. */
  end?: number
  /** Largest compressed span of one range read. Default 32 MiB. */
  maxRangeBytes?: number
}

export interface PrefetchResult {
  /** Chunks the range holds, and how many of them were already local when prefetch started. */
  chunks: number
  alreadyLocal: number
  /** Chunks that could not be fetched or verified (reads of them will retry and may EIO). */
  failed: number
}

export async function prefetchRange<C extends ChunkSpan>(fetcher: ChunkFetcher<C>, chunks: readonly C[], end: number, options: PrefetchOptions = {}): Promise<PrefetchResult> {
  const wanted = chunks.filter((c) => c.compressedOffset < end)
  const alreadyLocal = wanted.filter((c) => fetcher.isLocalOrPending(c.chunkDigest)).length
  const failed = await fetcher.ensureLocal(wanted, {maxCoalescedBytes: options.maxRangeBytes ?? 32 << 20, skipMemory: true})
  return {chunks: wanted.length, alreadyLocal, failed}
}

export interface BackgroundFetchOptions {
  /** Average compressed bytes per second to fetch. Required: an unbounded walk would starve reads. */
  bytesPerSecond: number
  /** Largest compressed span of one range read. Default 4 MiB. */
  maxRangeBytes?: number
  /**
   * Range reads in flight at once. Default 1. More hides the registry's per-request latency on a
   * distant link; the average rate stays `bytesPerSecond` either way.
   */
  concurrency?: number
}

export type BackgroundFetchState = 'running' | 'done' | 'failed' | 'stopped'

export interface BackgroundFetch {
  readonly state: BackgroundFetchState
  /** Settles when the walk ends (done, failed or stopped); never rejects. */
  readonly finished: Promise<BackgroundFetchState>
  stop(): void
}

/**
 * Walks every chunk in blob order and fetches those not local, `concurrency` range reads at a
 * time, paced to `bytesPerSecond`. Missing runs are planned just before they are fetched, so
 * chunks that reads fetched in the meantime (or runs still in flight) are skipped.
 */
export function startBackgroundFetch<C extends ChunkSpan>(fetcher: ChunkFetcher<C>, chunks: readonly C[], options: BackgroundFetchOptions, log: LazyfsLog, label?: string): BackgroundFetch {
  if (!(options.bytesPerSecond > 0)) throw new RangeError(`bytesPerSecond must be positive, got ${options.bytesPerSecond}`)
  const maxRange = options.maxRangeBytes ?? 4 << 20
  const concurrency = options.concurrency ?? 1
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`)
  const ordered = [...chunks].sort((a, b) => a.compressedOffset - b.compressedOffset)
  const semaphore = new Semaphore(concurrency)
  const abort = new AbortController()
  let state: BackgroundFetchState = 'running'

  const walk = async (): Promise<BackgroundFetchState> => {
    const started = performance.now()
    let bytes = 0
    let failures = 0
    const inFlight = new Set<Promise<void>>()
    let i = 0
    while (i < ordered.length) {
      if (inFlight.size >= concurrency) await Promise.race(inFlight)
      if (abort.signal.aborted) break
      if (fetcher.isLocalOrPending(ordered[i].chunkDigest)) {
        i++
        continue
      }
      const run: C[] = [ordered[i]]
      const start = ordered[i].compressedOffset
      let end = ordered[i].compressedEnd
      i++
      while (i < ordered.length) {
        const next = ordered[i]
        if (fetcher.isLocalOrPending(next.chunkDigest)) {
          // Identical content elsewhere in the layer, or fetched meanwhile: nothing to read here.
          if (run.some((c) => c.chunkDigest === next.chunkDigest)) {
            i++
            continue
          }
          break
        }
        if (next.compressedOffset > end || Math.max(end, next.compressedEnd) - start > maxRange) break
        run.push(next)
        end = Math.max(end, next.compressedEnd)
        i++
      }
      // The run's chunks count as pending from here on, so the next plan skips them.
      const fetched: Promise<void> = fetcher.ensureLocal(run, {semaphore, maxCoalescedBytes: maxRange, skipMemory: true}).then((failed) => {
        failures += failed
        inFlight.delete(fetched)
      })
      inFlight.add(fetched)
      bytes += end - start
      // Pace: by now `bytes` should have taken bytes/rate seconds.
      const ahead = (bytes / options.bytesPerSecond) * 1000 - (performance.now() - started)
      if (ahead > 0) await delay(ahead, undefined, {signal: abort.signal}).catch(() => undefined)
    }
    await Promise.all(inFlight)
    if (abort.signal.aborted) return 'stopped'
    if (failures > 0) {
      log.warn('background fetch finished with failed chunks', {layer: label, failed: failures})
      return 'failed'
    }
    return 'done'
  }

  const finished = walk().catch((err) => {
    log.error('background fetch stopped by an error', {layer: label, error: describeError(err)})
    return 'failed' as const
  }).then((result) => {
    state = result
    if (result === 'done') log.info('background fetch complete: layer fully local', {layer: label})
    return result
  })

  return {
    get state() {
      return state
    },
    finished,
    stop() {
      abort.abort()
    },
  }
}
