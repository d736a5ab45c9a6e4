// `lazyctl run`: image → rootfs snapshot → container record → task with IO → exit status, the way
// nerdctl does it over containerd's API (see ref §4). Knows nothing of oclif: the command builds
// RunOptions and renders the result.
import {spawn} from 'node:child_process'
import {existsSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {hostname as hostHostname, constants as osConstants} from 'node:os'
import {isAbsolute, join} from 'node:path'
import type {Readable, Writable} from 'node:stream'
import {LazyError, describeError} from '../cli/errors.js'
import {shellCommand} from '../cli/shell-quote.js'
import {PACKAGE_ROOT} from '../paths.js'
import {isGrpcStatus, GrpcStatus, type ContainerdConnection} from '../containerd/connection.js'
import {createContainer, deleteContainer, listContainers, setContainerLabels} from '../containerd/containers.js'
import {resolveStoredImage, type ResolvedImage} from '../containerd/image-content.js'
import {getImage} from '../containerd/images.js'
import {withLease} from '../containerd/leases.js'
import {pullImage, unpackStoredImage, type ImageFetcher} from '../containerd/pull.js'
import {prepareSnapshot, removeSnapshot, statSnapshot} from '../containerd/snapshots.js'
import {closeTaskStdin, createTask, deleteTask, killTask, resizeTaskPty, startTask, waitTask, type TaskIO} from '../containerd/tasks.js'
import type {Platform} from '../oci/platform.js'
import {formatReference, parseReference, type ImageReference} from '../oci/reference.js'
import {writeLoggerBinary} from './logger.js'
import {hintLayersToSnapshotter, notLazyHandler, startLazySnapshotter, whileSnapshotterStarts} from './lazy-snapshotter.js'
import {makeFifos, openReader, openWriter, type FifoSet} from './fifo.js'
import {parseSecurityOpts, type SeccompChoice} from './seccomp.js'
import {buildSpec, DEFAULT_PATH_ENV, mergeEnv, processArgs} from './spec.js'
import {allContainerStateDirs, checkContainerName, containerStateDir, defaultContainerName, ensureDir, fifoRoot, LABELS, newContainerId, removeStateDir} from './state.js'
import {resolveUser, rootfsLayerDirs} from './user.js'
import {attachContainer, detachContainer, netnsNameFor, publishedPorts, type ContainerNetwork} from '../network/attach.js'
import {DEFAULT_NETWORK, forwardNeedsFirewall, networkList} from '../network/bridge.js'
import {netnsPath} from '../network/netns.js'
import {parsePublish, reserveHostPorts} from '../network/publish.js'

type PublishSpec = ReturnType<typeof parsePublish>

export type PullPolicy = 'always' | 'missing' | 'never'

export interface RunOptions {
  address: string
  namespace: string
  dataRoot: string
  snapshotter: string
  image: string
  args: string[]
  name?: string
  rm: boolean
  detach: boolean
  interactive: boolean
  tty: boolean
  env: string[]
  envFiles: string[]
  workdir?: string
  user?: string
  entrypoint?: string
  volumes: string[]
  network: string
  /** -p/--publish specs ([IP:][HOSTPORT:]CONTAINERPORT[/proto]); bridge network only. */
  publish?: string[]
  readOnly: boolean
  /** nerdctl's --security-opt values (seccomp=unconfined|PROFILE.json). */
  securityOpts: string[]
  pull: PullPolicy
  platform?: Platform
  /** Opens the registry side of a pull (only called when one is needed); absent means images must already be in containerd. */
  openFetcher?: (ref: ImageReference) => Promise<ImageFetcher & {close(): Promise<void>}>
  stdio: {stdin: Readable & {isTTY?: boolean; setRawMode?: (raw: boolean) => unknown}; stdout: Writable & {columns?: number; rows?: number}; stderr: Writable}
  onProgress?: (line: string) => void
  /** Fail the pull instead of downloading a layer the lazy snapshotter declines (--require-lazy). */
  requireLazy?: boolean
  /** One line for the user (a layer that is not lazy); stderr by default. */
  onNotice?: (line: string) => void
}

export interface RunResult {
  id: string
  name: string
  /** The container's exit status (foreground runs only). */
  exitCode?: number
}

interface Bind {
  source: string
  destination: string
  readOnly: boolean
}

/** Checks the flags that need no containerd, so bad input fails before anything is created. */
export type NetworkMode = 'bridge' | 'host' | 'none'

export function validateRunOptions(o: RunOptions): {binds: Bind[]; network: NetworkMode; seccomp: SeccompChoice; publish: PublishSpec[]} {
  if (o.detach && o.interactive) throw new LazyError('USAGE', 'flags --detach and --interactive cannot be combined: lazyctl has no attach, so nothing would read stdin')
  if (o.tty && o.interactive && !o.stdio.stdin.isTTY) throw new LazyError('USAGE', 'the input device is not a TTY (drop -t, or run from a terminal)')
  if (o.name !== undefined) checkContainerName(o.name)
  if (o.network !== 'bridge' && o.network !== 'host' && o.network !== 'none') {
    throw new LazyError('USAGE', `unknown network "${o.network}": use --network bridge (the default), host or none`)
  }
  const network: NetworkMode = o.network
  const publish = (o.publish ?? []).map(parsePublish)
  if (publish.length > 0 && network !== 'bridge') {
    throw new LazyError('USAGE', `--publish needs the bridge network (--network ${network} has no ports to map)`, {hint: network === 'host' ? 'with --network host the container listens on the host directly' : 'drop --network, or use --network bridge'})
  }
  if (o.workdir !== undefined && !isAbsolute(o.workdir)) throw new LazyError('USAGE', `the working directory "${o.workdir}" is not absolute`)
  const binds = o.volumes.map(parseVolume)
  for (const file of o.envFiles) if (!existsSync(file)) throw new LazyError('USAGE', `env file ${file} does not exist`)
  const {seccomp} = parseSecurityOpts(o.securityOpts)
  return {binds, network, seccomp, publish}
}

export function parseVolume(spec: string): Bind {
  const parts = spec.split(':')
  if (parts.length < 2 || parts.length > 3) throw new LazyError('USAGE', `invalid volume "${spec}": expected /host/path:/container/path[:ro|rw]`)
  const [source, destination, mode] = parts as [string, string, string | undefined]
  if (!isAbsolute(source)) throw new LazyError('USAGE', `invalid volume "${spec}": named volumes are not supported, the source must be an absolute host path`)
  if (!isAbsolute(destination)) throw new LazyError('USAGE', `invalid volume "${spec}": the destination must be an absolute path`)
  if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw new LazyError('USAGE', `invalid volume "${spec}": mode must be ro or rw`)
  if (!existsSync(source)) throw new LazyError('USAGE', `invalid volume "${spec}": ${source} does not exist on the host`)
  return {source, destination, readOnly: mode === 'ro'}
}

/** Reads KEY=VALUE lines (# comments, blank lines skipped; a bare KEY takes the host's value). */
export function readEnvFile(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .flatMap(expandEnv)
}

function expandEnv(entry: string): string[] {
  if (entry.includes('=')) return [entry]
  const value = process.env[entry]
  return value === undefined ? [] : [`${entry}=${value}`]
}

/** Finds the image in containerd (pulling per policy) and makes sure it is unpacked in `snapshotter`. */
export async function ensureImage(conn: ContainerdConnection, o: Pick<RunOptions, 'image' | 'pull' | 'snapshotter' | 'platform' | 'openFetcher' | 'onProgress' | 'requireLazy' | 'onNotice'>): Promise<ResolvedImage> {
  const ref = parseReference(o.image)
  const name = formatReference(ref)
  // A snapshotter that has to be started takes a while; the image lookup and the registry's
  // manifest and config do not need it, so they go ahead meanwhile.
  const {ready: snapshotterReady, answering} = startLazySnapshotter(conn, o.snapshotter)
  let record = o.pull === 'always' ? undefined : await whileSnapshotterStarts(snapshotterReady, () => getImage(conn, name))
  if (!record) {
    if (o.pull === 'never' || !o.openFetcher) {
      await snapshotterReady
      throw new LazyError('IMAGE_NOT_FOUND', `image ${name} is not in containerd (namespace ${conn.namespace})${o.pull === 'never' ? ' and --pull=never' : ''}`, {hint: `lazyctl pull ${o.image}`})
    }
    record = await whileSnapshotterStarts(snapshotterReady, async () => {
      const fetcher = await o.openFetcher!(ref)
      try {
        const onNotLazy = notLazyHandler(answering, {requireLazy: o.requireLazy, notice: o.onNotice})
        return (await pullImage(conn, fetcher, ref, withDefined({snapshotter: o.snapshotter, platform: o.platform, onProgress: o.onProgress, snapshotterReady, onManifest: hintLayersToSnapshotter(answering), onNotLazy}))).image
      } finally {
        await fetcher.close()
      }
    })
  }
  await snapshotterReady
  const resolved = await resolveStoredImage(conn, record, o.platform)
  if (!(await statSnapshot(conn, o.snapshotter, resolved.chainId))) {
    await unpackStoredImage(conn, name, resolved.manifestDescriptor, resolved.manifest, resolved.config.rootfs.diff_ids, o.snapshotter)
  }
  return resolved
}

function withDefined<T extends object>(o: T): {[K in keyof T]: Exclude<T[K], undefined>} {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {[K in keyof T]: Exclude<T[K], undefined>}
}

export async function findContainerByName(conn: ContainerdConnection, name: string): Promise<string | undefined> {
  const found = await listContainers(conn, [`labels."${LABELS.name}"==${name}`])
  return found[0]?.id
}

interface ImageRuntimeConfig {
  Env?: string[] | null
  Entrypoint?: string[] | null
  Cmd?: string[] | null
  WorkingDir?: string
  User?: string
  StopSignal?: string
  Labels?: Record<string, string> | null
}

export async function runContainer(conn: ContainerdConnection, o: RunOptions): Promise<RunResult> {
  const {binds, network, seccomp, publish} = validateRunOptions(o)
  const name = o.name ?? defaultContainerName(o.image)
  // Independent round trips, overlapped: they are most of the time before the container exists.
  const [taken, image] = await Promise.all([findContainerByName(conn, name), ensureImage(conn, o)])
  if (taken) {
    throw new LazyError('NAME_IN_USE', `the container name "${name}" is already in use`, {hint: `remove it first (lazyctl rm -f ${name}) or choose another --name`})
  }
  const imageConfig = (image.config.config ?? {}) as ImageRuntimeConfig
  const args = processArgs(imageConfig, o.args, o.entrypoint)
  if (args.length === 0) throw new LazyError('USAGE', `no command given and image ${image.name} has no Entrypoint or Cmd`)

  const id = newContainerId()
  const hostname = network === 'host' ? hostHostname() : id.slice(0, 12)
  const stateDir = ensureDir(containerStateDir(o.dataRoot, o.address, o.namespace, id))
  const logPath = join(stateDir, `${id}.log`)
  // The network is set up while containerd prepares the rootfs; the task waits for it.
  const attaching = network === 'bridge' ? joinBridge(o.dataRoot, id, stateDir, publish) : undefined
  attaching?.catch(() => undefined) // awaited below; a failure before then must not go unhandled
  const etcFiles = writeEtcFiles(stateDir, hostname, network)
  const env = mergeEnv(
    [DEFAULT_PATH_ENV],
    imageConfig.Env ?? [],
    [`HOSTNAME=${hostname}`],
    o.tty ? ['TERM=xterm'] : [],
    ...o.envFiles.map(readEnvFile),
    o.env.flatMap(expandEnv),
  )
  const labels: Record<string, string> = {
    ...(imageConfig.Labels ?? {}),
    [LABELS.stopSignal]: imageConfig.StopSignal ?? 'SIGTERM',
    [LABELS.name]: name,
    [LABELS.stateDir]: stateDir,
    [LABELS.command]: JSON.stringify(args),
    [LABELS.autoRemove]: String(o.rm),
  }
  if (o.detach) labels[LABELS.logPath] = logPath

  // The FIFOs of a foreground run are made while containerd prepares the rootfs and the record.
  const fifosMade = o.detach ? undefined : makeFifos(fifoRoot(o.dataRoot), id, {stdin: o.interactive, stderr: !o.tty})
  fifosMade?.catch(() => undefined) // awaited below; a failure before then must not go unhandled
  let created = false
  let taskDeleted = false
  try {
    const mounts = await withLease(conn, async (lease) => {
      const rootfs = await prepareSnapshot(conn, o.snapshotter, id, image.chainId, {}, {lease})
      const user = resolveUser(o.user ?? imageConfig.User ?? '', rootfsLayerDirs(rootfs))
      const spec = buildSpec({
        namespace: o.namespace,
        containerId: id,
        hostname,
        args,
        env,
        cwd: o.workdir ?? (imageConfig.WorkingDir || '/'),
        user,
        terminal: o.tty,
        readOnlyRootfs: o.readOnly,
        network: network === 'bridge' ? {netns: netnsPath(netnsNameFor(id))} : network,
        etcFiles,
        binds,
        seccomp,
      })
      await createContainer(conn, {id, image: image.name, labels, snapshotter: o.snapshotter, snapshotKey: id, spec}, {lease})
      created = true
      return rootfs
    })
    if (attaching) writeHostsFile(etcFiles.hosts, hostname, (await attaching).ip)
    if (o.detach) {
      const sink = writeLoggerBinary(stateDir, logPath)
      await createTask(conn, id, mounts, {stdin: '', stdout: sink, stderr: o.tty ? '' : sink, terminal: o.tty}).catch((err) => {
        throw runtimeError(err)
      })
      await startTask(conn, id).catch((err) => {
        throw runtimeError(err)
      })
      if (o.rm) removeWhenExited(o.address, o.namespace, id)
      return {id, name}
    }
    const exitCode = await runForeground(conn, id, mounts, await fifosMade!, o)
    taskDeleted = true
    // The process is gone: its address and ports go back now, not at rm (as nerdctl's poststop hook).
    if (attaching) await detachContainer(stateDir)
    return {id, name, exitCode}
  } catch (err) {
    await fifosMade?.then((fifos) => fifos.remove(), () => undefined)
    await deleteTask(conn, id).catch(() => undefined)
    // Set up or not, the network goes with the failed run (also when the container record stays).
    await attaching?.then(() => detachContainer(stateDir), () => undefined).catch(() => undefined)
    if (!created || o.rm) await removeContainerEverything(conn, {id, snapshotter: o.snapshotter, snapshotKey: id, stateDir})
    throw err
  } finally {
    if (o.rm && !o.detach) await removeContainerEverything(conn, {id, snapshotter: o.snapshotter, snapshotKey: id, stateDir, taskDeleted}).catch(() => undefined)
  }
}

/**
 * `run -d --rm`: a detached `lazyctl wait`, then `lazyctl rm -f`, outliving this CLI (the task's
 * output pipes close only when its task is deleted, so nothing on the shim's side can do it).
 */
function removeWhenExited(address: string, namespace: string, id: string): void {
  const lazyctl = [process.execPath, join(PACKAGE_ROOT, 'bin', 'run.js')]
  const flags = ['--address', address, '--namespace', namespace, id]
  const script = `${shellCommand([...lazyctl, 'wait', ...flags])} >/dev/null 2>&1; exec ${shellCommand([...lazyctl, 'rm', '-f', ...flags])} >/dev/null 2>&1`
  spawn('/bin/sh', ['-c', script], {detached: true, stdio: 'ignore'}).unref()
}

/** Task, snapshot, record, state dir: everything a container leaves, in nerdctl's order. */
export async function removeContainerEverything(conn: ContainerdConnection, c: {id: string; snapshotter: string; snapshotKey: string; stateDir: string | undefined; taskDeleted?: boolean}): Promise<void> {
  if (!c.taskDeleted) await deleteTask(conn, c.id)
  // Independent once the task is gone: containerd does not tie a snapshot to the record naming it.
  await Promise.all([c.snapshotKey ? removeSnapshot(conn, c.snapshotter, c.snapshotKey) : undefined, deleteContainer(conn, c.id), detachContainer(c.stateDir)])
  removeStateDir(c.stateDir)
}

async function runForeground(conn: ContainerdConnection, id: string, rootfs: Awaited<ReturnType<typeof prepareSnapshot>>, fifos: FifoSet, o: RunOptions): Promise<number> {
  const io: TaskIO = {stdin: fifos.stdin, stdout: fifos.stdout, stderr: fifos.stderr, terminal: o.tty}
  const stdoutOpen = openReader(fifos.stdout)
  const stderrOpen = fifos.stderr ? openReader(fifos.stderr) : undefined
  const cleanups: Array<() => void> = [() => fifos.remove()]
  try {
    try {
      await createTask(conn, id, rootfs, io)
    } catch (err) {
      // Unblock our pending opens (they wait for a writer that will never come), then report.
      await unblockOpens(fifos, [stdoutOpen, stderrOpen])
      throw runtimeError(err)
    }
    const stdout = await stdoutOpen
    const stderr = stderrOpen ? await stderrOpen : undefined
    const drained = Promise.all([pipeUntilEnd(stdout, o.stdio.stdout), stderr ? pipeUntilEnd(stderr, o.stdio.stderr) : undefined])
    // Wait before Start, so an instant exit cannot be missed.
    const exited = waitTask(conn, id)
    exited.catch(() => undefined)
    // The terminal gets its size before the process starts (the console exists from Create), so
    // the first thing the container reads is the right size.
    if (o.tty) cleanups.push(await followTerminal(conn, id, o.stdio))
    else cleanups.push(forwardSignals(conn, id))
    await startTask(conn, id).catch((err) => {
      throw runtimeError(err)
    })
    if (o.interactive) void feedStdin(conn, id, fifos.stdin, o.stdio.stdin, o.tty)

    const status = await exited
    await drained
    const deleted = await deleteTask(conn, id)
    if (!o.rm) await setContainerLabels(conn, id, {[LABELS.exitCode]: String(deleted ?? status)}).catch(() => undefined)
    return deleted ?? status
  } finally {
    for (const c of cleanups.reverse()) c()
  }
}

/** Opens the other end of our pending FIFO opens so they complete, then closes everything. */
async function unblockOpens(fifos: FifoSet, pending: Array<Promise<import('node:net').Socket> | undefined>): Promise<void> {
  const writers = await Promise.all(
    [fifos.stdout, fifos.stderr].filter(Boolean).map((p) => openWriter(p).catch(() => undefined)),
  )
  for (const p of pending) (await p?.catch(() => undefined))?.destroy()
  for (const w of writers) w?.destroy()
}

function pipeUntilEnd(from: import('node:net').Socket, to: Writable): Promise<void> {
  return new Promise((resolve) => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) {
        from.pause()
        to.once('drain', () => from.resume())
      }
    })
    from.once('end', resolve)
    from.once('error', () => resolve())
    from.once('close', () => resolve())
  })
}

