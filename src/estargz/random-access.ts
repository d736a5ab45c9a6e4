// A source of bytes at arbitrary offsets: a local file now, an HTTP range reader (src/registry/)
// later. The eStargz reader and the lazy filesystem only ever see this interface.
import {open} from 'node:fs/promises'
import {LazyError} from '../cli/errors.js'

export interface RandomAccessSource {
  /** Total size of the blob in bytes. */
  readonly size: number
  /**
   * Returns exactly `length` bytes starting at `offset`. Reading past the end is an error
   * (ESTARGZ_TRUNCATED), never a short buffer.
   */
  readAt(offset: number, length: number, onProgress?: ReadProgress): Promise<Buffer>
}

/**
 * Told, as bytes of a read arrive, the buffer the read will return and how many bytes from its
 * start are in it so far (a source that restarts a read calls it with a new buffer from 0). Lets
 * a reader use the front of a long range before its end arrives. Sources may never call it.
 */
export type ReadProgress = (buffer: Buffer, received: number) => void

export interface ClosableRandomAccessSource extends RandomAccessSource {
  close(): Promise<void>
}

/** Opens a local file as a random-access source. */
export async function openFileSource(path: string): Promise<ClosableRandomAccessSource> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new LazyError('NOT_FOUND', `${path}: no such file`, {cause: err})
    if (code === 'EACCES' || code === 'EPERM') throw new LazyError('PERMISSION', `${path}: permission denied`, {cause: err})
    throw new LazyError('IO', `${path}: cannot open: ${(err as Error).message}`, {cause: err})
  }
  const fh = handle
  const size = (await fh.stat()).size
  return {
    size,
    async readAt(offset: number, length: number): Promise<Buffer> {
      checkRange(path, size, offset, length)
      const buf = Buffer.allocUnsafe(length)
      let done = 0
      while (done < length) {
        const {bytesRead} = await fh.read(buf, done, length - done, offset + done)
        if (bytesRead === 0) throw new LazyError('ESTARGZ_TRUNCATED', `${path}: file shrank while reading at ${offset + done}`)
        done += bytesRead
      }
      return buf
    },
    async close(): Promise<void> {
      await fh.close()
    },
  }
}

/** A source over an in-memory buffer (small blobs, tests). */
export function bufferSource(buffer: Buffer, label = 'buffer'): RandomAccessSource {
  return {
    size: buffer.length,
    async readAt(offset: number, length: number): Promise<Buffer> {
      checkRange(label, buffer.length, offset, length)
      return buffer.subarray(offset, offset + length)
    },
  }
}

function checkRange(label: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new LazyError('INTERNAL', `${label}: bad read range offset=${offset} length=${length}`)
  }
  if (offset + length > size) {
    throw new LazyError('ESTARGZ_TRUNCATED', `${label}: read of ${length} bytes at ${offset} goes past the end (${size} bytes)`)
  }
}
