// Long CPU work in slices: a generator yields between slices, and the driver decides whether the
// event loop gets a turn there. Opening a TOC of hundreds of thousands of entries takes a second or
// more; in the snapshotter, FUSE reads of other layers must be served meanwhile.
import {setImmediate as nextTurn} from 'node:timers/promises'

/** Entries handled between two yields: large enough that yielding costs nothing measurable. */
export const SLICE_ENTRIES = 8192

export type Sliced<T> = Generator<void, T, void>

/** Runs the work to its end without yielding to the event loop (tools, tests). */
export function runAtOnce<T>(work: Sliced<T>): T {
  for (;;) {
    const step = work.next()
    if (step.done) return step.value
  }
}

/** Runs the work, giving the event loop a turn between slices. */
export async function runInTurns<T>(work: Sliced<T>): Promise<T> {
  for (;;) {
    const step = work.next()
    if (step.done) return step.value
    await nextTurn()
  }
}
