// stop, kill, wait: a container's task, as nerdctl handles it. `stop` sends the image's stop signal,
// waits, then SIGKILL, and ends the task (keeping the container, its exit code on the record, its
// network given back); `kill` signals a running task; `wait` blocks until the task exits.
import {constants as osConstants} from 'node:os'
import {setTimeout as delay} from 'node:timers/promises'
import {LazyError} from '../cli/errors.js'
import type {ContainerdConnection} from '../containerd/connection.js'
import {setContainerLabels, type ContainerRecord} from '../containerd/containers.js'
import {deleteTask, getTask, killTask, waitTask} from '../containerd/tasks.js'
import {detachContainer} from '../network/attach.js'
import {findContainer} from './manage.js'
import {LABELS} from './state.js'

/** A signal by name (`TERM`, `SIGTERM`) or number, as docker's `-s` takes it. */
export function parseSignal(text: string): number {
  if (/^\d+$/.test(text)) {
    const n = Number(text)
    if (n >= 1 && n <= 64) return n
  } else {
    const name = (text.toUpperCase().startsWith('SIG') ? text.toUpperCase() : `SIG${text.toUpperCase()}`) as keyof typeof osConstants.signals
    const n = osConstants.signals[name]
    if (n !== undefined) return n
  }
  throw new LazyError('USAGE', `invalid signal "${text}"`, {hint: 'a name such as TERM or SIGKILL, or a number'})
}

function nameOf(c: ContainerRecord): string {
  return c.labels[LABELS.name] ?? c.id.slice(0, 12)
}

async function runningTask(conn: ContainerdConnection, c: ContainerRecord): Promise<boolean> {
  const task = await getTask(conn, c.id)
  return task !== undefined && task.status !== 'STOPPED' && task.status !== 'CREATED'
}

/**
 * Stops a running container: its stop signal (the image's, else SIGTERM), then SIGKILL after
 * `timeoutSec`. The task is deleted and its exit code recorded; a stopped container is left as is.
 */
export async function stopContainer(conn: ContainerdConnection, idOrName: string, timeoutSec: number): Promise<void> {
  const c = await findContainer(conn, idOrName)
  if (!(await runningTask(conn, c))) return
  const exited = waitTask(conn, c.id)
  exited.catch(() => undefined)
  await killTask(conn, c.id, parseSignal(c.labels[LABELS.stopSignal] ?? 'SIGTERM'))
  const timer = new AbortController()
  const stopped = await Promise.race([exited.then(() => true), delay(timeoutSec * 1000, false, {signal: timer.signal}).catch(() => false)])
  timer.abort() // the timeout must not keep the CLI alive once the container has exited
  if (!stopped) {
    await killTask(conn, c.id, osConstants.signals.SIGKILL, true)
    await exited
  }
  const status = await deleteTask(conn, c.id)
  await setContainerLabels(conn, c.id, {[LABELS.exitCode]: String(status ?? (await exited))})
  await detachContainer(c.labels[LABELS.stateDir])
}

/** Sends `signal` to a running container's task. */
export async function killContainer(conn: ContainerdConnection, idOrName: string, signal: number): Promise<void> {
  const c = await findContainer(conn, idOrName)
  if (!(await runningTask(conn, c))) {
    throw new LazyError('CONTAINER_NOT_RUNNING', `container ${nameOf(c)} is not running`, {hint: 'lazyctl ps -a shows its state'})
  }
  await killTask(conn, c.id, signal)
}

/** Waits for the container's task to exit; its exit code (also of one that exited before). */
export async function waitContainer(conn: ContainerdConnection, idOrName: string): Promise<number> {
  const c = await findContainer(conn, idOrName)
  const task = await getTask(conn, c.id)
  if (task && task.status !== 'STOPPED') return waitTask(conn, c.id)
  if (task) return task.exitStatus
  const recorded = c.labels[LABELS.exitCode]
  if (recorded !== undefined) return Number(recorded)
  throw new LazyError('CONTAINER_NOT_RUNNING', `container ${nameOf(c)} has no task to wait for`, {hint: 'it was created but never started'})
}
