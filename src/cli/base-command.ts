// Base class of every lazyctl command: renders errors once, at the CLI edge.
import {Command} from '@oclif/core/command'
import * as Errors from '@oclif/core/errors'
import {reportError} from './render-error.js'

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
    return this.exit(reportError(err))
  }
}
