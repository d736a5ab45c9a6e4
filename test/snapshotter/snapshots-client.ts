// A plain client of containerd's Snapshots service, to drive the snapshotter as containerd does.
import * as grpc from '@grpc/grpc-js'
import {snapshotsService, type ProtoInfo, type ProtoMount} from '../../src/snapshotter/snapshots-proto.js'

export class SnapshotsClient {
  private readonly client: grpc.Client

  constructor(socket: string) {
    const Ctor = snapshotsService()
    this.client = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure())
  }

  private call<Res>(method: string, request: Record<string, unknown>): Promise<Res> {
    const fn = (this.client as unknown as Record<string, Function>)[method]!
    return new Promise((resolve, reject) => {
      fn.call(this.client, {snapshotter: 'stargz', ...request}, new grpc.Metadata(), {deadline: Date.now() + 60_000}, (err: grpc.ServiceError | null, res: Res) =>
        err ? reject(err) : resolve(res),
      )
    })
  }

  async prepare(key: string, parent = '', labels: Record<string, string> = {}): Promise<ProtoMount[]> {
    return (await this.call<{mounts: ProtoMount[]}>('Prepare', {key, parent, labels})).mounts
  }

  async view(key: string, parent = '', labels: Record<string, string> = {}): Promise<ProtoMount[]> {
    return (await this.call<{mounts: ProtoMount[]}>('View', {key, parent, labels})).mounts
  }

  async mounts(key: string): Promise<ProtoMount[]> {
    return (await this.call<{mounts: ProtoMount[]}>('Mounts', {key})).mounts
  }

  async commit(name: string, key: string, labels: Record<string, string> = {}): Promise<void> {
    await this.call('Commit', {name, key, labels})
  }

  async remove(key: string): Promise<void> {
    await this.call('Remove', {key})
  }

  async stat(key: string): Promise<ProtoInfo> {
    return (await this.call<{info: ProtoInfo}>('Stat', {key})).info
  }

  async update(name: string, labels: Record<string, string>, paths: string[]): Promise<ProtoInfo> {
    return (await this.call<{info: ProtoInfo}>('Update', {info: {name, labels}, update_mask: {paths}})).info
  }

  async usage(key: string): Promise<{size: number; inodes: number}> {
    return this.call('Usage', {key})
  }

  async cleanup(): Promise<void> {
    await this.call('Cleanup', {})
  }

  list(filters: string[] = []): Promise<ProtoInfo[]> {
    const stream = (this.client as unknown as {List: Function}).List({snapshotter: 'stargz', filters}, new grpc.Metadata()) as grpc.ClientReadableStream<{info: ProtoInfo[]}>
    const infos: ProtoInfo[] = []
    return new Promise((resolve, reject) => {
      stream.on('data', (batch: {info: ProtoInfo[]}) => infos.push(...batch.info))
      stream.on('error', reject)
      stream.on('end', () => resolve(infos))
    })
  }

  close(): void {
    this.client.close()
  }
}

/** The gRPC status code of a rejected call (for asserting the codes containerd maps). */
export async function grpcCode(promise: Promise<unknown>): Promise<{code: grpc.status; details: string}> {
  try {
    await promise
  } catch (err) {
    const e = err as grpc.ServiceError
    return {code: e.code, details: e.details}
  }
  throw new Error('expected the call to fail')
}
