// Inflating parts of a blob without trusting it: output is bounded (a few compressed bytes can
// claim gigabytes) and work stops as soon as the wanted bytes are out.
import {createGunzip} from 'node:zlib'

export class InflateError extends Error {}

/**
 * Inflates gzip `data` (one or more members) and returns the `want` bytes that follow the first
 * `skip` uncompressed bytes. Resolves with fewer than `want` bytes only if the stream ends early.
 * Runs on the libuv thread pool, never blocking the event loop.
 */
export function inflateRange(data: Buffer, skip: number, want: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const gunzip = createGunzip()
    const out = Buffer.allocUnsafe(want)
    let seen = 0 // uncompressed bytes produced so far
    let filled = 0
    let settled = false
    const finish = (err?: Error): void => {
      if (settled) return
      settled = true
      gunzip.removeAllListeners('data')
      gunzip.destroy()
      if (err) reject(new InflateError(err.message))
      else resolve(filled === want ? out : out.subarray(0, filled))
    }
    gunzip.on('data', (piece: Buffer) => {
      const start = Math.max(0, skip - seen)
      seen += piece.length
      if (start < piece.length) {
        const n = Math.min(piece.length - start, want - filled)
        piece.copy(out, filled, start, start + n)
        filled += n
      }
      if (filled === want) finish()
    })
    gunzip.on('error', (err) => finish(err))
    gunzip.on('end', () => finish())
    if (want === 0) return finish()
    gunzip.end(data)
  })
}
