// containerd's API as one protobuf JSON descriptor (proto/containerd-api.json, made from proto/ by
// scripts/gen-proto-types; a test keeps it equal to what proto/ says). gRPC service definitions
// are built straight from it with lazyctl's own codec (./proto-codec.ts): parsing the .proto files
// cost ~80 ms of CPU at every start of `lazyctl run` and of the snapshotter, and proto-loader's
// reflection tree, descriptors and generated code another ~40 ms.
import type * as grpc from '@grpc/grpc-js'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {PROTO_DIR} from '../paths.js'
import {type JsonDescriptor, type LongsAs, ProtoSchema} from './proto-codec.js'

export type {LongsAs} from './proto-codec.js'

export const API_DESCRIPTOR_FILE = join(PROTO_DIR, 'containerd-api.json')
/** Kubernetes' CRI (runtime.v1), for the snapshotter's image-service proxy and the test rig's kubelet. */
export const CRI_DESCRIPTOR_FILE = join(PROTO_DIR, 'cri-api.json')

const descriptors = new Map<string, JsonDescriptor>()
const schemas = new Map<string, ProtoSchema>()

/**
 * The codecs of the messages of one descriptor file, once per process and `longs` mode: the
 * client keeps 64-bit integers exact as strings (sizes, offsets); the snapshotter's server reads
 * them as numbers.
 */
export function apiSchema(file: string, longs: LongsAs): ProtoSchema {
  const key = `${longs} ${file}`
  let schema = schemas.get(key)
  if (!schema) {
    let descriptor = descriptors.get(file)
    if (!descriptor) {
      descriptor = JSON.parse(readFileSync(file, 'utf8')) as JsonDescriptor
      descriptors.set(file, descriptor)
    }
    schema = new ProtoSchema(descriptor, longs)
    schemas.set(key, schema)
  }
  return schema
}

/** containerd's API (proto/containerd-api.json). */
export function containerdSchema(longs: LongsAs): ProtoSchema {
  return apiSchema(API_DESCRIPTOR_FILE, longs)
}

/** The codecs of a method's request and response messages. */
function methodMessages(schema: ProtoSchema, fullName: string, method: {requestType: string; responseType: string}) {
  return {request: schema.message(schema.resolve(method.requestType, fullName)), response: schema.message(schema.resolve(method.responseType, fullName))}
}

/** grpc-js's definition of service `fullName`, method names as in the .proto plus camelCase aliases. */
export function serviceDefinition(schema: ProtoSchema, fullName: string): grpc.ServiceDefinition {
  const methods = schema.node(fullName)?.methods
  if (!methods) throw new Error(`service ${fullName} is not in the API descriptor`)
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {}
  for (const [name, method] of Object.entries(methods)) {
    const {request, response} = methodMessages(schema, fullName, method)
    definition[name] = {
      path: `/${fullName}/${name}`,
      requestStream: Boolean(method.requestStream),
      responseStream: Boolean(method.responseStream),
      requestSerialize: (value: unknown) => request.encode(value),
      requestDeserialize: (bytes: Buffer) => request.decode(bytes),
      responseSerialize: (value: unknown) => response.encode(value),
      responseDeserialize: (bytes: Buffer) => response.decode(bytes),
      originalName: name.charAt(0).toLowerCase() + name.slice(1),
    }
  }
  return definition
}

export interface MethodCodec {
  /** `/package.Service/Method`, the HTTP/2 path of a call. */
  path: string
  encode(request: unknown): Buffer
  decode(response: Buffer): unknown
}

const codecs = new Map<string, MethodCodec>()

/** How a call of `method` (as named in the .proto) of service `fullName` is written and read; made once per process. */
export function methodCodec(longs: LongsAs, fullName: string, method: string): MethodCodec {
  const key = `${longs} ${fullName} ${method}`
  let codec = codecs.get(key)
  if (!codec) {
    // Kubernetes' CRI (runtime.v1) has its own descriptor; everything else is containerd's.
    const file = fullName.startsWith('runtime.') ? CRI_DESCRIPTOR_FILE : API_DESCRIPTOR_FILE
    const schema = apiSchema(file, longs)
    const definition = schema.node(fullName)?.methods?.[method]
    if (!definition) throw new Error(`method ${method} of ${fullName} is not in ${file}`)
    const {request, response} = methodMessages(schema, fullName, definition)
    codec = {path: `/${fullName}/${method}`, encode: (value) => request.encode(value), decode: (bytes) => response.decode(bytes)}
    codecs.set(key, codec)
  }
  return codec
}