async function feedStdin(conn: ContainerdConnection, id: string, path: string, input: RunOptions['stdio']['stdin'], tty: boolean): Promise<void> {
  const writer = await openWriter(path)
  writer.on('error', () => undefined) // the container may exit before reading everything
  input.pipe(writer)
  if (tty) return // a terminal's input never "ends"; the container exits on its own
  await new Promise<void>((resolve) => {
    writer.once('finish', resolve)
    writer.once('close', resolve)
  })
  await closeTaskStdin(conn, id).catch(() => undefined)
}

/** Raw local terminal and ResizePty on every SIGWINCH; returns the undo. */
async function followTerminal(conn: ContainerdConnection, id: string, stdio: RunOptions['stdio']): Promise<() => void> {
  const resize = async () => {
    const {columns, rows} = stdio.stdout
    if (columns && rows) await resizeTaskPty(conn, id, columns, rows).catch(() => undefined)
  }
  await resize()
  const onWinch = () => void resize()
  process.on('SIGWINCH', onWinch)
  const raw = Boolean(stdio.stdin.isTTY && stdio.stdin.setRawMode)
  if (raw) stdio.stdin.setRawMode!(true)
  return () => {
    process.off('SIGWINCH', onWinch)
    if (raw) stdio.stdin.setRawMode!(false)
    stdio.stdin.unpipe?.()
    stdio.stdin.pause()
  }
}

/** Forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 to the container (nerdctl's --sig-proxy). */
function forwardSignals(conn: ContainerdConnection, id: string): () => void {
  const names = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const
  const handlers = names.map((name) => {
    const handler = () => void killTask(conn, id, osConstants.signals[name]).catch(() => undefined)
    process.on(name, handler)
    return [name, handler] as const
  })
  return () => {
    for (const [name, handler] of handlers) process.off(name, handler)
  }
}

/** The runtime's own message for a process it could not start, with docker's exit statuses. */
export function runtimeError(err: unknown): unknown {
  const text = describeError(err)
  const exec = /exec: "[^"]*": [^:]+(?:: [^:]+)?/.exec(text)?.[0]?.replace(/: unknown$/, '')
  if (/executable file not found|no such file or directory/.test(text) && /exec/.test(text)) {
    return new LazyError('CONTAINER_COMMAND_NOT_FOUND', exec ?? text, {cause: err})
  }
  if (/permission denied/.test(text) && /exec/.test(text)) return new LazyError('CONTAINER_COMMAND_NOT_EXECUTABLE', exec ?? text, {cause: err})
  if (isGrpcStatus(err, GrpcStatus.UNKNOWN) || isGrpcStatus(err, GrpcStatus.INTERNAL)) return new LazyError('CONTAINERD', `cannot start the container: ${text}`, {cause: err})
  return err
}

