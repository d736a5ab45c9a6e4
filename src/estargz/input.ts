// The writer's input: a tar stream that may be plain, gzip- or zstd-compressed, told apart by its
// magic bytes as the reference converter does. gzip inflates on the thread pool (node:zlib);
// zstd goes through fzstd, a small maintained pure-JS decoder.
import {Readable, pipeline} from 'node:stream'
import {createGunzip} from 'node:zlib'
import {Decompress} from 'fzstd'
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
  } else if (kind === 'gzip') {
    const gunzip = createGunzip()
    // pipeline, not pipe: an error of the input must reach this loop (and not be unhandled).
    pipeline(Readable.from(rest()), gunzip, () => {})
    try {
      for await (const piece of gunzip) yield piece as Buffer
    } catch (err) {
      if (err instanceof LazyError) throw err
      throw new LazyError('NOT_A_TAR', `${label}: gzip stream is corrupt: ${(err as Error).message}`, {cause: err})
    }
  } else {
    const out: Buffer[] = []
    const decoder = new Decompress((chunk) => {
      out.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))
    })
    try {
      for await (const piece of rest()) {
        decoder.push(piece)
        yield* out.splice(0)
      }
      decoder.push(new Uint8Array(0), true)
    } catch (err) {
      if (err instanceof LazyError) throw err
      throw new LazyError('NOT_A_TAR', `${label}: zstd stream is corrupt: ${(err as Error).message}`, {cause: err})
    }
    yield* out.splice(0)
  }
}

function toBuffer(v: Buffer | Uint8Array | string): Buffer {
  if (typeof v === 'string') return Buffer.from(v)
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)
}
