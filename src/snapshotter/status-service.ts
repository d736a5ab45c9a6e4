// `lazyctl.v1.Status`: a second gRPC service on the snapshotter's socket that answers one JSON
// document about the daemon. JSON (not protobuf) so the shape can grow with each issue without
// a .proto to keep in step; old clients ignore fields they do not know.
import * as grpc from '@grpc/grpc-js'
import {existsSync} from 'node:fs'
import {LazyError, describeError, isLazyError} from '../cli/errors.js'
import type {SnapshotKind} from './metadata-store.js'
import type {ChunkCacheStatus, MountedLayerStatus} from './remote-layer-mounter.js'
import type {RemoteAttempt} from './snapshotter.js'
import {RESOLVE_AHEAD_METHOD_PATH, STATUS_METHOD_PATH, type ResolveAheadRequest, type ResolveAheadResponse} from './status-protocol.js'

export {RESOLVE_AHEAD_METHOD_PATH, STATUS_METHOD_PATH, type ResolveAheadRequest, type ResolveAheadResponse} from './status-protocol.js'

export interface SnapshotStatus {
  name: string
  parent: string
  kind: SnapshotKind
  id: number
  remote: boolean
  /** Remote snapshots only: whether its FUSE mount is served now. */
  mounted?: boolean
  createdAt: string
  labels: Record<string, string>
}

export interface SnapshotterStatus {
  /** lazyctl's version of the daemon. */
  version: string
  pid: number
  startedAt: string
  socket: string
  root: string
  configFile: string
  remote: {
    enabled: boolean
    /** How lazy layers are served ("estargz") or why they are not. */
    mounter: string
  }
  snapshots: SnapshotStatus[]
  /** One entry per mounted lazy layer (fetch statistics join here with issue 7). */
  layers: MountedLayerStatus[]
  /** The chunk cache shared by the lazy layers. */
  cache?: ChunkCacheStatus
  recentRemoteAttempts: RemoteAttempt[]
}

type StatusRequest = Record<string, never>

const jsonSerialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value ?? {}))
const jsonDeserialize = (buffer: Buffer): unknown => (buffer.length === 0 ? {} : JSON.parse(buffer.toString('utf8')))

/** A unary method whose messages are JSON documents. */
function jsonMethod(path: string, originalName: string): grpc.MethodDefinition<unknown, unknown> {
  return {path, requestStream: false, responseStream: false, requestSerialize: jsonSerialize, requestDeserialize: jsonDeserialize, responseSerialize: jsonSerialize, responseDeserialize: jsonDeserialize, originalName}
}

export const statusServiceDefinition: grpc.ServiceDefinition = {
  Get: jsonMethod(STATUS_METHOD_PATH, 'get'),
  ResolveAhead: jsonMethod(RESOLVE_AHEAD_METHOD_PATH, 'resolveAhead'),
}

const LAYER_DIGEST = /^sha256:[a-f0-9]{64}$/

export function statusHandlers(getStatus: () => SnapshotterStatus, resolveAhead: (request: ResolveAheadRequest) => Promise<number>): grpc.UntypedServiceImplementation {
  return {
    ResolveAhead: (call: grpc.ServerUnaryCall<Partial<ResolveAheadRequest>, ResolveAheadResponse>, callback: grpc.sendUnaryData<ResolveAheadResponse>) => {
      const {image, layers, platform} = call.request
      const layersValid = layers === undefined || (Array.isArray(layers) && layers.every((l) => typeof l === 'string' && LAYER_DIGEST.test(l)))
      if (typeof image !== 'string' || !layersValid || (platform !== undefined && typeof platform !== 'string')) {
        callback({code: grpc.status.INVALID_ARGUMENT, details: 'want {image: string, layers?: sha256 digests, platform?: os/arch[/variant]}'})
        return
      }
      const request: ResolveAheadRequest = {image}
      if (layers !== undefined) request.layers = layers
      if (platform !== undefined) request.platform = platform
      resolveAhead(request).then(
        (started) => callback(null, {started}),
        // A bad reference or platform is the caller's; a registry that cannot say is not.
        (err: unknown) => callback({code: isLazyError(err, 'USAGE') || isLazyError(err, 'INVALID_REFERENCE') ? grpc.status.INVALID_ARGUMENT : grpc.status.UNAVAILABLE, details: describeError(err)}),
      )
    },
    Get: (_call: grpc.ServerUnaryCall<StatusRequest, SnapshotterStatus>, callback: grpc.sendUnaryData<SnapshotterStatus>) => {
      try {
        callback(null, getStatus())
      } catch (err) {
        callback({code: grpc.status.INTERNAL, details: describeError(err)})
      }
    },
  }
}

