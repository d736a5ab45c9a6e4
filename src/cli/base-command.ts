// Base class of every lazyctl command: renders errors once, at the CLI edge.
import {Command} from '@oclif/core/command'
import * as Errors from '@oclif/core/errors'
import {ERROR_CODES, LazyError, describeError} from './errors.js'

export abstract class LazyCommand extends Command {
  /** Writes a line to stdout (commands print results here, progress and errors go to stderr). */
  protected print(text: string): void {
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
  }

  protected printJson(value: unknown): void {
    this.print(JSON.stringify(value, null, 2))
  }

  protected override async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    // Already rendered and asked to exit (this.exit(), or a container's exit status).
    if (err instanceof Errors.ExitError) throw err
    const {line, hint, exit} = renderable(err)
    process.stderr.write(`lazyctl: ${line}\n`)
    if (hint) process.stderr.write(`hint: ${hint}\n`)
    if (process.env.LAZYCTL_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`)
    return this.exit(exit)
  }
}

function renderable(err: Error): {line: string; hint?: string; exit: number} {
  if (err instanceof LazyError) {
    const out: {line: string; hint?: string; exit: number} = {line: describeError(err), exit: err.exitCode}
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
