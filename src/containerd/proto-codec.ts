// A protobuf codec driven by a JSON descriptor (protobufjs's `toJSON` shape, as in
// proto/containerd-api.json). Messages become the plain objects @grpc/proto-loader would give with
// {keepCase, longs: String|Number, enums: String, defaults: true}: field names as written, every
// field present (scalars at their zero value, messages null, repeated [], maps {}), bytes as Buffer.
//
// Why not proto-loader: it builds a protobufjs reflection tree, encodes a FileDescriptorProto for
// every message and generates code for each type with `new Function`: ~80 ms of CPU before
// `lazyctl run` can make its first call. Walking the descriptor's field tables costs ~1 ms, and the
// codec is checked against protobufjs on every message of the API (test/containerd/proto-codec.test.ts).

/** The subset of protobufjs's JSON descriptor this codec reads. */
export interface JsonDescriptor {
  nested?: Record<string, JsonDescriptor>
  fields?: Record<string, JsonField>
  values?: Record<string, number>
  methods?: Record<string, JsonMethod>
}

export interface JsonField {
  type: string
  id: number
  rule?: string
  keyType?: string
  options?: {packed?: boolean}
}

export interface JsonMethod {
  requestType: string
  responseType: string
  requestStream?: boolean
  responseStream?: boolean
}

/** How 64-bit integers reach JavaScript: exact decimal strings or (possibly rounded) numbers. */
export type LongsAs = 'string' | 'number'

type Scalar = 'double' | 'float' | 'int32' | 'uint32' | 'sint32' | 'fixed32' | 'sfixed32' | 'int64' | 'uint64' | 'sint64' | 'fixed64' | 'sfixed64' | 'bool' | 'string' | 'bytes'

const WIRE_VARINT = 0
const WIRE_FIXED64 = 1
const WIRE_LENGTH = 2
const WIRE_FIXED32 = 5

const SCALAR_WIRE: Record<Scalar, number> = {
  double: WIRE_FIXED64,
  float: WIRE_FIXED32,
  int32: WIRE_VARINT,
  uint32: WIRE_VARINT,
  sint32: WIRE_VARINT,
  fixed32: WIRE_FIXED32,
  sfixed32: WIRE_FIXED32,
  int64: WIRE_VARINT,
  uint64: WIRE_VARINT,
  sint64: WIRE_VARINT,
  fixed64: WIRE_FIXED64,
  sfixed64: WIRE_FIXED64,
  bool: WIRE_VARINT,
  string: WIRE_LENGTH,
  bytes: WIRE_LENGTH,
}

const TWO_32 = 4294967296
const LONG_SCALARS = new Set<string>(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64'])

function isScalar(type: string): type is Scalar {
  return Object.hasOwn(SCALAR_WIRE, type)
}

// ---------------------------------------------------------------------------------------------
// Wire-level writer and reader

/** Collects encoded bytes; large byte fields are kept by reference and copied once, in finish(). */
class ProtoWriter {
  private readonly parts: Uint8Array[] = []
  private buf = Buffer.allocUnsafe(256)
  private pos = 0

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return
    this.flush()
    this.buf = Buffer.allocUnsafe(Math.max(256, n))
  }

  private flush(): void {
    if (this.pos > 0) this.parts.push(this.buf.subarray(0, this.pos))
    this.buf = this.buf.subarray(this.pos)
    this.pos = 0
  }

  tag(id: number, wire: number): void {
    this.uint32(((id << 3) | wire) >>> 0)
  }

  uint32(value: number): void {
    this.room(5)
    while (value > 0x7f) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80
      value >>>= 7
    }
    this.buf[this.pos++] = value
  }

  /** A 64-bit varint from its two unsigned 32-bit halves. */
  varint64(lo: number, hi: number): void {
    this.room(10)
    while (hi !== 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80
      lo = ((lo >>> 7) | (hi << 25)) >>> 0
      hi >>>= 7
    }
    this.buf[this.pos++] = lo
  }

  fixed32(value: number): void {
    this.room(4)
    this.buf.writeUInt32LE(value >>> 0, this.pos)
    this.pos += 4
  }

  fixed64(lo: number, hi: number): void {
    this.fixed32(lo)
    this.fixed32(hi)
  }

  float(value: number): void {
    this.room(4)
    this.buf.writeFloatLE(value, this.pos)
    this.pos += 4
  }

  double(value: number): void {
    this.room(8)
    this.buf.writeDoubleLE(value, this.pos)
    this.pos += 8
  }

  bytes(value: Uint8Array): void {
    this.uint32(value.length)
    if (value.length > 64) {
      this.flush()
      this.parts.push(value)
      return
    }
    this.room(value.length)
    this.buf.set(value, this.pos)
    this.pos += value.length
  }

  finish(): Buffer {
    this.flush()
    return this.parts.length === 1 ? Buffer.from(this.parts[0]!.buffer, this.parts[0]!.byteOffset, this.parts[0]!.length) : Buffer.concat(this.parts)
  }
}