const StatusClient = grpc.makeGenericClientConstructor(statusServiceDefinition, 'lazyctl.v1.Status')

export type ProbeResult =
  /** A lazyctl snapshotter answers. */
  | {state: 'lazyctl'; status: SnapshotterStatus}
  /** Something speaking gRPC answers but is not lazyctl (the reference stargz snapshotter, say). */
  | {state: 'foreign'; detail: string}
  | {state: 'absent'; detail: string}

/** Asks the socket once; never throws. */
export async function probeSnapshotter(socket: string, timeoutMs = 2000): Promise<ProbeResult> {
  const client = new StatusClient(`unix://${socket}`, grpc.credentials.createInsecure())
  try {
    const status = await new Promise<SnapshotterStatus>((resolve, reject) => {
      ;(client as unknown as {Get: Function}).Get({}, new grpc.Metadata(), {deadline: Date.now() + timeoutMs}, (err: grpc.ServiceError | null, res: SnapshotterStatus) =>
        err ? reject(err) : resolve(res),
      )
    })
    return {state: 'lazyctl', status}
  } catch (err) {
    const code = (err as grpc.ServiceError).code
    const detail = (err as grpc.ServiceError).details || describeError(err)
    if (code === grpc.status.UNAVAILABLE || code === grpc.status.DEADLINE_EXCEEDED) {
      return {state: 'absent', detail: existsSync(socket) ? detail.replace(/\. Resolution note:.*$/, '') : 'no such socket'}
    }
    return {state: 'foreign', detail}
  } finally {
    client.close()
  }
}

/**
 * Tells the daemon which layers a pull is about to prepare, so it reads their TOCs while the
 * pull writes manifest and config. Best effort: resolves to the number started, 0 on any failure.
 */
export async function hintLayersAhead(socket: string, request: ResolveAheadRequest, timeoutMs = 1000): Promise<number> {
  const client = new StatusClient(`unix://${socket}`, grpc.credentials.createInsecure())
  try {
    return await new Promise<number>((resolve) => {
      ;(client as unknown as {ResolveAhead: Function}).ResolveAhead(request, new grpc.Metadata(), {deadline: Date.now() + timeoutMs}, (err: grpc.ServiceError | null, res: ResolveAheadResponse | undefined) =>
        resolve(err ? 0 : (res?.started ?? 0)),
      )
    })
  } finally {
    client.close()
  }
}

/** The daemon's status, or a LazyError saying it does not answer. */
export async function querySnapshotterStatus(socket: string, timeoutMs = 5000): Promise<SnapshotterStatus> {
  const probe = await probeSnapshotter(socket, timeoutMs)
  if (probe.state === 'lazyctl') return probe.status
  if (probe.state === 'foreign') {
    throw new LazyError('SNAPSHOTTER', `the snapshotter at ${socket} is not lazyctl's (${probe.detail})`, {
      hint: 'another snapshotter (stargz-snapshotter?) serves this socket; stop it or point --snapshotter-socket elsewhere',
    })
  }
  throw new LazyError('SNAPSHOTTER_UNREACHABLE', `no snapshotter answers at ${socket}: ${probe.detail}`, {
    hint: 'start it with `lazyctl snapshotter serve` (or let `lazyctl run` start it)',
  })
}
