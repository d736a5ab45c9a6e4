// containerd's Snapshots gRPC service over a Snapshotter: request decoding, status codes as
// containerd's errdefs reads them, List as a stream in batches of 100 (as the Go server sends).
import * as grpc from '@grpc/grpc-js'
import {describeError} from '../cli/errors.js'
import type {Logger} from './log.js'
import type {SnapshotInfo} from './metadata-store.js'
import {SnapshotError, type SnapshotErrorKind} from './snapshot-error.js'
import type {Mount, Snapshotter} from './snapshotter.js'
import type {ProtoInfo, ProtoMount, Timestamp} from './snapshots-proto.js'

const LIST_BATCH = 100

const STATUS_BY_KIND: Record<SnapshotErrorKind, grpc.status> = {
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  UNKNOWN: grpc.status.UNKNOWN,
}

type Unary<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void

interface KeyRequest {
  key: string
}
interface CreateRequest {
  key: string
  parent: string
  labels: Record<string, string>
}
interface CommitRequest {
  name: string
  key: string
  labels: Record<string, string>
}
interface UpdateRequest {
  info: ProtoInfo | null
  update_mask: {paths: string[]} | null
}
interface ListRequest {
  filters: string[]
}

export function snapshotsHandlers(snapshotter: Snapshotter, log: Logger): grpc.UntypedServiceImplementation {
  const unary = <Req, Res>(method: string, fn: (req: Req) => Promise<Res> | Res): Unary<Req, Res> => {
    return (call, callback) => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (err: unknown) => callback(toServiceError(method, err, log, call.request)),
        )
    }
  }
  return {
    Prepare: unary('Prepare', async (req: CreateRequest) => ({mounts: toProtoMounts(await snapshotter.prepare(req.key, req.parent, req.labels ?? {}))})),
    View: unary('View', async (req: CreateRequest) => ({mounts: toProtoMounts(await snapshotter.view(req.key, req.parent, req.labels ?? {}))})),
    Mounts: unary('Mounts', async (req: KeyRequest) => ({mounts: toProtoMounts(await snapshotter.mounts(req.key))})),
    Commit: unary('Commit', async (req: CommitRequest) => {
      await snapshotter.commit(req.name, req.key, req.labels ?? {})
      return {}
    }),
    Remove: unary('Remove', async (req: KeyRequest) => {
      await snapshotter.remove(req.key)
      return {}
    }),
    Stat: unary('Stat', (req: KeyRequest) => ({info: toProtoInfo(snapshotter.stat(req.key))})),
    Update: unary('Update', (req: UpdateRequest) => {
      if (!req.info?.name) throw new SnapshotError('INVALID_ARGUMENT', 'update needs info.name')
      return {info: toProtoInfo(snapshotter.update({name: req.info.name, labels: req.info.labels ?? {}}, req.update_mask?.paths ?? []))}
    }),
    Usage: unary('Usage', async (req: KeyRequest) => snapshotter.usage(req.key)),
    Cleanup: unary('Cleanup', async () => {
      await snapshotter.cleanup()
      return {}
    }),
    List: (call: grpc.ServerWritableStream<ListRequest, {info: ProtoInfo[]}>) => {
      try {
        const infos = snapshotter.walk(call.request.filters ?? [])
        for (let i = 0; i < infos.length; i += LIST_BATCH) call.write({info: infos.slice(i, i + LIST_BATCH).map(toProtoInfo)})
        call.end()
      } catch (err) {
        call.emit('error', toServiceError('List', err, log, call.request))
      }
    },
  }
}

function toServiceError(method: string, err: unknown, log: Logger, request: unknown): Partial<grpc.StatusObject> {
  if (err instanceof SnapshotError) {
    // AlreadyExists from Prepare is the normal remote-snapshot answer, not worth a line.
    if (err.kind !== 'ALREADY_EXISTS' && err.kind !== 'NOT_FOUND') log.debug('snapshot request refused', {method, code: err.kind, error: err.message})
    return {code: STATUS_BY_KIND[err.kind], details: err.message}
  }
  log.error('snapshot request failed', {method, error: describeError(err), key: (request as {key?: string})?.key})
  return {code: grpc.status.UNKNOWN, details: describeError(err)}
}

function toProtoMounts(mounts: Mount[]): ProtoMount[] {
  return mounts.map((m) => ({type: m.type, source: m.source, target: '', options: m.options}))
}

export function toProtoInfo(info: SnapshotInfo): ProtoInfo {
  return {
    name: info.name,
    parent: info.parent,
    kind: info.kind,
    created_at: toTimestamp(info.createdAtUs),
    updated_at: toTimestamp(info.updatedAtUs),
    labels: info.labels,
  }
}

function toTimestamp(us: number): Timestamp {
  return {seconds: Math.floor(us / 1e6), nanos: (us % 1e6) * 1000}
}