class ProtoReader {
  pos = 0
  constructor(
    readonly buf: Buffer,
    readonly end = buf.length,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.end) throw new RangeError(`protobuf message truncated at byte ${this.pos}`)
  }

  uint32(): number {
    let value = 0
    for (let shift = 0; shift < 35; shift += 7) {
      this.need(1)
      const b = this.buf[this.pos++]!
      if (shift < 28) value |= (b & 0x7f) << shift
      else value = (value + (b & 0x7f) * 2 ** shift) >>> 0
      if (b < 0x80) return value >>> 0
    }
    // A varint of an int32 field may be 10 bytes long (negative values); the low 32 bits count.
    for (let i = 0; i < 5; i++) {
      this.need(1)
      if (this.buf[this.pos++]! < 0x80) return value >>> 0
    }
    throw new RangeError(`protobuf varint longer than 10 bytes at byte ${this.pos}`)
  }

  /** A 64-bit varint as [lo, hi] unsigned halves. */
  varint64(): [number, number] {
    let lo = 0
    let hi = 0
    for (let i = 0; i < 10; i++) {
      this.need(1)
      const b = this.buf[this.pos++]!
      const bits = b & 0x7f
      const shift = i * 7
      if (shift < 28) lo |= bits << shift
      else if (shift === 28) {
        lo |= bits << 28
        hi |= bits >>> 4
      } else hi |= bits << (shift - 32)
      if (b < 0x80) return [lo >>> 0, hi >>> 0]
    }
    throw new RangeError(`protobuf varint longer than 10 bytes at byte ${this.pos}`)
  }

  fixed32(): number {
    this.need(4)
    const value = this.buf.readUInt32LE(this.pos)
    this.pos += 4
    return value
  }

  float(): number {
    this.need(4)
    const value = this.buf.readFloatLE(this.pos)
    this.pos += 4
    return value
  }

  double(): number {
    this.need(8)
    const value = this.buf.readDoubleLE(this.pos)
    this.pos += 8
    return value
  }

  /** The bytes of a length-delimited field (a view, not a copy). */
  bytes(): Buffer {
    const length = this.uint32()
    this.need(length)
    const value = this.buf.subarray(this.pos, this.pos + length)
    this.pos += length
    return value
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint64()
        return
      case WIRE_FIXED64:
        this.need(8)
        this.pos += 8
        return
      case WIRE_LENGTH:
        this.bytes()
        return
      case WIRE_FIXED32:
        this.need(4)
        this.pos += 4
        return
      default:
        throw new RangeError(`protobuf wire type ${wire} is not supported (at byte ${this.pos})`)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 64-bit integers

function longToHalves(value: unknown, field: string): [number, number] {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return [value % TWO_32, Math.floor(value / TWO_32)]
  let big: bigint
  if (typeof value === 'bigint') big = value
  else if (typeof value === 'number') big = BigInt(Math.trunc(value))
  else if (typeof value === 'string') big = BigInt(value.trim() || '0')
  else if (value && typeof value === 'object' && 'low' in value && 'high' in value) {
    const long = value as {low: number; high: number}
    big = (BigInt(long.high >>> 0) << 32n) | BigInt(long.low >>> 0)
  } else throw new TypeError(`${field}: integer expected`)
  const unsigned = BigInt.asUintN(64, big)
  return [Number(unsigned & 0xffffffffn), Number(unsigned >> 32n)]
}

function halvesToLong(lo: number, hi: number, signed: boolean, longs: LongsAs): string | number {
  if (signed && hi >= 0x80000000) {
    const value = BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo))
    return longs === 'string' ? value.toString() : Number(value)
  }
  if (hi < 0x200000 || longs === 'number') return longs === 'string' ? String(hi * TWO_32 + lo) : hi * TWO_32 + lo
  return ((BigInt(hi) << 32n) | BigInt(lo)).toString()
}

// ---------------------------------------------------------------------------------------------
// Compiled message codecs

interface EnumCodec {
  byName: Map<string, number>
  byNumber: Map<number, string>
  zero: string
}

