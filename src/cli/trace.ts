// LAZYCTL_TRACE=1 prints the duration of each containerd call and registry request to stderr, with
// the time since the process started: for finding where a command's time goes.
export const TRACING = Boolean(process.env.LAZYCTL_TRACE)

/** Prints one trace line: what, how long it took since `startedAt` (performance.now()), and when it ended. */
export function trace(what: string, startedAt: number): void {
  const now = performance.now()
  process.stderr.write(`lazyctl trace: ${what} ${(now - startedAt).toFixed(1)} ms (t=${now.toFixed(0)})\n`)
}

/** Prints a point in time: `what` happened now. */
export function traceMark(what: string): void {
  process.stderr.write(`lazyctl trace: ${what} (t=${performance.now().toFixed(0)})\n`)
}
