// The containerd Snapshots service definition with the options the server needs (snake_case names,
// enums as strings, 64-bit integers as numbers).
import type * as grpc from '@grpc/grpc-js'
import {containerdService} from '../containerd/grpc-js-service.js'

/** The client constructor; `.service` is the definition a server adds. */
export function snapshotsService(): grpc.ServiceClientConstructor {
  return containerdService('number', 'containerd.services.snapshots.v1.Snapshots')
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