/** resolv.conf, hosts and hostname for the container, in its state dir (nerdctl bind-mounts the same three). */
function writeEtcFiles(stateDir: string, hostname: string, network: NetworkMode): {resolvConf: string; hosts: string; hostname: string} {
  const files = {resolvConf: join(stateDir, 'resolv.conf'), hosts: join(stateDir, 'hosts'), hostname: join(stateDir, 'hostname')}
  const hostResolv = readIfFile('/etc/resolv.conf')
  writeFileSync(files.resolvConf, network === 'bridge' ? bridgeResolvConf(hostResolv ?? '') : (hostResolv ?? 'nameserver 127.0.0.1\n'))
  const hostHosts = network === 'host' ? readIfFile('/etc/hosts') : undefined
  if (hostHosts !== undefined) writeFileSync(files.hosts, hostHosts)
  else writeHostsFile(files.hosts, hostname, undefined)
  writeFileSync(files.hostname, `${hostname}\n`)
  return files
}

/** A container's own /etc/hosts: loopback names, and its hostname at its address on the network. */
function writeHostsFile(file: string, hostname: string, ip: string | undefined): void {
  writeFileSync(file, `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n${ip ?? '127.0.0.1'}\t${hostname}\n`)
}

/**
 * The host's resolv.conf without loopback nameservers (a host's 127.0.0.53 stub is not reachable
 * from a bridge network); with none left, public resolvers, as nerdctl and docker do.
 */
