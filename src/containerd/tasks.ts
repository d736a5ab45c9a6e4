// Tasks: the running process of a container, driven through containerd's runc v2 shim.
import {GrpcStatus, isGrpcStatus, type ContainerdConnection} from './connection.js'
import type {Mount} from './snapshots.js'

export type TaskStatus = 'UNKNOWN' | 'CREATED' | 'RUNNING' | 'STOPPED' | 'PAUSED' | 'PAUSING'

export interface TaskState {
  id: string
  pid: number
  status: TaskStatus
  exitStatus: number
  exitedAt?: Date
}

export interface TaskIO {
  /** FIFO paths or URIs (`file:///…`, `binary:///…`); '' for a stream not wanted. */
  stdin: string
  stdout: string
  stderr: string
  terminal: boolean
}

export async function createTask(conn: ContainerdConnection, containerId: string, rootfs: Mount[], io: TaskIO): Promise<number> {
  const res = await conn.call(
    'tasks',
    'Create',
    {container_id: containerId, rootfs, stdin: io.stdin, stdout: io.stdout, stderr: io.stderr, terminal: io.terminal},
    `create task ${containerId}`,
  )
  return res.pid
}

export async function startTask(conn: ContainerdConnection, containerId: string): Promise<number> {
  return (await conn.call('tasks', 'Start', {container_id: containerId, exec_id: ''}, `start task ${containerId}`)).pid
}

/** Resolves with the exit status when the task exits; issue it before Start so a fast exit is not missed. */
export async function waitTask(conn: ContainerdConnection, containerId: string): Promise<number> {
  return (await conn.call('tasks', 'Wait', {container_id: containerId, exec_id: ''}, `wait task ${containerId}`)).exit_status
}

export async function getTask(conn: ContainerdConnection, containerId: string): Promise<TaskState | undefined> {
  try {
    const p = (await conn.call('tasks', 'Get', {container_id: containerId, exec_id: ''}, `task ${containerId}`)).process!
    const out: TaskState = {id: p.id, pid: p.pid, status: p.status as TaskStatus, exitStatus: p.exit_status}
    if (p.exited_at && Number(p.exited_at.seconds) > 0) out.exitedAt = new Date(Number(p.exited_at.seconds) * 1000)
    return out
  } catch (err) {
    if (isGrpcStatus(err, GrpcStatus.NOT_FOUND)) return undefined
    throw err
  }
}

/** Sends `signal`; a process that already finished is not an error. */
export async function killTask(conn: ContainerdConnection, containerId: string, signal: number, all = false): Promise<void> {
  try {
    await conn.call('tasks', 'Kill', {container_id: containerId, exec_id: '', signal, all}, `kill task ${containerId}`)
  } catch (err) {
    if (!isGrpcStatus(err, GrpcStatus.NOT_FOUND)) throw err
  }
}

/** Deletes the task (unmounting its rootfs) and returns its exit status; undefined when there was none. */
export async function deleteTask(conn: ContainerdConnection, containerId: string): Promise<number | undefined> {
  try {
    return (await conn.call('tasks', 'Delete', {container_id: containerId}, `delete task ${containerId}`)).exit_status
  } catch (err) {
    if (isGrpcStatus(err, GrpcStatus.NOT_FOUND)) return undefined
    throw err
  }
}

/** Delivers EOF on the task's stdin (the shim holds its own writer open until told). */
export async function closeTaskStdin(conn: ContainerdConnection, containerId: string): Promise<void> {
  await conn.call('tasks', 'CloseIO', {container_id: containerId, exec_id: '', stdin: true}, `close stdin of ${containerId}`)
}

export async function resizeTaskPty(conn: ContainerdConnection, containerId: string, width: number, height: number): Promise<void> {
  await conn.call('tasks', 'ResizePty', {container_id: containerId, exec_id: '', width, height}, `resize tty of ${containerId}`)
}
