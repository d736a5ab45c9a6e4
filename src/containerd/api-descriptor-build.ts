// Builds the JSON descriptor of proto/ that src/containerd/api-descriptor.ts loads. Used by
// scripts/gen-proto-types (to write it) and by a test (to prove the committed one is current);
// never on a start-up path, because parsing .proto text is what the descriptor saves.
import protobuf from 'protobufjs'
import {existsSync, readdirSync} from 'node:fs'
import {join, relative} from 'node:path'
import {PROTO_DIR} from '../paths.js'

/** Every .proto under proto/containerd, relative to proto/, sorted. */
export function containerdProtoFiles(): string[] {
  const found: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, {withFileTypes: true})) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.name.endsWith('.proto')) found.push(relative(PROTO_DIR, path))
    }
  }
  walk(join(PROTO_DIR, 'containerd'))
  return found.sort()
}

/** The descriptor text: protobufjs's JSON of every containerd .proto, field names as written. */
export function buildApiDescriptor(): string {
  const root = new protobuf.Root()
  root.resolvePath = (_origin, target) => (existsSync(join(PROTO_DIR, target)) ? join(PROTO_DIR, target) : target)
  root.loadSync(containerdProtoFiles().map((file) => join(PROTO_DIR, file)), {keepCase: true})
  root.resolveAll()
  return `${JSON.stringify(root.toJSON())}\n`
}