function bridgeResolvConf(host: string): string {
  const lines = host.split('\n').filter((line) => !/^\s*nameserver\s+(127\.|::1\b)/.test(line))
  const text = lines.join('\n').trim()
  return /^\s*nameserver\s/m.test(text) ? `${text}\n` : `${text ? `${text}\n` : ''}nameserver 8.8.8.8\nnameserver 8.8.4.4\n`
}

/** The bridge network for a new container: its published ports checked, then the CNI ADD. */
async function joinBridge(dataRoot: string, id: string, stateDir: string, publish: PublishSpec[]): Promise<ContainerNetwork> {
  const taken = publishedPorts(allContainerStateDirs(dataRoot))
  for (const p of publish) {
    const clash = taken.find((t) => t.hostPort === p.hostPort && t.protocol === p.protocol && (!t.hostIP || !p.hostIP || t.hostIP === p.hostIP))
    if (p.hostPortGiven && clash) {
      throw new LazyError('PORT_IN_USE', `cannot publish ${p.hostPort}/${p.protocol}: container ${clash.containerId.slice(0, 12)} publishes it already`, {hint: 'choose another host port, or remove that container'})
    }
  }
  const [portMappings, firewall] = await Promise.all([reserveHostPorts(publish), forwardNeedsFirewall()])
  return attachContainer({containerId: id, list: networkList(DEFAULT_NETWORK, {portmap: portMappings.length > 0, firewall}), portMappings, stateDir})
}

function readIfFile(path: string): string | undefined {
  try {
    return statSync(path).isFile() ? readFileSync(path, 'utf8') : undefined
  } catch {
    return undefined
  }
}
