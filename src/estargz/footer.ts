// The footers that locate the TOC, as pure functions over buffers (../shared/ref/estargz.md §1.5).
// eStargz: a 51-byte empty gzip member whose Extra field holds one 'S','G' subfield of
// "%016x" TOC offset + "STARGZ". Legacy stargz (crfs): 47 bytes, the same 22 bytes as the raw Extra.
import {LazyError} from '../cli/errors.js'
import {FOOTER_SIZE, LEGACY_FOOTER_SIZE} from './toc.js'

export type FooterFormat = 'estargz' | 'legacy-stargz'

export interface Footer {
  format: FooterFormat
  /** Compressed offset of the gzip member holding the TOC tar entry. */
  tocOffset: number
  /** Size of the footer in bytes (51 or 47). */
  size: number
}

const MAGIC = Buffer.from('STARGZ', 'ascii')
const OFFSET_DIGITS = 16
// An empty final stored deflate block: BFINAL=1 BTYPE=00, LEN=0, NLEN=0xffff.
const EMPTY_STORED_BLOCK = Buffer.from([0x01, 0x00, 0x00, 0xff, 0xff])

function offsetField(tocOffset: number): Buffer {
  if (!Number.isSafeInteger(tocOffset) || tocOffset < 0) throw new LazyError('INTERNAL', `bad TOC offset ${tocOffset}`)
  return Buffer.from(tocOffset.toString(16).padStart(OFFSET_DIGITS, '0'), 'ascii')
}

function gzipHeader(xlen: number): Buffer {
  // ID1 ID2 CM=deflate FLG=FEXTRA MTIME=0 XFL=0 OS=unknown, then XLEN.
  const h = Buffer.from([0x1f, 0x8b, 0x08, 0x04, 0, 0, 0, 0, 0x00, 0xff, 0, 0])
  h.writeUInt16LE(xlen, 10)
  return h
}

/** The 51-byte eStargz footer pointing at `tocOffset`. */
export function encodeFooter(tocOffset: number): Buffer {
  const subfield = Buffer.concat([Buffer.from('SG', 'ascii'), Buffer.from([22, 0]), offsetField(tocOffset), MAGIC])
  const out = Buffer.concat([gzipHeader(subfield.length), subfield, EMPTY_STORED_BLOCK, Buffer.alloc(8)])
  if (out.length !== FOOTER_SIZE) throw new LazyError('INTERNAL', `footer is ${out.length} bytes`)
  return out
}

/** The 47-byte legacy stargz footer (for tests and for reading old blobs). */
export function encodeLegacyFooter(tocOffset: number): Buffer {
  const extra = Buffer.concat([offsetField(tocOffset), MAGIC])
  const out = Buffer.concat([gzipHeader(extra.length), extra, EMPTY_STORED_BLOCK, Buffer.alloc(8)])
  if (out.length !== LEGACY_FOOTER_SIZE) throw new LazyError('INTERNAL', `legacy footer is ${out.length} bytes`)
  return out
}

/**
 * Parses the footer from the last bytes of a blob (`tail` = the last min(51, size) bytes).
 * Tries the eStargz layout, then the legacy one, as the reference reader does.
 */
export function decodeFooter(tail: Buffer): Footer {
  const reasons: string[] = []
  if (tail.length >= FOOTER_SIZE) {
    const footer = tail.subarray(tail.length - FOOTER_SIZE)
    const why = checkEstargzFooter(footer)
    if (why === null) return {format: 'estargz', tocOffset: parseOffset(footer.subarray(16, 32)), size: FOOTER_SIZE}
    reasons.push(`eStargz: ${why}`)
  } else {
    reasons.push(`eStargz: blob is shorter than ${FOOTER_SIZE} bytes`)
  }
  if (tail.length >= LEGACY_FOOTER_SIZE) {
    const footer = tail.subarray(tail.length - LEGACY_FOOTER_SIZE)
    const why = checkLegacyFooter(footer)
    if (why === null) return {format: 'legacy-stargz', tocOffset: parseOffset(footer.subarray(12, 28)), size: LEGACY_FOOTER_SIZE}
    reasons.push(`legacy stargz: ${why}`)
  }
  throw new LazyError('ESTARGZ_FOOTER', `no eStargz footer at the end of the blob: it is not eStargz, or it was cut short (${reasons.join('; ')})`, {
    hint: 'the blob is not eStargz; convert it with `lazyctl estargz create`',
  })
}

function checkGzipHeader(b: Buffer, xlen: number): string | null {
  if (b[0] !== 0x1f || b[1] !== 0x8b) return 'no gzip magic'
  if (b[2] !== 0x08) return 'compression method is not deflate'
  if (b[3] !== 0x04) return `gzip flags are 0x${b[3]!.toString(16)}, want FEXTRA only`
  if (b.readUInt16LE(10) !== xlen) return `extra field is ${b.readUInt16LE(10)} bytes, want ${xlen}`
  return null
}

function checkTrailer(b: Buffer, at: number): string | null {
  if (!b.subarray(at, at + 5).equals(EMPTY_STORED_BLOCK)) return 'footer member is not an empty stored block'
  if (b.readUInt32LE(at + 5) !== 0 || b.readUInt32LE(at + 9) !== 0) return 'footer member has a non-empty gzip trailer'
  return null
}

function checkEstargzFooter(b: Buffer): string | null {
  const header = checkGzipHeader(b, 26)
  if (header) return header
  if (b[12] !== 0x53 || b[13] !== 0x47) return "extra subfield is not 'SG'"
  if (b.readUInt16LE(14) !== 22) return 'extra subfield length is not 22'
  if (!b.subarray(32, 38).equals(MAGIC)) return 'no STARGZ magic'
  if (!isHex(b.subarray(16, 32))) return 'TOC offset is not hexadecimal'
  return checkTrailer(b, 38)
}

function checkLegacyFooter(b: Buffer): string | null {
  const header = checkGzipHeader(b, 22)
  if (header) return header
  if (!b.subarray(28, 34).equals(MAGIC)) return 'no STARGZ magic'
  if (!isHex(b.subarray(12, 28))) return 'TOC offset is not hexadecimal'
  return checkTrailer(b, 34)
}

function isHex(b: Buffer): boolean {
  return /^[0-9a-fA-F]{16}$/.test(b.toString('latin1'))
}

function parseOffset(b: Buffer): number {
  const value = BigInt(`0x${b.toString('ascii')}`)
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new LazyError('ESTARGZ_FOOTER', `TOC offset 0x${b.toString('ascii')} in the footer is out of range`)
  return Number(value)
}
