// `lazyctl run` from its parsed flags: the options for runContainer, the run, the output. Shared by
// the oclif command (commands/run.ts) and the start without oclif (src/cli/lean.ts), so both paths
// are one behaviour.
import {TRACING, traceMark} from '../cli/trace.js'
import {ContainerdConnection} from '../containerd/connection.js'
import {parsePlatform} from '../oci/platform.js'
import {runContainer, type PullPolicy, type RunOptions} from './run.js'
import {registryFetcher} from './source-fetcher.js'

/** The run command's flags, by their command-line names. */
export interface RunFlags {
  address: string
  namespace: string
  'data-root': string
  snapshotter: string
  rm: boolean
  detach: boolean
  interactive: boolean
  tty: boolean
  name?: string | undefined
  env: string[]
  'env-file': string[]
  workdir?: string | undefined
  user?: string | undefined
  entrypoint?: string | undefined
  volume: string[]
  network: string
  publish?: string[] | undefined
  'read-only': boolean
  'security-opt': string[]
  pull: string
  platform?: string | undefined
  'require-lazy'?: boolean | undefined
}

/**
 * Runs IMAGE with COMMAND as the flags say; returns the container's exit status (undefined when
 * detached, after printing the container's ID).
 */
export async function runCommand(flags: RunFlags, image: string, command: string[]): Promise<number | undefined> {
  if (TRACING) traceMark('run command started')
  const options: RunOptions = {
    address: flags.address,
    namespace: flags.namespace,
    dataRoot: flags['data-root'],
    snapshotter: flags.snapshotter,
    image,
    args: command,
    rm: flags.rm,
    detach: flags.detach,
    interactive: flags.interactive,
    tty: flags.tty,
    env: flags.env,
    envFiles: flags['env-file'],
    volumes: flags.volume,
    network: flags.network,
    publish: flags.publish ?? [],
    readOnly: flags['read-only'],
    securityOpts: flags['security-opt'],
    pull: flags.pull as PullPolicy,
    requireLazy: flags['require-lazy'] ?? false,
    openFetcher: registryFetcher,
    stdio: {stdin: process.stdin, stdout: process.stdout, stderr: process.stderr},
  }
  if (flags.name !== undefined) options.name = flags.name
  if (flags.workdir !== undefined) options.workdir = flags.workdir
  if (flags.user !== undefined) options.user = flags.user
  if (flags.entrypoint !== undefined) options.entrypoint = flags.entrypoint
  if (flags.platform !== undefined) options.platform = parsePlatform(flags.platform)
  const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
  try {
    const result = await runContainer(conn, options)
    if (options.detach) process.stdout.write(`${result.id}\n`)
    return result.exitCode
  } finally {
    conn.close()
  }
}
