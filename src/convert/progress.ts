// What the image pipeline tells whoever shows progress. The CLI renders it (src/cli/progress.ts);
// library callers may pass nothing.

export type LayerPhase = 'fetch' | 'convert' | 'upload' | 'check'

export interface LayerProgress {
  /** A new phase starts; `total` is its expected byte count when known. */
  phase(phase: LayerPhase, total?: number): void
  /** `n` more bytes done in the current phase. */
  bytes(n: number): void
  /** Finished; `note` says how (`uploaded`, `exists`, `mounted`, `reused eStargz`…). */
  done(note: string): void
  failed(error: unknown): void
}

export interface ProgressReporter {
  /** Every task title that will come, in order, before the first one starts (optional). */
  plan?(titles: string[]): void
  /** A unit of work (one blob of one image) with a short title. */
  task(title: string): LayerProgress
  /** A one-off line (e.g. "pushing manifest …"). */
  note(text: string): void
  /** Everything is done (or failed); release the terminal. */
  close(): Promise<void>
}

const quietLayer: LayerProgress = {phase() {}, bytes() {}, done() {}, failed() {}}

export const silentProgress: ProgressReporter = {
  task: () => quietLayer,
  note() {},
  async close() {},
}
