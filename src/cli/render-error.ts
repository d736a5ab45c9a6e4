// How a failure reaches the user: one `lazyctl: …` line, a `hint:` line, a stable exit status. Used at
// the CLI's two edges — oclif's commands (base-command.ts) and the commands run without oclif (lean.ts).
import {ERROR_CODES, LazyError, describeError} from './errors.js'

export interface RenderedError {
  line: string
  hint?: string
  exit: number
}

export function renderError(err: Error): RenderedError {
  if (err instanceof LazyError) {
    const out: RenderedError = {line: describeError(err), exit: err.exitCode}
    if (err.hint) out.hint = err.hint
    return out
  }
  // oclif's own errors (unknown flag, missing argument, bad option) are usage errors.
  const oclifExit = (err as {oclif?: {exit?: number}}).oclif?.exit
  if (oclifExit !== undefined) {
    return {line: describeError(err), hint: 'see --help for usage', exit: ERROR_CODES.USAGE}
  }
  return {line: `internal error: ${describeError(err)}`, hint: 'set LAZYCTL_DEBUG=1 for a stack trace', exit: ERROR_CODES.INTERNAL}
}

/** Writes the error to stderr and returns the exit status it calls for. */
export function reportError(err: Error): number {
  const {line, hint, exit} = renderError(err)
  process.stderr.write(`lazyctl: ${line}\n`)
  if (hint) process.stderr.write(`hint: ${hint}\n`)
  if (process.env.LAZYCTL_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`)
  return exit
}
