// A gRPC connection to containerd over its unix socket, with the namespace header on every call.
// Calls go through lazyctl's own transport (./grpc-transport.ts) and codec (./api-descriptor.ts);
// grpc-js's types only describe the generated clients, so the methods are typed end to end.
import type * as grpc from '@grpc/grpc-js'
import {existsSync} from 'node:fs'
import {LazyError, describeError} from '../cli/errors.js'
import {trace, TRACING} from '../cli/trace.js'
import {methodCodec, type MethodCodec} from './api-descriptor.js'
import {GrpcStatus, GrpcUnixTransport, type CallHeaders, type GrpcStatusCode} from './grpc-transport.js'
import type {ContainersClient} from './generated/containerd/services/containers/v1/Containers.js'
import type {ContentClient} from './generated/containerd/services/content/v1/Content.js'
import type {DiffClient} from './generated/containerd/services/diff/v1/Diff.js'
import type {EventsClient} from './generated/containerd/services/events/v1/Events.js'
import type {ImagesClient} from './generated/containerd/services/images/v1/Images.js'
import type {IntrospectionClient} from './generated/containerd/services/introspection/v1/Introspection.js'
import type {LeasesClient} from './generated/containerd/services/leases/v1/Leases.js'
import type {NamespacesClient} from './generated/containerd/services/namespaces/v1/Namespaces.js'
import type {SnapshotsClient} from './generated/containerd/services/snapshots/v1/Snapshots.js'
import type {TasksClient} from './generated/containerd/services/tasks/v1/Tasks.js'

export interface ConnectionOptions {
  address: string
  namespace: string
}

/** The full name of each containerd service lazyctl calls. */
const SERVICES = {
  containers: 'containerd.services.containers.v1.Containers',
  content: 'containerd.services.content.v1.Content',
  diff: 'containerd.services.diff.v1.Diff',
  events: 'containerd.services.events.v1.Events',
  images: 'containerd.services.images.v1.Images',
  introspection: 'containerd.services.introspection.v1.Introspection',
  leases: 'containerd.services.leases.v1.Leases',
  namespaces: 'containerd.services.namespaces.v1.Namespaces',
  snapshots: 'containerd.services.snapshots.v1.Snapshots',
  tasks: 'containerd.services.tasks.v1.Tasks',
} as const

interface ServiceClients {
  containers: ContainersClient
  content: ContentClient
  diff: DiffClient
  events: EventsClient
  images: ImagesClient
  introspection: IntrospectionClient
  leases: LeasesClient
  namespaces: NamespacesClient
  snapshots: SnapshotsClient
  tasks: TasksClient
}

/**
 * The request and response types of a unary method, read from its last overload in the generated
 * client (`method(argument, callback)`), so `call()` is typed end to end without `any`.
 */
type UnaryRequest<M> = M extends (argument: infer Req, callback: grpc.requestCallback<infer _Res>) => grpc.ClientUnaryCall ? Req : never
type UnaryResponse<M> = M extends (argument: infer _Req, callback: grpc.requestCallback<infer Res>) => grpc.ClientUnaryCall ? Res : never
type StreamRequest<M> = M extends (argument: infer Req, options?: grpc.CallOptions) => grpc.ClientReadableStream<infer _Res> ? Req : never
type StreamResponse<M> = M extends (argument: infer _Req, options?: grpc.CallOptions) => grpc.ClientReadableStream<infer Res> ? Res : never
type DuplexRequest<M> = M extends (metadata: grpc.Metadata, options?: grpc.CallOptions) => grpc.ClientDuplexStream<infer Req, infer _Res> ? Req : never
type DuplexResponse<M> = M extends (metadata: grpc.Metadata, options?: grpc.CallOptions) => grpc.ClientDuplexStream<infer _Req, infer Res> ? Res : never

/** A lockstep bidirectional call (content writes): send a request, then take its response. */
export interface DuplexCall<Req, Res> {
  send(request: Req): void
  responses: AsyncIterator<Res>
  end(): void
  cancel(): void
}

/** A gRPC failure as containerd reports it (our transport's error, or grpc-js's ServiceError). */
export interface GrpcFailure extends Error {
  code: number
  details?: string
}

export interface CallOptions {
  /** Adds every object the call creates to this lease (`containerd-lease` header). */
  lease?: string
  timeoutMs?: number
}

export class ContainerdConnection {
  readonly address: string
  readonly namespace: string
  private transport: GrpcUnixTransport | undefined

  constructor(options: ConnectionOptions) {
    this.address = options.address
    this.namespace = options.namespace
  }

