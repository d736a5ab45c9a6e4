// A gRPC connection to containerd over its unix socket, with the namespace header on every call.
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import {existsSync} from 'node:fs'
import {PROTO_DIR} from '../paths.js'
import {LazyError, describeError} from '../cli/errors.js'

/** containerd's default message limit is 16 MiB each way; grpc-js defaults to 4 MiB for receive. */
const MAX_MESSAGE_BYTES = 16 << 20

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
}

export interface ConnectionOptions {
  address: string
  namespace: string
}

type ServiceClientConstructor = grpc.ServiceClientConstructor

const packageCache = new Map<string, grpc.GrpcObject>()

/** Loads one .proto file (relative to proto/) and returns its package tree. */
export function loadProto(file: string): grpc.GrpcObject {
  let pkg = packageCache.get(file)
  if (!pkg) {
    pkg = grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS))
    packageCache.set(file, pkg)
  }
  return pkg
}

function lookupService(pkg: grpc.GrpcObject, fullName: string): ServiceClientConstructor {
  let node: unknown = pkg
  for (const part of fullName.split('.')) node = (node as Record<string, unknown>)?.[part]
  if (typeof node !== 'function') throw new Error(`service ${fullName} not found in proto definitions`)
  return node as ServiceClientConstructor
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

  /** A client for `fullName` (e.g. `containerd.services.version.v1.Version`) defined in `protoFile`. */
  service<T extends grpc.Client>(protoFile: string, fullName: string): T {
    let client = this.clients.get(fullName)
    if (!client) {
      const Ctor = lookupService(loadProto(protoFile), fullName)
      const target = this.address.startsWith('unix:') ? this.address : `unix://${this.address}`
      client = new Ctor(target, grpc.credentials.createInsecure(), this.channelOptions)
      this.clients.set(fullName, client)
    }
    return client as T
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
    return new Promise((resolve, reject) => {
      fn.call(client, request, this.metadata(options.lease), callOptions, (err: grpc.ServiceError | null, res: Res) => {
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
        return new LazyError('CONTAINERD_UNREACHABLE', `cannot reach containerd at ${this.address}: ${unreachableReason(this.address, detail)}`, {
          hint: 'is containerd running? Check the socket with -a/--address or CONTAINERD_ADDRESS',
          cause: err,
        })
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

function unreachableReason(address: string, detail: string): string {
  const path = address.replace(/^unix:\/\//, '')
  if (!existsSync(path)) return 'no such socket'
  return detail
}