interface ValueCodec {
  scalar?: Scalar
  enumCodec?: EnumCodec
  /** Resolved on first use: message types may refer to each other. */
  message?: () => MessageCodec
  wire: number
}

interface FieldCodec extends ValueCodec {
  name: string
  id: number
  repeated: boolean
  /** Map fields: the key's scalar type; the value is this field's ValueCodec. */
  mapKey?: Scalar
}

export class MessageCodec {
  private readonly byId = new Map<number, FieldCodec>()

  constructor(
    readonly fullName: string,
    private readonly fields: FieldCodec[],
    private readonly longs: LongsAs,
  ) {
    for (const field of fields) this.byId.set(field.id, field)
  }

  encode(object: unknown): Buffer {
    const writer = new ProtoWriter()
    this.write(object, writer)
    return writer.finish()
  }

  decode(buf: Buffer): Record<string, unknown> {
    return this.read(new ProtoReader(buf), buf.length)
  }

  private write(object: unknown, writer: ProtoWriter): void {
    if (object === null || typeof object !== 'object') throw new TypeError(`${this.fullName}: object expected`)
    const source = object as Record<string, unknown>
    for (const field of this.fields) {
      const value = source[field.name]
      if (value === undefined || value === null) continue
      const where = `${this.fullName}.${field.name}`
      if (field.mapKey) {
        if (typeof value !== 'object') throw new TypeError(`${where}: object expected`)
        for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
          const sub = new ProtoWriter()
          writeValue(sub, 1, {scalar: field.mapKey, wire: SCALAR_WIRE[field.mapKey]}, field.mapKey === 'bool' ? key === 'true' : key, where, true)
          writeValue(sub, 2, field, entry, where, true)
          writer.tag(field.id, WIRE_LENGTH)
          writer.bytes(sub.finish())
        }
      } else if (field.repeated) {
        if (!Array.isArray(value)) throw new TypeError(`${where}: array expected`)
        if (field.wire !== WIRE_LENGTH && value.length > 0) {
          // Packed, as proto3 encodes repeated numbers.
          const sub = new ProtoWriter()
          for (const item of value) writeBare(sub, field, item, where)
          writer.tag(field.id, WIRE_LENGTH)
          writer.bytes(sub.finish())
        } else for (const item of value) writeValue(writer, field.id, field, item, where, true)
      } else writeValue(writer, field.id, field, value, where, false)
    }
  }

  private read(reader: ProtoReader, end: number): Record<string, unknown> {
    const object = this.defaults()
    while (reader.pos < end) {
      const tag = reader.uint32()
      const id = tag >>> 3
      const wire = tag & 7
      const field = this.byId.get(id)
      if (!field) {
        reader.skip(wire)
        continue
      }
      if (field.mapKey) {
        const entryEnd = reader.uint32() + reader.pos
        if (entryEnd > end) throw new RangeError(`${this.fullName}.${field.name}: map entry runs past its message`)
        let key: unknown = zeroValue({scalar: field.mapKey, wire: SCALAR_WIRE[field.mapKey]}, this.longs)
        let value: unknown = zeroValue(field, this.longs)
        while (reader.pos < entryEnd) {
          const entryTag = reader.uint32()
          if (entryTag >>> 3 === 1) key = readValue(reader, {scalar: field.mapKey, wire: SCALAR_WIRE[field.mapKey]}, this.longs)
          else if (entryTag >>> 3 === 2) value = readValue(reader, field, this.longs)
          else reader.skip(entryTag & 7)
        }
        ;(object[field.name] as Record<string, unknown>)[String(key)] = value
      } else if (field.repeated) {
        const list = object[field.name] as unknown[]
        if (wire === WIRE_LENGTH && field.wire !== WIRE_LENGTH) {
          const packedEnd = reader.uint32() + reader.pos
          while (reader.pos < packedEnd) list.push(readValue(reader, field, this.longs))
        } else list.push(readValue(reader, field, this.longs))
      } else if (wire !== field.wire) {
        throw new RangeError(`${this.fullName}.${field.name}: wire type ${wire}, expected ${field.wire}`)
      } else object[field.name] = readValue(reader, field, this.longs)
    }
    if (reader.pos !== end) throw new RangeError(`${this.fullName}: a field runs past the end of its message`)
    return object
  }

  /** Every field at its default, as proto-loader's `defaults: true` shows an absent field. */
  private defaults(): Record<string, unknown> {
    const object: Record<string, unknown> = {}
    for (const field of this.fields) {
      if (field.mapKey) object[field.name] = {}
      else if (field.repeated) object[field.name] = []
      else object[field.name] = zeroValue(field, this.longs)
    }
    return object
  }

  /** Used by readValue for nested messages: decodes the next `length` bytes. */
  readNested(reader: ProtoReader): Record<string, unknown> {
    const end = reader.uint32() + reader.pos
    if (end > reader.end) throw new RangeError(`${this.fullName}: nested message runs past its parent`)
    return this.read(reader, end)
  }

  /** Used by writeValue for nested messages. */
  writeNested(object: unknown, writer: ProtoWriter): void {
    this.write(object, writer)
  }
}

