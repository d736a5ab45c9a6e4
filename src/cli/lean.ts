// The commands whose start time matters most — `run`, the snapshotter daemon that `run` spawns or a
// node's init starts, and `--version` — run without loading oclif (~60 ms of CPU per start here):
// their flags are parsed with the manifest's definitions (src/cli/argv.ts) and handed to the same
// functions the oclif commands call. A line this parser does not take (help, a typo, a bad value)
// goes to oclif as before, which then answers it with its usual messages.
import {parseWithManifest} from './argv.js'
import {imageArgIndex} from './image-arg.js'
import {cliManifest} from './manifest.js'
import {reportError} from './render-error.js'

/**
 * Runs the command `argv` names when it is one of these and its line is plain; returns false when
 * oclif should take it. Failures are reported here, at the edge, and set the exit status.
 */
export async function runWithoutOclif(argv: readonly string[]): Promise<boolean> {
  if (argv.length === 1 && argv[0] === '--version') {
    // oclif's own format: bin/version platform-arch node-version.
    process.stdout.write(`lazyctl/${cliManifest().version} ${process.platform}-${process.arch} node-${process.version}\n`)
    return true
  }
  const [first, second] = argv
  if (first === 'run') return runLean(argv.slice(1))
  if (first === 'snapshotter' && second === 'serve') return serveLean(argv.slice(2))
  return false
}

async function runLean(words: readonly string[]): Promise<boolean> {
  const defs = cliManifest().commands['run']?.flags
  if (!defs) return false
  // As the oclif command does: the words after IMAGE are the container's command, flags and all.
  const at = imageArgIndex([...words], defs)
  if (at < 0) return false
  const parsed = parseWithManifest(words.slice(0, at + 1), defs, {stopAtPositional: true})
  if (!parsed || parsed.positionals.length !== 1) return false
  return settle(async () => {
    const {runCommand} = await import('../run/run-command.js')
    const exitCode = await runCommand(parsed.flags as unknown as Parameters<typeof runCommand>[0], parsed.positionals[0]!, words.slice(at + 1))
    // The container's status is ours; exit now rather than wait for stdin to be drained.
    if (exitCode !== undefined) process.exit(exitCode)
  })
}

async function serveLean(words: readonly string[]): Promise<boolean> {
  const defs = cliManifest().commands['snapshotter:serve']?.flags
  if (!defs) return false
  const parsed = parseWithManifest(words, defs)
  if (!parsed || parsed.positionals.length > 0) return false
  const readyFd = parsed.flags['ready-fd']
  if (readyFd !== undefined && !/^\d+$/.test(String(readyFd))) return false
  return settle(async () => {
    const {serveSnapshotter} = await import('../snapshotter/serve-command.js')
    await serveSnapshotter({...(parsed.flags as Record<string, string | undefined>), 'ready-fd': readyFd === undefined ? undefined : Number(readyFd)})
  })
}

/** Runs a command's body; a failure is rendered once and becomes the process's exit status. */
async function settle(body: () => Promise<void>): Promise<true> {
  try {
    await body()
  } catch (err) {
    process.exitCode = reportError(err instanceof Error ? err : new Error(String(err)))
  }
  return true
}
