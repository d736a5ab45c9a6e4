// Container records: id, image name, runtime, OCI spec (JSON in an Any), snapshotter + rootfs key, labels.
import {LazyError} from '../cli/errors.js'
import {GrpcStatus, isGrpcStatus, type CallOptions, type ContainerdConnection} from './connection.js'
import type {Container__Output} from './generated/containerd/services/containers/v1/Container.js'
import {timestampToDate} from './images.js'

export const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec'
export const RUNC_V2 = 'io.containerd.runc.v2'

export interface ContainerRecord {
  id: string
  image: string
  labels: Record<string, string>
  snapshotter: string
  snapshotKey: string
  runtime: string
  spec: unknown
  createdAt?: Date
}

export interface NewContainer {
  id: string
  image: string
  labels: Record<string, string>
  snapshotter: string
  snapshotKey: string
  spec: object
  runtime?: string
}

function toRecord(c: Container__Output): ContainerRecord {
  let spec: unknown
  try {
    spec = c.spec ? JSON.parse(c.spec.value.toString('utf8')) : undefined
  } catch {
    spec = undefined
  }
  const out: ContainerRecord = {
    id: c.id,
    image: c.image,
    labels: c.labels,
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshot_key,
    runtime: c.runtime?.name ?? '',
    spec,
  }
  if (c.created_at) out.createdAt = timestampToDate(c.created_at)
  return out
}

export async function createContainer(conn: ContainerdConnection, c: NewContainer, options: CallOptions = {}): Promise<ContainerRecord> {
  const res = await conn.call(
    'containers',
    'Create',
    {
      container: {
        id: c.id,
        image: c.image,
        labels: c.labels,
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshotKey,
        runtime: {name: c.runtime ?? RUNC_V2},
        spec: {type_url: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(c.spec))},
      },
    },
    `create container ${c.id}`,
    options,
  )
  return toRecord(res.container!)
}

export async function getContainer(conn: ContainerdConnection, id: string): Promise<ContainerRecord | undefined> {
  try {
    return toRecord((await conn.call('containers', 'Get', {id}, `container ${id}`)).container!)
  } catch (err) {
    if (isGrpcStatus(err, GrpcStatus.NOT_FOUND)) return undefined
    throw err
  }
}

export async function listContainers(conn: ContainerdConnection, filters: string[] = []): Promise<ContainerRecord[]> {
  const res = await conn.call('containers', 'List', {filters}, 'list containers')
  return res.containers.map(toRecord)
}

export async function setContainerLabels(conn: ContainerdConnection, id: string, labels: Record<string, string>): Promise<void> {
  await conn.call('containers', 'Update', {container: {id, labels}, update_mask: {paths: Object.keys(labels).map((k) => `labels.${k}`)}}, `update container ${id}`)
}

export async function deleteContainer(conn: ContainerdConnection, id: string): Promise<void> {
  try {
    await conn.call('containers', 'Delete', {id}, `delete container ${id}`)
  } catch (err) {
    if (isGrpcStatus(err, GrpcStatus.NOT_FOUND)) return
    if (isGrpcStatus(err, GrpcStatus.FAILED_PRECONDITION)) {
      throw new LazyError('CONTAINER_RUNNING', `container ${id} still has a task`, {hint: 'stop it first, or use rm -f', cause: err})
    }
    throw err
  }
}