  private connection(): GrpcUnixTransport {
    this.transport ??= new GrpcUnixTransport(this.address.replace(/^unix:\/\//, ''))
    return this.transport
  }

  /**
   * Calls unary `method` of service `name`, typed from the generated client; gRPC failures become
   * LazyErrors whose message starts with `what` (the raw status stays reachable via grpcCode()).
   */
  call<K extends keyof ServiceClients, M extends keyof ServiceClients[K] & string>(
    name: K,
    method: M,
    request: UnaryRequest<ServiceClients[K][M]>,
    what: string,
    options: CallOptions = {},
  ): Promise<UnaryResponse<ServiceClients[K][M]>> {
    return this.unary(SERVICES[name], method, request, what, options)
  }

  /** Calls unary `method` of the service named in full (one not in SERVICES, e.g. Version). */
  async unary<Req, Res>(service: string, method: string, request: Req, what: string, options: CallOptions = {}): Promise<Res> {
    const codec = methodCodec('string', service, method)
    const started = TRACING ? performance.now() : 0
    try {
      const response = await this.connection().unary(codec.path, codec.encode(request), this.metadata(options.lease), options.timeoutMs)
      return codec.decode(response) as Res
    } catch (err) {
      throw isGrpcFailure(err) ? this.mapError(err, what) : err
    } finally {
      if (TRACING) trace(`${method} ${what}`, started)
    }
  }

  /** Calls server-streaming `method` and yields each message; errors are mapped like call()'s. */
  async *stream<K extends keyof ServiceClients, M extends keyof ServiceClients[K] & string>(
    name: K,
    method: M,
    request: StreamRequest<ServiceClients[K][M]>,
    what: string,
    options: CallOptions = {},
  ): AsyncGenerator<StreamResponse<ServiceClients[K][M]>> {
    const codec = methodCodec('string', SERVICES[name], method)
    const call = this.connection().start(codec.path, this.metadata(options.lease), options.timeoutMs)
    call.write(codec.encode(request))
    call.end()
    try {
      for await (const message of call.messages()) yield codec.decode(message) as StreamResponse<ServiceClients[K][M]>
    } catch (err) {
      throw isGrpcFailure(err) ? this.mapError(err, what) : err
    } finally {
      call.cancel()
    }
  }

  /** Opens bidirectional `method`; its failures are raw statuses (see grpcCode()), for the caller to map. */
  duplex<K extends keyof ServiceClients, M extends keyof ServiceClients[K] & string>(
    name: K,
    method: M,
    options: CallOptions = {},
  ): DuplexCall<DuplexRequest<ServiceClients[K][M]>, DuplexResponse<ServiceClients[K][M]>> {
    const codec: MethodCodec = methodCodec('string', SERVICES[name], method)
    const call = this.connection().start(codec.path, this.metadata(options.lease), options.timeoutMs)
    const messages = call.messages()
    return {
      send: (request) => call.write(codec.encode(request)),
      responses: {
        next: async () => {
          const next = await messages.next()
          return next.done ? {done: true, value: undefined} : {done: false, value: codec.decode(next.value) as DuplexResponse<ServiceClients[K][M]>}
        },
      },
      end: () => call.end(),
      cancel: () => call.cancel(),
    }
  }

  /** Headers of a namespaced call, optionally bound to a lease. */
  metadata(lease?: string): CallHeaders {
    const headers: CallHeaders = {'containerd-namespace': this.namespace}
    if (lease) headers['containerd-lease'] = lease
    return headers
  }

  /** Translates a gRPC status into the LazyError a user can act on. */
  mapError(err: GrpcFailure, what: string): LazyError {
    const detail = err.details || describeError(err)
    switch (err.code) {
      case GrpcStatus.UNAVAILABLE:
      case GrpcStatus.DEADLINE_EXCEEDED:
        // containerd answered, but could not dial a proxy plugin (a snapshotter) behind it.
        if (/dial unix/.test(detail)) {
          return new LazyError('SNAPSHOTTER_UNREACHABLE', `${what}: containerd cannot reach the snapshotter: ${detail}`, {
            hint: 'is the snapshotter running? (lazyctl snapshotter serve, or lazyctl node setup --local)',
            cause: err,
          })
        }
        return new LazyError('CONTAINERD_UNREACHABLE', `cannot reach containerd at ${this.address}: ${unreachableReason(this.address, detail)}`, {
          hint: 'is containerd running? Check the socket with -a/--address or CONTAINERD_ADDRESS',
          cause: err,
        })
      case GrpcStatus.INVALID_ARGUMENT:
        if (/snapshotter not loaded/.test(detail)) {
          return new LazyError('SNAPSHOTTER_NOT_CONFIGURED', `${what}: containerd has no such snapshotter (${detail})`, {
            hint: 'choose another --snapshotter, or configure the proxy plugin: lazyctl node setup --local',
            cause: err,
          })
        }
        return new LazyError('CONTAINERD', `${what}: ${detail}`, {cause: err})
      case GrpcStatus.NOT_FOUND:
        return new LazyError('NOT_FOUND', `${what}: ${detail}`, {cause: err})
      case GrpcStatus.ALREADY_EXISTS:
        return new LazyError('ALREADY_EXISTS', `${what}: ${detail}`, {cause: err})
      case GrpcStatus.PERMISSION_DENIED:
        return new LazyError('PERMISSION', `${what}: ${detail}`, {cause: err})
      default:
        return new LazyError('CONTAINERD', `${what}: ${detail}`, {cause: err})
    }
  }

  close(): void {
    this.transport?.close()
    this.transport = undefined
  }
}

/** A gRPC status error: this transport's, or a grpc-js ServiceError (same shape: code, details, metadata). */
function isGrpcFailure(err: unknown): err is GrpcFailure {
  return err instanceof Error && typeof (err as Partial<GrpcFailure>).code === 'number' && 'metadata' in err
}

/** The gRPC status code behind a mapped error (or a raw status error), if there is one. */
export function grpcCode(err: unknown): GrpcStatusCode | undefined {
  for (let e: unknown = err; e; e = (e as {cause?: unknown}).cause) {
    if (isGrpcFailure(e)) return e.code as GrpcStatusCode
  }
  return undefined
}

export function isGrpcStatus(err: unknown, code: GrpcStatusCode): boolean {
  return grpcCode(err) === code
}

export {GrpcStatus} from './grpc-transport.js'

function unreachableReason(address: string, detail: string): string {
  const path = address.replace(/^unix:\/\//, '')
  if (!existsSync(path)) return 'no such socket'
  return detail
}
