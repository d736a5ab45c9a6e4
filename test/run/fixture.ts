// The run tests' world: a private containerd and registry, a busybox image built by the rig and
// pushed to the registry, a temp data root, and the CLI run against them.
import {join} from 'node:path'
import {detachContainer} from '../../src/network/attach.js'
import {allContainerStateDirs} from '../../src/run/state.js'
import {startContainerd, type ContainerdRig} from '../rig/containerd.js'
import {runCli, type CliResult} from '../rig/cli.js'
import {busyboxImage, pushImage, writeOciArchive, type ImageSpec} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

export interface RunWorld {
  containerd: ContainerdRig
  registry: RegistryRig
  dir: string
  dataRoot: string
  /** Environment of every CLI run: the temp data root, and overlayfs (the run path itself is tested there; the lazy default has its own tests). */
  cliEnv: NodeJS.ProcessEnv
  /** Runs lazyctl with -a/-n of the rig and cliEnv. */
  cli(args: string[], options?: {input?: string; env?: NodeJS.ProcessEnv}): Promise<CliResult>
  /** Builds `spec` (busybox based) and pushes it as `<registry>/<repo>`; returns the full reference. */
  pushBusybox(repo: string, spec?: Partial<ImageSpec>): Promise<string>
  stop(): Promise<void>
}

export async function startRunWorld(): Promise<RunWorld> {
  const dir = rigTempDir('run')
  const containerd = await startContainerd()
  const registry = await startRegistry()
  const dataRoot = join(dir, 'data')
  const cliEnv = {LAZYCTL_DATA_ROOT: dataRoot, CONTAINERD_SNAPSHOTTER: 'overlayfs'}
  const world: RunWorld = {
    containerd,
    registry,
    dir,
    dataRoot,
    cliEnv,
    cli(args, options = {}) {
      const [command, ...rest] = args
      return runCli([command!, '--address', containerd.address, '--namespace', containerd.namespace, ...rest], {
        env: {...cliEnv, ...options.env},
        ...(options.input === undefined ? {} : {input: options.input}),
      })
    },
    async pushBusybox(repo, spec = {}) {
      const archive = join(dir, `${repo.replace(/[/:]/g, '_')}.tar`)
      await writeOciArchive(archive, busyboxImage(spec))
      await pushImage(archive, repo, registry)
      return `${registry.host}/${repo}`
    },
    async stop() {
      // Containers a test left (a failed assertion before its rm): their processes, and on the
      // bridge their named network namespaces and iptables rules, would outlive containerd.
      const left = (await world.cli(['ps', '-a', '-q'])).stdout.split('\n').filter(Boolean)
      for (const id of left) await world.cli(['rm', '-f', id])
      // Whatever rm could not take down (a run killed before its container existed): its network.
      for (const stateDir of allContainerStateDirs(dataRoot)) await detachContainer(stateDir).catch(() => undefined)
      await containerd.stop()
      await registry.stop()
      removeDir(dir)
    },
  }
  return world
}

/** The `lazyctl: …` lines of stderr (an error must be exactly one). */
export function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('lazyctl: '))
}
