// The writer's input: a tar stream that may be plain, gzip- or zstd-compressed, told apart by its
// magic bytes as the reference converter does. Both inflate on the thread pool through node:zlib's
// streams, whose backpressure bounds what a small, highly compressed input can expand to in memory.
import {Readable, pipeline, type Transform} from 'node:stream'
import {createGunzip, createZstdDecompress} from 'node:zlib'
import {LazyError} from '../cli/errors.js'

export type InputCompression = 'none' | 'gzip' | 'zstd'

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08])
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])

export function detectCompression(head: Buffer): InputCompression {
  if (head.subarray(0, 3).equals(GZIP_MAGIC)) return 'gzip'
  if (head.subarray(0, 4).equals(ZSTD_MAGIC)) return 'zstd'
  return 'none'
}

/** The decompressed bytes of `input`, whatever its compression. */
export async function* decompressedTar(input: AsyncIterable<Buffer | Uint8Array | string>, label: string): AsyncGenerator<Buffer> {
  const iterator = input[Symbol.asyncIterator]()
  const head: Buffer[] = []
  let headBytes = 0
  let ended = false
  while (headBytes < 4) {
    const next = await iterator.next()
    if (next.done) {
      ended = true
      break
    }
    const buf = toBuffer(next.value)
    head.push(buf)
    headBytes += buf.length
  }
  const first = Buffer.concat(head)
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first
    if (ended) return
    for (;;) {
      const next = await iterator.next()
      if (next.done) return
      yield toBuffer(next.value)
    }
  }
  const kind = detectCompression(first)
  if (kind === 'none') {
    yield* rest()
  } else {
    const decoder = decompressor(kind)
    // pipeline, not pipe: an error of the input must reach this loop (and not be unhandled).
    pipeline(Readable.from(rest()), decoder, () => {})
    try {
      for await (const piece of decoder) yield piece as Buffer
    } catch (err) {
      if (err instanceof LazyError) throw err
      throw new LazyError('NOT_A_TAR', `${label}: ${kind} stream is corrupt: ${(err as Error).message}`, {cause: err})
    }
  }
}

/** A streaming decoder for a compressed tar (gzip or zstd). */
export function decompressor(kind: Exclude<InputCompression, 'none'>): Transform {
  return kind === 'gzip' ? createGunzip() : createZstdDecompress()
}

function toBuffer(v: Buffer | Uint8Array | string): Buffer {
  if (typeof v === 'string') return Buffer.from(v)
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}
