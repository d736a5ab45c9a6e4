// `lazyctl run IMAGE` (and `pull`) names the image to lazyctl's snapshotter first thing, before the
// CLI has loaded oclif, grpc-js and undici (~0.15 s) and asked containerd and the registry about
// it. The daemon reads the manifest and the TOCs of the lazy layers meanwhile, so the Prepare that
// comes later finds them parsed: without the hint, those registry round trips and the TOC parse
// (0.2 s for a Debian base layer at 100 Mbit/s) sat between the manifest and the container.
//
// A hint only: it goes to the socket lazyctl's config names (the command later asks containerd
// which socket it really dials), nobody waits for the answer, and any failure — no daemon, a
// foreign one, a bad flag — is ignored: the command then does the same work, only later.
// bin/run.js calls it before importing the CLI bundle, so it reads the command's flags from
// oclif.manifest.json and loads only node builtins, the TOML config and the call itself.
import type {ManifestFlag} from '../cli/argv.js'
import {imageArgIndex} from '../cli/image-arg.js'
import {cliManifest} from '../cli/manifest.js'
import {isRemoteSnapshotter} from '../containerd/remote-snapshot-labels.js'
import {locateSnapshotter} from '../snapshotter/locate.js'
import {sendResolveAhead, type ResolveAheadRequest} from '../snapshotter/status-protocol.js'

/** Commands whose image's layers the snapshotter will be asked to prepare. */
const HINTED_COMMANDS = new Set(['run', 'pull'])

export interface EarlyHint {
  socket: string
  request: ResolveAheadRequest
}

/**
 * The hint `argv` (the CLI's arguments, the command first) calls for, if any: the command pulls or
 * runs an image on a remote snapshotter, and may have to pull it.
 */
export function earlyHintFor(argv: readonly string[], flags: Record<string, ManifestFlag>, env: NodeJS.ProcessEnv = process.env): EarlyHint | undefined {
  const [command, ...rest] = argv
  if (!command || !HINTED_COMMANDS.has(command)) return undefined
  const at = imageArgIndex(rest, flags)
  if (at < 0) return undefined
  const image = rest[at]!
  const words = rest.slice(0, at)
  const value = (name: string): string | undefined => {
    const def = flags[name]
    const given = optionValue(words, name, def?.char)
    if (given !== undefined) return given
    const fromEnv = def?.env ? env[def.env] : undefined
    if (fromEnv) return fromEnv
    return typeof def?.default === 'string' ? def.default : undefined
  }
  const snapshotter = value('snapshotter')
  if (!snapshotter || !isRemoteSnapshotter(snapshotter)) return undefined
  if (value('pull') === 'never') return undefined
  const platform = value('platform')
  const {socket} = locateSnapshotter({env})
  return {socket, request: platform ? {image, platform} : {image}}
}

/**
 * The last value given for `--name` (or `-c`) among `words`: `--name v`, `--name=v`, `-c v`.
 * (A value glued to a short flag, `-cv`, cannot be told from a cluster of boolean flags here.)
 */
function optionValue(words: readonly string[], name: string, char?: string): string | undefined {
  let found: string | undefined
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!
    if (word === `--${name}` || (char && word === `-${char}`)) found = words[++i]
    else if (word.startsWith(`--${name}=`)) found = word.slice(name.length + 3)
  }
  return found
}

/** For bin/run.js: sends the hint `argv` calls for, if any; never throws. */
export function hintSnapshotterEarly(argv: readonly string[]): void {
  try {
    const flags = cliManifest().commands[argv[0] ?? '']?.flags
    if (!flags) return
    const hint = earlyHintFor(argv, flags)
    if (hint) sendResolveAhead(hint.socket, hint.request)
  } catch {
    // A hint: the command itself reports whatever is wrong.
  }
}
