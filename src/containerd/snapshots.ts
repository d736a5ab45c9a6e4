// Snapshots through containerd (which forwards to the named snapshotter, builtin or proxy).
import {GrpcStatus, isGrpcStatus, type CallOptions, type ContainerdConnection} from './connection.js'
import type {Mount__Output} from './generated/containerd/types/Mount.js'

export type Mount = Mount__Output

export interface SnapshotInfo {
  name: string
  parent: string
  kind: 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED'
  labels: Record<string, string>
}

export async function statSnapshot(conn: ContainerdConnection, snapshotter: string, key: string): Promise<SnapshotInfo | undefined> {
  try {
    const res = await conn.call('snapshots', 'Stat', {snapshotter, key}, `snapshot ${key}`)
    const info = res.info!
    return {name: info.name, parent: info.parent, kind: info.kind as SnapshotInfo['kind'], labels: info.labels}
  } catch (err) {
    if (isGrpcStatus(err, GrpcStatus.NOT_FOUND)) return undefined
    throw err
  }
}

export async function prepareSnapshot(conn: ContainerdConnection, snapshotter: string, key: string, parent: string, labels: Record<string, string> = {}, options: CallOptions = {}): Promise<Mount[]> {
  const res = await conn.call('snapshots', 'Prepare', {snapshotter, key, parent, labels}, `prepare snapshot ${key} on ${snapshotter}`, options)
  return res.mounts
}

export async function viewSnapshot(conn: ContainerdConnection, snapshotter: string, key: string, parent: string, options: CallOptions = {}): Promise<Mount[]> {
  const res = await conn.call('snapshots', 'View', {snapshotter, key, parent, labels: {}}, `view snapshot ${key} on ${snapshotter}`, options)
  return res.mounts
}

export async function snapshotMounts(conn: ContainerdConnection, snapshotter: string, key: string): Promise<Mount[]> {
  const res = await conn.call('snapshots', 'Mounts', {snapshotter, key}, `mounts of snapshot ${key}`)
  return res.mounts
}

export async function commitSnapshot(conn: ContainerdConnection, snapshotter: string, name: string, key: string, labels: Record<string, string> = {}, options: CallOptions = {}): Promise<void> {
  await conn.call('snapshots', 'Commit', {snapshotter, name, key, labels}, `commit snapshot ${name}`, options)
}

/** Removes a snapshot; a missing one is not an error (removal is idempotent for cleanup paths). */
export async function removeSnapshot(conn: ContainerdConnection, snapshotter: string, key: string): Promise<void> {
  try {
    await conn.call('snapshots', 'Remove', {snapshotter, key}, `remove snapshot ${key}`)
  } catch (err) {
    if (!isGrpcStatus(err, GrpcStatus.NOT_FOUND)) throw err
  }
}

export async function listSnapshots(conn: ContainerdConnection, snapshotter: string, filters: string[] = []): Promise<SnapshotInfo[]> {
  const out: SnapshotInfo[] = []
  for await (const res of conn.stream('snapshots', 'List', {snapshotter, filters}, `list snapshots of ${snapshotter}`)) {
    for (const info of res.info) out.push({name: info.name, parent: info.parent, kind: info.kind as SnapshotInfo['kind'], labels: info.labels})
  }
  return out
}
