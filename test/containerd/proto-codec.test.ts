// lazyctl's protobuf codec against protobufjs (the implementation behind @grpc/proto-loader) as the
// oracle: for every message of containerd's API and for a message with every scalar type, bytes
// one side encodes decode on the other side to the same object, with proto-loader's options.
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {test} from 'node:test'
import protobuf from 'protobufjs'
import {API_DESCRIPTOR_FILE} from '../../src/containerd/api-descriptor.js'
import {containerdService} from '../../src/containerd/grpc-js-service.js'
import {type JsonDescriptor, type LongsAs, ProtoSchema} from '../../src/containerd/proto-codec.js'

const SCALARS = ['double', 'float', 'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64', 'bool', 'string', 'bytes']

/** A small deterministic PRNG so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 4294967296
  }
}

/** A value for each field of `type`, drawn to reach edge cases (negatives, > 2^53, empty, unicode). */
function sample(type: protobuf.Type, rand: () => number, depth: number, longs: LongsAs): Record<string, unknown> {
  const object: Record<string, unknown> = {}
  for (const field of type.fieldsArray) {
    if (rand() < 0.2) continue
    if (field.resolvedType instanceof protobuf.Type && depth === 0) continue
    const one = (): unknown => sampleValue(field, rand, depth, longs)
    if (field.map) {
      const map: Record<string, unknown> = {}
      for (let i = Math.floor(rand() * 3); i > 0; i--) map[sampleKey(field as unknown as protobuf.MapField, rand)] = one()
      object[field.name] = map
    } else if (field.repeated) object[field.name] = Array.from({length: Math.floor(rand() * 3)}, one)
    else object[field.name] = one()
  }
  return object
}

function sampleKey(field: protobuf.MapField, rand: () => number): string {
  return field.keyType === 'string' ? `key-${Math.floor(rand() * 1000)}` : String(Math.floor(rand() * 1000))
}

function sampleValue(field: protobuf.Field, rand: () => number, depth: number, longs: LongsAs): unknown {
  const resolved = field.resolvedType
  if (resolved instanceof protobuf.Enum) {
    const names = Object.keys(resolved.values)
    return names[Math.floor(rand() * names.length)]
  }
  if (resolved instanceof protobuf.Type) return sample(resolved, rand, depth - 1, longs)
  const pick = <T>(values: T[]): T => values[Math.floor(rand() * values.length)]!
  switch (field.type) {
    case 'string':
      return pick(['', 'a', 'ünïcødé ✓', 'x'.repeat(200)])
    case 'bytes':
      return pick([Buffer.alloc(0), Buffer.from([0, 1, 255]), Buffer.alloc(300, 7)])
    case 'bool':
      return pick([true, false])
    case 'double':
    case 'float':
      return pick([0, 1.5, -2.25, 1024])
    case 'int32':
    case 'sint32':
    case 'sfixed32':
      return pick([0, 1, -1, 2147483647, -2147483648, 300])
    case 'uint32':
    case 'fixed32':
      return pick([0, 1, 4294967295, 300])
    case 'uint64':
    case 'fixed64': {
      const value = pick(['0', '1', '18446744073709551615', '9007199254740993', '4294967296'])
      return longs === 'string' ? value : Number(value) > 2 ** 53 ? 4294967296 : Number(value)
    }
    default: {
      const value = pick(['0', '-1', '9223372036854775807', '-9223372036854775808', '1234567890123'])
      return longs === 'string' ? value : Math.abs(Number(value)) > 2 ** 53 ? -4294967296 : Number(value)
    }
  }
}

const protoLoaderOptions = (longs: LongsAs): protobuf.IConversionOptions => ({longs: longs === 'string' ? String : Number, enums: String, defaults: true, oneofs: true})

function* messageTypes(namespace: protobuf.NamespaceBase): Generator<protobuf.Type> {
  for (const nested of namespace.nestedArray) {
    if (nested instanceof protobuf.Type) yield nested
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) yield* messageTypes(nested)
  }
}

