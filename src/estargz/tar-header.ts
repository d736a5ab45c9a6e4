// Tar header codec, pure functions over buffers: USTAR blocks, PAX extended records (kept as raw
// bytes so binary xattrs such as security.capability survive) and GNU long names on input.
// Output follows Go's archive/tar choice: plain USTAR when every field fits, else a PAX 'x'
// header first — the same shape the reference eStargz writer produces.
import {LazyError} from '../cli/errors.js'

export const BLOCK_SIZE = 512

/** Tar typeflags lazyctl reads and writes. */
export const TYPEFLAG = {
  reg: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
} as const

export interface TarHeader {
  /** Full path as stored (after PAX `path` / GNU long name). */
  name: string
  /** Typeflag character ('0' for regular files; '\0' and '7' are normalized to '0'). */
  typeflag: string
  /** Raw mode field (permission bits, setuid/setgid/sticky, sometimes type bits). */
  mode: number
  uid: number
  gid: number
  size: number
  /** Modification time in whole seconds since the epoch. */
  mtime: number
  linkname: string
  uname: string
  gname: string
  devmajor: number
  devminor: number
  /** Extended attributes from `SCHILY.xattr.*` records, in record order. */
  xattrs: Map<string, Buffer>
}

export function emptyHeader(name: string, typeflag: string): TarHeader {
  return {name, typeflag, mode: 0, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: new Map()}
}

export function paddingFor(size: number): number {
  const rem = size % BLOCK_SIZE
  return rem === 0 ? 0 : BLOCK_SIZE - rem
}

// ---------------------------------------------------------------------------------------------
// Encoding

const MAX_OCTAL_7 = 0o7777777 // 7 digits + NUL (mode, uid, gid, devmajor, devminor)
const MAX_OCTAL_11 = 0o77777777777 // 11 digits + NUL (size, mtime)

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 0 || c > 0x7f) return false
  }
  return true
}

/** The header bytes of one entry: optional PAX header + records, then the USTAR block. */
export function encodeTarHeader(h: TarHeader): Buffer {
  const pax: [string, Buffer][] = []
  let name = h.name
  let prefix = ''
  if (!isAscii(name) || Buffer.byteLength(name) > 100) {
    const split = isAscii(name) ? splitUstarName(name) : null
    if (split) [prefix, name] = split
    else {
      pax.push(['path', Buffer.from(h.name)])
      name = asciiTruncate(h.name, 100)
    }
  }
  let linkname = h.linkname
  if (!isAscii(linkname) || Buffer.byteLength(linkname) > 100) {
    pax.push(['linkpath', Buffer.from(linkname)])
    linkname = asciiTruncate(linkname, 100)
  }
  let uname = h.uname
  if (!isAscii(uname) || uname.length > 32) {
    pax.push(['uname', Buffer.from(uname)])
    uname = asciiTruncate(uname, 32)
  }
  let gname = h.gname
  if (!isAscii(gname) || gname.length > 32) {
    pax.push(['gname', Buffer.from(gname)])
    gname = asciiTruncate(gname, 32)
  }
  const numeric = (key: string, value: number, max: number): number => {
    if (value <= max) return value
    pax.push([key, Buffer.from(String(value))])
    return 0
  }
  const uid = numeric('uid', h.uid, MAX_OCTAL_7)
  const gid = numeric('gid', h.gid, MAX_OCTAL_7)
  const size = numeric('size', h.size, MAX_OCTAL_11)
  const mtime = numeric('mtime', h.mtime, MAX_OCTAL_11)
  // Go's map iteration is random but its PAX writer sorts keys; sorting keeps output deterministic.
  for (const key of [...h.xattrs.keys()].sort()) pax.push([`SCHILY.xattr.${key}`, h.xattrs.get(key)!])

  const block = ustarBlock({...h, name, prefix, linkname, uname, gname, uid, gid, size, mtime})
  if (pax.length === 0) return block
  const records = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)))
  const paxName = asciiTruncate(`PaxHeaders.0/${baseName(h.name)}`, 100)
  const paxHeader = ustarBlock({...emptyHeader(paxName, 'x'), prefix: '', size: records.length})
  return Buffer.concat([paxHeader, records, Buffer.alloc(paddingFor(records.length)), block])
}

function baseName(p: string): string {
  const trimmed = p.replace(/\/+$/, '')
  return trimmed.slice(trimmed.lastIndexOf('/') + 1)
}

function asciiTruncate(s: string, max: number): string {
  let out = ''
  for (const ch of s) out += isAscii(ch) ? ch : '_'
  return out.slice(0, max)
}

/** USTAR can hold names up to 256 bytes split at a '/' into prefix (155) and name (100). */
function splitUstarName(name: string): [string, string] | null {
  if (name.length > 256) return null
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue
    const prefix = name.slice(0, i)
    const rest = name.slice(i + 1)
    if (prefix.length <= 155 && rest.length <= 100 && rest.length > 0) return [prefix, rest]
    if (prefix.length <= 155) return null
  }
  return null
}