function zeroValue(codec: ValueCodec, longs: LongsAs): unknown {
  if (codec.message) return null
  if (codec.enumCodec) return codec.enumCodec.zero
  switch (codec.scalar!) {
    case 'bool':
      return false
    case 'string':
      return ''
    case 'bytes':
      return Buffer.alloc(0)
    default:
      return LONG_SCALARS.has(codec.scalar!) && longs === 'string' ? '0' : 0
  }
}

function isZero(codec: ValueCodec, value: unknown): boolean {
  if (codec.message) return false
  if (codec.enumCodec) return value === 0 || value === codec.enumCodec.zero
  switch (codec.scalar!) {
    case 'bool':
      return value === false
    case 'string':
      return value === ''
    case 'bytes':
      return (value as {length?: number}).length === 0
    default:
      return value === 0 || value === '0' || value === 0n
  }
}

function enumNumber(codec: EnumCodec, value: unknown, where: string): number {
  if (typeof value === 'number') return value
  const number = codec.byName.get(String(value))
  if (number === undefined) throw new TypeError(`${where}: unknown enum value ${JSON.stringify(value)}`)
  return number
}

function toBytes(value: unknown, where: string): Uint8Array {
  if (value instanceof Uint8Array) return value
  // protobufjs's fromObject reads a string for a bytes field as base64.
  if (typeof value === 'string') return Buffer.from(value, 'base64')
  if (Array.isArray(value)) return Buffer.from(value as number[])
  throw new TypeError(`${where}: bytes expected`)
}

/** One field value with its tag; proto3 leaves singular zero values out, as Go's encoder does. */
function writeValue(writer: ProtoWriter, id: number, codec: ValueCodec, value: unknown, where: string, always: boolean): void {
  if (!always && isZero(codec, value)) return
  writer.tag(id, codec.wire)
  writeBare(writer, codec, value, where)
}

function writeBare(writer: ProtoWriter, codec: ValueCodec, value: unknown, where: string): void {
  if (codec.message) {
    const sub = new ProtoWriter()
    codec.message().writeNested(value, sub)
    writer.bytes(sub.finish())
    return
  }
  if (codec.enumCodec) {
    const number = enumNumber(codec.enumCodec, value, where)
    if (number < 0) writer.varint64(number >>> 0, 0xffffffff)
    else writer.uint32(number)
    return
  }
  switch (codec.scalar!) {
    case 'string':
      writer.bytes(Buffer.from(String(value), 'utf8'))
      return
    case 'bytes':
      writer.bytes(toBytes(value, where))
      return
    case 'bool':
      writer.uint32(value ? 1 : 0)
      return
    case 'int32': {
      const number = Number(value) | 0
      if (number < 0) writer.varint64(number >>> 0, 0xffffffff)
      else writer.uint32(number)
      return
    }
    case 'uint32':
      writer.uint32(Number(value) >>> 0)
      return
    case 'sint32': {
      const number = Number(value) | 0
      writer.uint32(((number << 1) ^ (number >> 31)) >>> 0)
      return
    }
    case 'fixed32':
    case 'sfixed32':
      writer.fixed32(Number(value) >>> 0)
      return
    case 'float':
      writer.float(Number(value))
      return
    case 'double':
      writer.double(Number(value))
      return
    case 'int64':
    case 'uint64':
      writer.varint64(...longToHalves(value, where))
      return
    case 'sint64': {
      const [lo, hi] = longToHalves(value, where)
      const sign = hi >> 31
      writer.varint64(((lo << 1) ^ sign) >>> 0, (((hi << 1) | (lo >>> 31)) ^ sign) >>> 0)
      return
    }
    case 'fixed64':
    case 'sfixed64':
      writer.fixed64(...longToHalves(value, where))
      return
  }
}

