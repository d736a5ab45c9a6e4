// Builds the JSON descriptors of proto/ that src/containerd/api-descriptor.ts loads: containerd's
// API (proto/containerd) and Kubernetes' CRI (proto/cri). Used by scripts/gen-proto-types (to write
// them) and by a test (to prove the committed ones are current); never on a start-up path, because
// parsing .proto text is what a descriptor saves.
import protobuf from 'protobufjs'
import {existsSync, readdirSync} from 'node:fs'
import {join, relative} from 'node:path'
import {PROTO_DIR} from '../paths.js'

/** An API's directory under proto/ and the descriptor file made of it. */
export type ApiName = 'containerd' | 'cri'

/** Every .proto under proto/<api>, relative to proto/, sorted. */
export function apiProtoFiles(api: ApiName): string[] {
  const found: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, {withFileTypes: true})) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.proto')) found.push(relative(PROTO_DIR, path))
    }
  }
  walk(join(PROTO_DIR, api))
  return found.sort()
}

/** The descriptor text: protobufjs's JSON of every .proto of `api`, field names as written. */
export function buildApiDescriptor(api: ApiName = 'containerd'): string {
  const root = new protobuf.Root()
  root.resolvePath = (_origin, target) => (existsSync(join(PROTO_DIR, target)) ? join(PROTO_DIR, target) : target)
  root.loadSync(apiProtoFiles(api).map((file) => join(PROTO_DIR, file)), {keepCase: true})
  root.resolveAll()
  return `${JSON.stringify(root.toJSON())}\n`
}