function checkRoundTrips(json: JsonDescriptor, label: string, samples: number): number {
  const root = protobuf.Root.fromJSON(json as protobuf.INamespace)
  root.resolveAll()
  let checked = 0
  for (const longs of ['string', 'number'] as const) {
    const schema = new ProtoSchema(json, longs)
    const rand = random(42)
    for (const type of messageTypes(root)) {
      const fullName = type.fullName.slice(1)
      const ours = schema.message(fullName)
      for (let i = 0; i < samples; i++) {
        const object = sample(type, rand, 2, longs)
        const expected = type.toObject(type.decode(type.encode(type.fromObject(object)).finish()), protoLoaderOptions(longs))
        const where = `${label} ${fullName} (${longs}) sample ${i}: ${JSON.stringify(object)}`
        // Ours → protobufjs, and protobufjs → ours.
        assert.deepEqual(type.toObject(type.decode(ours.encode(object)), protoLoaderOptions(longs)), expected, `protobufjs reads our bytes differently: ${where}`)
        assert.deepEqual(ours.decode(Buffer.from(type.encode(type.fromObject(object)).finish())), expected, `we read protobufjs's bytes differently: ${where}`)
        checked++
      }
    }
  }
  return checked
}

test('every message of containerd API round-trips with protobufjs (proto-loader options)', () => {
  const json = JSON.parse(readFileSync(API_DESCRIPTOR_FILE, 'utf8')) as JsonDescriptor
  const checked = checkRoundTrips(json, 'containerd', 20)
  assert.ok(checked > 1000, `only ${checked} samples`)
})

test('every scalar type, maps with numeric keys, packed numbers and enums round-trip with protobufjs', () => {
  const fields: Record<string, {type: string; id: number; rule?: string; keyType?: string}> = {}
  SCALARS.forEach((type, i) => {
    fields[`one_${type}`] = {type, id: i + 1}
    fields[`many_${type}`] = {type, id: i + 100, rule: 'repeated'}
  })
  fields['color'] = {type: 'Color', id: 200}
  fields['colors'] = {type: 'Color', id: 201, rule: 'repeated'}
  // Neither 64-bit nor bool keys: protobufjs reads the first as 8-byte hash strings and writes the
  // key string "false" as true.
  fields['by_int'] = {type: 'string', keyType: 'sint32', id: 202}
  fields['by_uint'] = {type: 'Color', keyType: 'uint32', id: 203}
  fields['child'] = {type: 'All', id: 204}
  const json: JsonDescriptor = {nested: {t: {nested: {All: {fields}, Color: {values: {NONE: 0, RED: 1, BLUE: -2}}}}}}
  checkRoundTrips(json, 'scalars', 200)
})

test('unknown fields are skipped and truncated input is refused', () => {
  const json: JsonDescriptor = {nested: {t: {nested: {Old: {fields: {name: {type: 'string', id: 1}}}, New: {fields: {name: {type: 'string', id: 1}, extra: {type: 'uint64', id: 7}, blob: {type: 'bytes', id: 8}}}}}}}
  const schema = new ProtoSchema(json, 'string')
  const bytes = schema.message('t.New').encode({name: 'n', extra: '18446744073709551615', blob: Buffer.alloc(100, 1)})
  assert.deepEqual(schema.message('t.Old').decode(bytes), {name: 'n'})
  assert.throws(() => schema.message('t.New').decode(bytes.subarray(0, bytes.length - 1)), /truncated/)
  assert.throws(() => schema.message('t.New').encode({name: 'n', extra: {}}), /t\.New\.extra: integer expected/)
})

test('service definitions carry the paths and codecs grpc-js needs', () => {
  const tasks = containerdService('string', 'containerd.services.tasks.v1.Tasks')
  const create = tasks.service.Create!
  assert.equal(create.path, '/containerd.services.tasks.v1.Tasks/Create')
  assert.equal(create.originalName, 'create')
  const request = {container_id: 'c1', rootfs: [{type: 'overlay', source: 'overlay', target: '', options: ['lowerdir=/a']}], terminal: true}
  const decoded = create.requestDeserialize(create.requestSerialize(request)) as Record<string, unknown>
  assert.equal(decoded.container_id, 'c1')
  assert.deepEqual(decoded.rootfs, request.rootfs)
  assert.equal(decoded.terminal, true)
  assert.equal(decoded.checkpoint, null)
  const events = containerdService('string', 'containerd.services.events.v1.Events')
  assert.equal(events.service.Subscribe!.responseStream, true)
  assert.throws(() => containerdService('string', 'containerd.services.nothing.v1.Nothing'), /not in/)
})