function paxRecord(key: string, value: Buffer): Buffer {
  // "%d %s=%s\n" where %d counts the whole record including its own digits.
  const body = 3 + Buffer.byteLength(key) + value.length // ' ' + '=' + '\n'
  let len = body + String(body).length
  if (String(len).length !== String(body).length) len = body + String(len).length
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')])
}

function ustarBlock(h: TarHeader & {prefix: string}): Buffer {
  const b = Buffer.alloc(BLOCK_SIZE)
  b.write(h.name, 0, 100, 'utf8')
  writeOctal(b, 100, 8, h.mode & 0o7777777)
  writeOctal(b, 108, 8, h.uid)
  writeOctal(b, 116, 8, h.gid)
  writeOctal(b, 124, 12, h.size)
  writeOctal(b, 136, 12, h.mtime)
  b.write(h.typeflag, 156, 1, 'latin1')
  b.write(h.linkname, 157, 100, 'utf8')
  b.write('ustar\x0000', 257, 8, 'latin1')
  b.write(h.uname, 265, 32, 'utf8')
  b.write(h.gname, 297, 32, 'utf8')
  writeOctal(b, 329, 8, h.devmajor)
  writeOctal(b, 337, 8, h.devminor)
  b.write(h.prefix, 345, 155, 'utf8')
  b.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK_SIZE; i++) sum += b[i]!
  b.write(sum.toString(8).padStart(6, '0') + '\x00 ', 148, 8, 'latin1')
  return b
}

function writeOctal(b: Buffer, offset: number, width: number, value: number): void {
  b.write(value.toString(8).padStart(width - 1, '0') + '\x00', offset, width, 'latin1')
}

// ---------------------------------------------------------------------------------------------
// Decoding

export interface RawBlock {
  name: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  typeflag: string
  linkname: string
  uname: string
  gname: string
  devmajor: number
  devminor: number
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (b[i] !== 0) return false
  return true
}

/** Whether the 512-byte block carries a valid tar header checksum (unsigned or signed sums). */
export function checksumMatches(b: Buffer): boolean {
  const stored = parseOctal(b, 148, 8)
  if (stored === null) return false
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : b[i]!
    unsigned += v
    signed += v > 127 ? v - 256 : v
  }
  return stored === unsigned || stored === signed
}

/** Decodes one header block; returns null when the checksum is wrong (not a tar header). */
export function decodeUstarBlock(b: Buffer): RawBlock | null {
  if (b.length < BLOCK_SIZE || !checksumMatches(b)) return null
  const magic = b.toString('latin1', 257, 263)
  let name = cString(b, 0, 100)
  // POSIX ustar has a prefix field; GNU's old format uses those bytes for atime/ctime.
  if (magic === 'ustar\x00') {
    const prefix = cString(b, 345, 155)
    if (prefix) name = `${prefix}/${name}`
  }
  const num = (offset: number, width: number): number => parseNumeric(b, offset, width) ?? 0
  return {
    name,
    mode: num(100, 8),
    uid: num(108, 8),
    gid: num(116, 8),
    size: num(124, 12),
    mtime: num(136, 12),
    typeflag: String.fromCharCode(b[156]!),
    linkname: cString(b, 157, 100),
    uname: cString(b, 265, 32),
    gname: cString(b, 297, 32),
    devmajor: num(329, 8),
    devminor: num(337, 8),
  }
}

function cString(b: Buffer, offset: number, width: number): string {
  let end = offset
  while (end < offset + width && b[end] !== 0) end++
  return b.toString('utf8', offset, end)
}

function parseOctal(b: Buffer, offset: number, width: number): number | null {
  const text = b.toString('latin1', offset, offset + width).replace(/[\0 ]+$/, '').replace(/^[ \0]+/, '')
  if (text === '') return 0
  if (!/^[0-7]+$/.test(text)) return null
  return parseInt(text, 8)
}

function parseNumeric(b: Buffer, offset: number, width: number): number | null {
  // GNU base-256: high bit of the first byte set; the rest is a big-endian number.
  if (b[offset]! & 0x80) {
    let value = BigInt(b[offset]! & 0x3f)
    if (b[offset]! & 0x40) return null // negative
    for (let i = 1; i < width; i++) value = (value << 8n) | BigInt(b[offset + i]!)
    return value > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(value)
  }
  return parseOctal(b, offset, width)
}

/** Parses PAX extended header records into raw key → value bytes. */
export function decodePaxRecords(buf: Buffer, where: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  let pos = 0
  while (pos < buf.length) {
    if (buf[pos] === 0) break // padding
    const space = buf.indexOf(0x20, pos)
    if (space < 0) throw new LazyError('NOT_A_TAR', `${where}: malformed PAX record`)
    const len = Number(buf.toString('latin1', pos, space))
    if (!Number.isSafeInteger(len) || len <= space - pos || pos + len > buf.length || buf[pos + len - 1] !== 0x0a) {
      throw new LazyError('NOT_A_TAR', `${where}: malformed PAX record length`)
    }
    const record = buf.subarray(space + 1, pos + len - 1)
    const eq = record.indexOf(0x3d)
    if (eq < 0) throw new LazyError('NOT_A_TAR', `${where}: PAX record without '='`)
    out.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)))
    pos += len
  }
  return out
}
