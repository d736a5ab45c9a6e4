// The containerd Snapshots service definition, loaded from proto/ with the options the server
// needs (snake_case names, enums as strings).
import * as grpc from '@grpc/grpc-js'
import * as protoLoader from '@grpc/proto-loader'
import {PROTO_DIR} from '../paths.js'

export const SNAPSHOTS_PROTO = 'containerd/services/snapshots/v1/snapshots.proto'

let cached: grpc.ServiceClientConstructor | undefined

/** The generated client constructor; `.service` is the definition a server adds. */
export function snapshotsService(): grpc.ServiceClientConstructor {
  if (!cached) {
    const definition = protoLoader.loadSync(SNAPSHOTS_PROTO, {keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR]})
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {containerd: {services: {snapshots: {v1: {Snapshots: grpc.ServiceClientConstructor}}}}}
    cached = pkg.containerd.services.snapshots.v1.Snapshots
  }
  return cached
}

export interface Timestamp {
  seconds: number
  nanos: number
}

export interface ProtoInfo {
  name: string
  parent: string
  kind: 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED'
  created_at: Timestamp | null
  updated_at: Timestamp | null
  labels: Record<string, string>
}

export interface ProtoMount {
  type: string
  source: string
  target: string
  options: string[]
}
