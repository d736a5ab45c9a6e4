// Counters of one mounted layer. Plain numbers that only grow, read by the snapshotter's status
// command and Prometheus metrics (issue 7); nothing here is computed from lazyctl's own claims
// about the registry, only from what passed through this process.

export interface LayerCounters {
  /** Compressed bytes read from the source (registry or file), all range reads together. */
  bytesFetched: number
  /** Range reads issued to the source (a coalesced read of several chunks counts once). */
  rangeReads: number
  /** Range reads that failed (after retries). */
  fetchErrors: number
  /** Chunks whose bytes did not match their chunkDigest (never served, never cached). */
  verifyFailures: number
  /** Uncompressed bytes returned to FUSE read() calls. */
  bytesServed: number
  /** Chunk lookups answered from memory or the disk cache. */
  cacheHits: number
  /** Chunk lookups that needed a fetch (or joined one already in flight). */
  cacheMisses: number
  /** FUSE reads answered with EIO. */
  readErrors: number
  /** Total milliseconds spent in range reads (for mean fetch latency). */
  fetchMillis: number
}

export function newCounters(): LayerCounters {
  return {bytesFetched: 0, rangeReads: 0, fetchErrors: 0, verifyFailures: 0, bytesServed: 0, cacheHits: 0, cacheMisses: 0, readErrors: 0, fetchMillis: 0}
}

/** A snapshot of one layer's state for status and metrics. */
export interface LayerStats extends LayerCounters {
  /** Distinct chunks (by digest) of the layer, and how many of them are in the cache. */
  chunksTotal: number
  chunksLocal: number
  /** Uncompressed bytes of the distinct chunks, and of those in the cache. */
  chunkBytesTotal: number
  chunkBytesLocal: number
  /** Compressed size of the blob. */
  blobSize: number
  prefetch: 'none' | 'pending' | 'running' | 'done' | 'failed'
  backgroundFetch: 'off' | 'running' | 'done' | 'failed' | 'stopped'
}
