// A RandomAccessSource wrapper that counts what was read from the blob, and can hold reads until
// released (to make concurrent requests meet deterministically). Bytes are counted at the source,
// below lazyfs, so tests do not rely on lazyfs's own claims.
import type {RandomAccessSource} from '../../src/estargz/random-access.js'

export interface CountingSource extends RandomAccessSource {
  bytesRead: number
  reads: Array<{offset: number; length: number}>
  /** Reads wait until release() while held. */
  hold(): void
  release(): void
  /** Number of reads currently waiting on hold(). */
  readonly waiting: number
}

export function countingSource(inner: RandomAccessSource): CountingSource {
  let held = false
  let waiters: Array<() => void> = []
  const source: CountingSource = {
    size: inner.size,
    bytesRead: 0,
    reads: [],
    async readAt(offset, length) {
      if (held) await new Promise<void>((resolve) => waiters.push(resolve))
      const data = await inner.readAt(offset, length)
      source.bytesRead += data.length
      source.reads.push({offset, length})
      return data
    },
    hold() {
      held = true
    },
    release() {
      held = false
      const w = waiters
      waiters = []
      for (const resolve of w) resolve()
    },
    get waiting() {
      return waiters.length
    },
  }
  return source
}

/** Resolves once `condition` holds; fails after `timeoutMs` with `what` in the message. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
