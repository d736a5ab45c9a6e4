// containerd's services as grpc-js definitions and client constructors, for the snapshotter's server
// (which serves containerd's Snapshots API) and for tests that call it the way containerd does. The
// CLI's own calls do not load grpc-js (./grpc-transport.ts).
import * as grpc from '@grpc/grpc-js'
import {containerdSchema, serviceDefinition, type LongsAs} from './api-descriptor.js'

const constructors = new Map<string, grpc.ServiceClientConstructor>()

/** The client constructor of service `fullName` (e.g. `containerd.services.tasks.v1.Tasks`); `.service` is what a server adds. */
export function containerdService(longs: LongsAs, fullName: string): grpc.ServiceClientConstructor {
  const key = `${longs} ${fullName}`
  let constructor = constructors.get(key)
  if (!constructor) {
    constructor = grpc.makeGenericClientConstructor(serviceDefinition(containerdSchema(longs), fullName), fullName)
    constructors.set(key, constructor)
  }
  return constructor
}
