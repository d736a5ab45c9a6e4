// A gRPC connection to containerd over its unix socket, with the namespace header on every call.
import * as grpc from '@grpc/grpc-js'
import {existsSync} from 'node:fs'
import {LazyError, describeError} from '../cli/errors.js'
import {trace, TRACING} from '../cli/trace.js'
import {containerdService} from './api-descriptor.js'
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

/** containerd's default message limit is 16 MiB each way; grpc-js defaults to 4 MiB for receive. */
const MAX_MESSAGE_BYTES = 16 << 20


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

export interface CallOptions {
  /** Adds every object the call creates to this lease (`containerd-lease` header). */
  lease?: string
  timeoutMs?: number
}

export class ContainerdConnection {
  readonly address: string
  readonly namespace: string
  private readonly clients = new Map<string, grpc.Client>()
  private readonly channelOptions: grpc.ChannelOptions = {
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  }

  constructor(options: ConnectionOptions) {
    this.address = options.address
    this.namespace = options.namespace
  }

  /** A client for `fullName` (e.g. `containerd.services.version.v1.Version`), created once per connection. */
  service<T extends grpc.Client>(fullName: string): T {
    let client = this.clients.get(fullName)
    if (!client) {
      const Ctor = containerdService('string', fullName)
      client = new Ctor(this.target(), grpc.credentials.createInsecure(), this.channelOptions)
      this.clients.set(fullName, client)
    }
    return client as T
  }

  /** The typed client of one containerd service. */
  client<K extends keyof ServiceClients>(name: K): ServiceClients[K] {
    return this.service<grpc.Client>(SERVICES[name]) as unknown as ServiceClients[K]
  }

  private target(): string {
    return this.address.startsWith('unix:') ? this.address : `unix://${this.address}`
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
    return this.unary(this.client(name), method, request, what, options)
  }

  /** Calls server-streaming `method` and yields each message; errors are mapped like call()'s. */
  async *stream<K extends keyof ServiceClients, M extends keyof ServiceClients[K] & string>(
    name: K,
    method: M,
    request: StreamRequest<ServiceClients[K][M]>,
    what: string,
    options: CallOptions = {},
  ): AsyncGenerator<StreamResponse<ServiceClients[K][M]>> {
    const client = this.client(name) as unknown as Record<string, Function>
    const callOptions: grpc.CallOptions = {}
    if (options.timeoutMs) callOptions.deadline = Date.now() + options.timeoutMs
    const call = client[method]!.call(client, request, this.metadata(options.lease), callOptions) as grpc.ClientReadableStream<StreamResponse<ServiceClients[K][M]>>
    try {
      for await (const message of call) yield message
    } catch (err) {
      throw isServiceError(err) ? this.mapError(err, what) : err
    } finally {
      call.cancel()
    }
  }

  /** Metadata for a namespaced call, optionally bound to a lease. */
  metadata(lease?: string): grpc.Metadata {
    const md = new grpc.Metadata()
    md.set('containerd-namespace', this.namespace)
    if (lease) md.set('containerd-lease', lease)
    return md
  }

  /**
   * Calls a unary method and maps gRPC failures to LazyErrors. `what` names the operation for the message.
   */
  unary<Req, Res>(client: grpc.Client, method: string, request: Req, what: string, options: {lease?: string; timeoutMs?: number} = {}): Promise<Res> {
    const fn = (client as unknown as Record<string, Function>)[method]
    if (typeof fn !== 'function') throw new Error(`gRPC method ${method} not found`)
    const callOptions: grpc.CallOptions = {}
    if (options.timeoutMs) callOptions.deadline = Date.now() + options.timeoutMs
    const started = TRACING ? performance.now() : 0
    return new Promise((resolve, reject) => {
      fn.call(client, request, this.metadata(options.lease), callOptions, (err: grpc.ServiceError | null, res: Res) => {
        if (TRACING) trace(`${method} ${what}`, started)
        if (err) reject(this.mapError(err, what))
        else resolve(res)
      })
    })
  }

  /** Translates a gRPC status into the LazyError a user can act on. */
  mapError(err: grpc.ServiceError, what: string): LazyError {
    const detail = err.details || describeError(err)
    switch (err.code) {
      case grpc.status.UNAVAILABLE:
      case grpc.status.DEADLINE_EXCEEDED:
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
      case grpc.status.INVALID_ARGUMENT:
        if (/snapshotter not loaded/.test(detail)) {
          return new LazyError('SNAPSHOTTER_NOT_CONFIGURED', `${what}: containerd has no such snapshotter (${detail})`, {
            hint: 'choose another --snapshotter, or configure the proxy plugin: lazyctl node setup --local',
            cause: err,
          })
        }
        return new LazyError('CONTAINERD', `${what}: ${detail}`, {cause: err})
      case grpc.status.NOT_FOUND:
        return new LazyError('NOT_FOUND', `${what}: ${detail}`, {cause: err})
      case grpc.status.ALREADY_EXISTS:
        return new LazyError('ALREADY_EXISTS', `${what}: ${detail}`, {cause: err})
      case grpc.status.PERMISSION_DENIED:
        return new LazyError('PERMISSION', `${what}: ${detail}`, {cause: err})
      default:
        return new LazyError('CONTAINERD', `${what}: ${detail}`, {cause: err})
    }
  }

  close(): void {
    for (const client of this.clients.values()) client.close()
    this.clients.clear()
  }
}

function isServiceError(err: unknown): err is grpc.ServiceError {
  return err instanceof Error && typeof (err as Partial<grpc.ServiceError>).code === 'number' && 'metadata' in err
}

/** The gRPC status code behind a mapped error (or a raw ServiceError), if there is one. */
export function grpcCode(err: unknown): grpc.status | undefined {
  for (let e: unknown = err; e; e = (e as {cause?: unknown}).cause) {
    if (isServiceError(e)) return e.code
  }
  return undefined
}

export function isGrpcStatus(err: unknown, code: grpc.status): boolean {
  return grpcCode(err) === code
}

export {status as GrpcStatus} from '@grpc/grpc-js'

function unreachableReason(address: string, detail: string): string {
  const path = address.replace(/^unix:\/\//, '')
  if (!existsSync(path)) return 'no such socket'
  return detail
}
