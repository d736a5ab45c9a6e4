// What lazyfs needs from an eStargz reader, as one small interface: the file tree, the chunk
// plan of a read, and the decoder of one chunk. `from-estargz-reader.ts` adapts the real reader;
// keeping the seam here lets the FUSE code be tested and reasoned about on its own.
import type {ChunkSpan} from './chunk-fetcher.js'
import type {TreeSource} from './fs-tree.js'

export interface LayerContent<N, C extends ChunkSpan> {
  tree: TreeSource<N>
  /** The chunks of a regular file that cover [offset, offset+length), in file order. */
  chunksFor(node: N, offset: number, length: number): C[]
  /** Inflates one chunk from its compressed span (the fetcher verifies the digest again). */
  decodeChunk(chunk: C, compressed: Buffer): Buffer | Promise<Buffer>
  /** The decoder already checks chunkDigest, so the fetcher need not hash the bytes again. */
  decoderVerifies?: boolean
  /** Every chunk of the layer, in blob order (for prefetch, background fetch and "percent local"). */
  allChunks(): readonly C[]
  /**
   * Where the prioritized part of the blob ends (the `.prefetch.landmark` entry's offset);
   * undefined when the layer has no prioritized files (or says `.no.prefetch.landmark`).
   */
  prefetchEnd: number | undefined
}