function readValue(reader: ProtoReader, codec: ValueCodec, longs: LongsAs): unknown {
  if (codec.message) return codec.message().readNested(reader)
  if (codec.enumCodec) {
    const number = reader.uint32() | 0
    return codec.enumCodec.byNumber.get(number) ?? number
  }
  switch (codec.scalar!) {
    case 'string':
      return reader.bytes().toString('utf8')
    case 'bytes':
      // A view of the received message, as protobufjs gives: no copy of large content chunks.
      return reader.bytes()
    case 'bool':
      return reader.varint64().some((half) => half !== 0)
    case 'int32':
      return reader.uint32() | 0
    case 'uint32':
      return reader.uint32()
    case 'sint32': {
      const zigzag = reader.uint32()
      return (zigzag >>> 1) ^ -(zigzag & 1)
    }
    case 'fixed32':
      return reader.fixed32()
    case 'sfixed32':
      return reader.fixed32() | 0
    case 'float':
      return reader.float()
    case 'double':
      return reader.double()
    case 'int64':
    case 'uint64': {
      const [lo, hi] = reader.varint64()
      return halvesToLong(lo, hi, codec.scalar === 'int64', longs)
    }
    case 'sint64': {
      const [lo, hi] = reader.varint64()
      const sign = -(lo & 1) >>> 0
      return halvesToLong((((lo >>> 1) | (hi << 31)) ^ sign) >>> 0, ((hi >>> 1) ^ sign) >>> 0, true, longs)
    }
    case 'fixed64':
    case 'sfixed64': {
      const lo = reader.fixed32()
      return halvesToLong(lo, reader.fixed32(), codec.scalar === 'sfixed64', longs)
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Descriptor lookup

/** The codecs of one descriptor for one `longs` mode; types are compiled on first use. */
export class ProtoSchema {
  private readonly messages = new Map<string, MessageCodec>()
  private readonly enums = new Map<string, EnumCodec>()

  constructor(
    private readonly root: JsonDescriptor,
    readonly longs: LongsAs,
  ) {}

  /** The node at a fully qualified name (`a.b.C`), or undefined. */
  node(fullName: string): JsonDescriptor | undefined {
    let node: JsonDescriptor | undefined = this.root
    for (const part of fullName.split('.')) node = node?.nested?.[part]
    return node
  }

  /** Resolves `type` as written inside scope `scope`, innermost scope first, as protoc does. */
  resolve(type: string, scope: string): string {
    if (type.startsWith('.')) return type.slice(1)
    const parts = scope.split('.')
    for (let i = parts.length; i >= 0; i--) {
      const candidate = [...parts.slice(0, i), type].join('.')
      if (this.node(candidate)) return candidate
    }
    throw new Error(`protobuf type ${type} (used in ${scope}) is not in the descriptor`)
  }

  message(fullName: string): MessageCodec {
    let codec = this.messages.get(fullName)
    if (codec) return codec
    const node = this.node(fullName)
    if (!node?.fields) throw new Error(`protobuf message ${fullName} is not in the descriptor`)
    const fields = Object.entries(node.fields).map(([name, field]) => this.field(name, field, fullName))
    codec = new MessageCodec(fullName, fields, this.longs)
    this.messages.set(fullName, codec)
    return codec
  }

  private field(name: string, field: JsonField, scope: string): FieldCodec {
    const value = this.valueCodec(field.type, scope)
    const codec: FieldCodec = {...value, name, id: field.id, repeated: field.rule === 'repeated'}
    if (field.keyType) {
      if (!isScalar(field.keyType)) throw new Error(`${scope}.${name}: map key type ${field.keyType} is not a scalar`)
      codec.mapKey = field.keyType
    }
    return codec
  }

  private valueCodec(type: string, scope: string): ValueCodec {
    if (isScalar(type)) return {scalar: type, wire: SCALAR_WIRE[type]}
    const fullName = this.resolve(type, scope)
    const node = this.node(fullName)!
    if (node.values) return {enumCodec: this.enumCodec(fullName, node.values), wire: WIRE_VARINT}
    return {message: () => this.message(fullName), wire: WIRE_LENGTH}
  }

  private enumCodec(fullName: string, values: Record<string, number>): EnumCodec {
    let codec = this.enums.get(fullName)
    if (!codec) {
      const byName = new Map(Object.entries(values))
      const byNumber = new Map<number, string>()
      for (const [name, number] of byName) if (!byNumber.has(number)) byNumber.set(number, name)
      codec = {byName, byNumber, zero: byNumber.get(0) ?? [...byName.keys()][0] ?? ''}
      this.enums.set(fullName, codec)
    }
    return codec
  }
}
