// containerd's API as one protobuf JSON descriptor (proto/containerd-api.json), loaded with
// @grpc/proto-loader's fromJSON. Parsing the dozen .proto files (and the well-known types they
// import) cost ~80 ms of CPU on every start of `lazyctl run` and of the snapshotter; the descriptor
// is made from proto/ by scripts/gen-proto-types, and a test keeps it equal to what proto/ says.
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {PROTO_DIR} from '../paths.js'

export const API_DESCRIPTOR_FILE = join(PROTO_DIR, 'containerd-api.json')

/**
 * How 64-bit integers reach JavaScript: the client keeps them exact as strings (sizes, offsets);
 * the snapshotter's server reads timestamps and usage as numbers.
 */
export type LongsAs = 'string' | 'number'

const packages = new Map<LongsAs, grpc.GrpcObject>()
let descriptorJson: Parameters<typeof protoLoader.fromJSON>[0] | undefined

/** The package tree of every containerd service, loaded once per process and `longs` mode. */
export function containerdApi(longs: LongsAs): grpc.GrpcObject {
  let pkg = packages.get(longs)
  if (!pkg) {
    descriptorJson ??= JSON.parse(readFileSync(API_DESCRIPTOR_FILE, 'utf8')) as Parameters<typeof protoLoader.fromJSON>[0]
    const definition = protoLoader.fromJSON(descriptorJson, {keepCase: true, longs: longs === 'string' ? String : Number, enums: String, defaults: true, oneofs: true})
    pkg = grpc.loadPackageDefinition(definition)
    packages.set(longs, pkg)
  }
  return pkg
}

/** The client constructor of service `fullName` (e.g. `containerd.services.tasks.v1.Tasks`). */
export function containerdService(longs: LongsAs, fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = containerdApi(longs)
  for (const part of fullName.split('.')) node = (node as Record<string, unknown> | undefined)?.[part]
  if (typeof node !== 'function') throw new Error(`service ${fullName} is not in ${API_DESCRIPTOR_FILE}`)
  return node as grpc.ServiceClientConstructor
}
