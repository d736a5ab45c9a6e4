// ps, logs, rm: listing lazyctl's containers with their task state, showing a detached container's
// captured output, and removing a container with everything it left (task, snapshot, record, files).
import {createReadStream, existsSync, statSync, watch} from 'node:fs'
import {constants as osConstants} from 'node:os'
import type {Writable} from 'node:stream'
import {LazyError} from '../cli/errors.js'
import type {ContainerdConnection} from '../containerd/connection.js'
import {getContainer, listContainers, type ContainerRecord} from '../containerd/containers.js'
import {getTask, killTask, waitTask, type TaskStatus} from '../containerd/tasks.js'
import {findContainerByName, removeContainerEverything} from './run.js'
import {waitForLogComplete} from './logger.js'
import {LABELS} from './state.js'

export interface ContainerSummary {
  id: string
  name: string
  image: string
  command: string
  createdAt?: string
  /** 'running', 'exited', 'created', 'paused', … */
  state: string
  /** Set once the container has exited. */
  exitCode?: number
  /** docker-style: `Up`, `Exited (3)`, `Created`. */
  status: string
}

function summarise(c: ContainerRecord, task: {status: TaskStatus; exitStatus: number} | undefined): ContainerSummary {
  const recordedExit = c.labels[LABELS.exitCode]
  let state: string
  let exitCode: number | undefined
  if (task) {
    state = task.status === 'STOPPED' ? 'exited' : task.status.toLowerCase()
    if (task.status === 'STOPPED') exitCode = task.exitStatus
  } else if (recordedExit !== undefined) {
    state = 'exited'
    exitCode = Number(recordedExit)
  } else state = 'created'
  let command = ''
  try {
    command = (JSON.parse(c.labels[LABELS.command] ?? '[]') as string[]).join(' ')
  } catch {
    // a record made by another client
  }
  const status = state === 'running' ? 'Up' : state === 'exited' ? `Exited (${exitCode})` : state[0]!.toUpperCase() + state.slice(1)
  const out: ContainerSummary = {id: c.id, name: c.labels[LABELS.name] ?? '', image: c.image, command, state, status}
  if (exitCode !== undefined) out.exitCode = exitCode
  if (c.createdAt) out.createdAt = c.createdAt.toISOString()
  return out
}

/** Containers of this namespace, running ones only unless `all`. */
export async function listContainerSummaries(conn: ContainerdConnection, options: {all: boolean}): Promise<ContainerSummary[]> {
  const containers = await listContainers(conn)
  const out = await Promise.all(containers.map(async (c) => summarise(c, await getTask(conn, c.id))))
  return out.filter((s) => options.all || s.state === 'running' || s.state === 'paused').sort((a, b) => (b.createdAt ?? '').localeCompare(a.createdAt ?? ''))
}

/** Finds a container by full ID, name, or unique ID prefix (as docker does). */
export async function findContainer(conn: ContainerdConnection, idOrName: string): Promise<ContainerRecord> {
  const exact = /^[a-f0-9]{64}$/.test(idOrName) ? await getContainer(conn, idOrName) : undefined
  if (exact) return exact
  const byName = await findContainerByName(conn, idOrName)
  if (byName) return (await getContainer(conn, byName))!
  if (/^[a-f0-9]+$/.test(idOrName)) {
    const matches = (await listContainers(conn)).filter((c) => c.id.startsWith(idOrName))
    if (matches.length === 1) return matches[0]!
    if (matches.length > 1) throw new LazyError('USAGE', `container ID prefix "${idOrName}" is ambiguous (${matches.length} containers)`)
  }
  throw new LazyError('CONTAINER_NOT_FOUND', `no such container: ${idOrName}`, {hint: 'lazyctl ps -a lists them'})
}

/** How long `logs -f` waits, after the exit, for a logger that never says it is done. */
const LOGGER_FINISH_TIMEOUT_MS = 5000

/** Writes the container's captured output to `out`; with `follow`, keeps going until the task exits. */
export async function containerLogs(conn: ContainerdConnection, idOrName: string, out: Writable, options: {follow: boolean}): Promise<void> {
  const c = await findContainer(conn, idOrName)
  const logPath = c.labels[LABELS.logPath]
  if (!logPath) {
    throw new LazyError('NOT_FOUND', `container ${c.labels[LABELS.name] ?? c.id} has no captured logs`, {hint: 'lazyctl captures the output of detached (-d) containers; a foreground run prints it directly'})
  }
  let offset = 0
  const copyNew = async (): Promise<void> => {
    if (!existsSync(logPath)) return
    const size = statSync(logPath).size
    if (size <= offset) return
    await new Promise<void>((resolve, reject) => {
      const s = createReadStream(logPath, {start: offset, end: size - 1})
      s.on('data', (chunk) => out.write(chunk))
      s.on('end', resolve)
      s.on('error', reject)
    })
    offset = size
  }
  await copyNew()
  if (!options.follow) return
  const task = await getTask(conn, c.id)
  if (!task || task.status === 'STOPPED') {
    await waitForLogComplete(logPath, LOGGER_FINISH_TIMEOUT_MS)
    return copyNew()
  }
  // Copy on every change of the file, until the task exits; then copy what is left.
  let chain = Promise.resolve()
  const watcher = watch(logPath, () => {
    chain = chain.then(copyNew, copyNew)
  })
  try {
    await waitTask(conn, c.id)
    // The exit comes before the logger has seen the last bytes; wait for it to say so.
    await waitForLogComplete(logPath, LOGGER_FINISH_TIMEOUT_MS)
  } finally {
    watcher.close()
  }
  await chain
  await copyNew()
}

/** Removes containers; a running one needs `force` (SIGKILL first). Returns the ids removed. */
export async function removeContainer(conn: ContainerdConnection, idOrName: string, options: {force: boolean}): Promise<string> {
  const c = await findContainer(conn, idOrName)
  const task = await getTask(conn, c.id)
  if (task && task.status !== 'STOPPED' && task.status !== 'CREATED') {
    if (!options.force) {
      throw new LazyError('CONTAINER_RUNNING', `container ${c.labels[LABELS.name] ?? c.id} is ${task.status.toLowerCase()}`, {hint: 'stop it first, or use rm -f'})
    }
    const exited = waitTask(conn, c.id)
    await killTask(conn, c.id, osConstants.signals.SIGKILL, true)
    await exited
  }
  await removeContainerEverything(conn, {id: c.id, snapshotter: c.snapshotter, snapshotKey: c.snapshotKey, stateDir: c.labels[LABELS.stateDir]})
  return c.id
}
