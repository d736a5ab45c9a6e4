// A streaming tar reader over an async iterable of buffers: headers (USTAR, PAX, GNU long
// names) are decoded with tar-header.ts; bodies are read by the caller in pieces it chooses,
// so a large file never needs to be in memory whole.
import {LazyError} from '../cli/errors.js'
import {BLOCK_SIZE, TYPEFLAG, decodePaxRecords, decodeUstarBlock, isZeroBlock, paddingFor, type TarHeader} from './tar-header.js'

const SUPPORTED = new Set<string>(Object.values(TYPEFLAG))
const MAX_META_SIZE = 1 << 20 // PAX / GNU long-name payloads larger than this are refused

/** Pulls exact byte counts out of an async iterable of buffers. */
export class ByteReader {
  private readonly iterator: AsyncIterator<Buffer | Uint8Array | string>
  private pending: Buffer[] = []
  private pendingBytes = 0
  private done = false
  /** Bytes consumed so far. */
  position = 0

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>) {
    this.iterator = source[Symbol.asyncIterator]()
  }

  private async fill(n: number): Promise<void> {
    while (this.pendingBytes < n && !this.done) {
      const next = await this.iterator.next()
      if (next.done) {
        this.done = true
        break
      }
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value)
      if (chunk.length === 0) continue
      this.pending.push(chunk)
      this.pendingBytes += chunk.length
    }
  }

  /** Up to `n` bytes; fewer only at end of input. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n)
    const take = Math.min(n, this.pendingBytes)
    let out: Buffer
    if (this.pending.length > 0 && this.pending[0]!.length >= take) {
      const head = this.pending[0]!
      out = head.subarray(0, take)
      if (head.length === take) this.pending.shift()
      else this.pending[0] = head.subarray(take)
    } else {
      out = Buffer.allocUnsafe(take)
      let filled = 0
      while (filled < take) {
        const head = this.pending[0]!
        const part = Math.min(head.length, take - filled)
        head.copy(out, filled, 0, part)
        filled += part
        if (part === head.length) this.pending.shift()
        else this.pending[0] = head.subarray(part)
      }
    }
    this.pendingBytes -= take
    this.position += take
    return out
  }

  /** Reads up to `n` bytes into `target` at `offset`; returns how many (fewer only at end of input). */
  async readInto(target: Buffer, offset: number, n: number): Promise<number> {
    let filled = 0
    while (filled < n) {
      if (this.pending.length === 0) {
        await this.fill(1)
        if (this.pending.length === 0) break
      }
      const head = this.pending[0]!
      const part = Math.min(head.length, n - filled)
      head.copy(target, offset + filled, 0, part)
      filled += part
      if (part === head.length) this.pending.shift()
      else this.pending[0] = head.subarray(part)
      this.pendingBytes -= part
      this.position += part
    }
    return filled
  }

  async skip(n: number): Promise<number> {
    let skipped = 0
    while (skipped < n) {
      const part = await this.read(Math.min(n - skipped, 1 << 20))
      if (part.length === 0) break
      skipped += part.length
    }
    return skipped
  }

  /** Consumes and discards the rest of the input. */
  async drain(): Promise<void> {
    while ((await this.read(1 << 20)).length > 0) {
      // discard
    }
  }
}

export interface TarReaderOptions {
  /** Names the input in error messages. */
  label?: string
}

export class TarReader {
  private readonly bytes: ByteReader
  private readonly label: string
  private bodyLeft = 0
  private paddingLeft = 0
  private entries = 0
  private globalPax = new Map<string, Buffer>()

  constructor(source: AsyncIterable<Buffer | Uint8Array | string>, options: TarReaderOptions = {}) {
    this.bytes = new ByteReader(source)
    this.label = options.label ?? 'input'
  }

  /** Bytes of tar consumed so far. */
  get position(): number {
    return this.bytes.position
  }

  /** The next entry's header, or null at the end of the archive. Skips the unread body of the previous entry. */
  async next(): Promise<TarHeader | null> {
    await this.skipBody()
    let pax: Map<string, Buffer> | null = null
    let longName: string | null = null
    let longLink: string | null = null
    for (;;) {
      const at = this.bytes.position
      const block = await this.bytes.read(BLOCK_SIZE)
      if (block.length === 0) {
        if (this.entries === 0 && at === 0) throw new LazyError('NOT_A_TAR', `${this.label} is empty, not a tar archive`)
        if (pax || longName !== null || longLink !== null) throw this.truncated(at)
        return null // end of input without the end-of-archive blocks: accepted, as Go does
      }
      if (block.length < BLOCK_SIZE) throw this.truncated(at)
      if (isZeroBlock(block)) {
        await this.bytes.drain()
        return null
      }
      const raw = decodeUstarBlock(block)
      if (!raw) {
        throw new LazyError('NOT_A_TAR', `${this.label} is not a tar archive: bad header checksum at byte ${at}`, {
          hint: this.entries === 0 ? 'give a tar, tar.gz or tar.zst layer' : undefined,
        })
      }
      this.entries++
      if (raw.typeflag === 'x' || raw.typeflag === 'g' || raw.typeflag === 'L' || raw.typeflag === 'K') {
        const data = await this.readMeta(raw.size, at)
        if (raw.typeflag === 'x') pax = new Map([...(pax ?? []), ...decodePaxRecords(data, `${this.label} at byte ${at}`)])
        else if (raw.typeflag === 'g') this.globalPax = new Map([...this.globalPax, ...decodePaxRecords(data, `${this.label} at byte ${at}`)])
        else if (raw.typeflag === 'L') longName = cString(data)
        else longLink = cString(data)
        continue
      }
      let typeflag = raw.typeflag
      if (typeflag === '\0' || typeflag === '7') typeflag = TYPEFLAG.reg
      if (!SUPPORTED.has(typeflag)) {
        throw new LazyError('NOT_A_TAR', `${this.label}: unsupported tar entry type '${printable(raw.typeflag)}' for ${JSON.stringify(raw.name)} at byte ${at}`)
      }
      const header: TarHeader = {...raw, typeflag, xattrs: new Map()}
      if (longName !== null) header.name = longName
      if (longLink !== null) header.linkname = longLink
      const records = new Map([...this.globalPax, ...(pax ?? [])])
      applyPax(header, records, `${this.label} at byte ${at}`)
      // Only regular files carry a body; the other types are header-only (as in Go's reader).
      if (typeflag !== TYPEFLAG.reg) header.size = 0
      this.bodyLeft = header.size
      this.paddingLeft = paddingFor(header.size)
      return header
    }
  }

  /** Up to `n` bytes of the current entry's body (fewer only at the body's end). */
  async readBody(n: number): Promise<Buffer> {
    const want = Math.min(n, this.bodyLeft)
    if (want === 0) return Buffer.alloc(0)
    const at = this.bytes.position
    const data = await this.bytes.read(want)
    if (data.length < want) throw this.truncated(at + data.length)
    this.bodyLeft -= want
    return data
  }

  /** Reads exactly `n` bytes of the current entry's body into `target` at `offset`. */
  async readBodyInto(target: Buffer, offset: number, n: number): Promise<void> {
    if (n > this.bodyLeft) throw new RangeError(`read of ${n} bytes past the entry body (${this.bodyLeft} left)`)
    const at = this.bytes.position
    const got = await this.bytes.readInto(target, offset, n)
    if (got < n) throw this.truncated(at + got)
    this.bodyLeft -= n
  }

  private async skipBody(): Promise<void> {
    const n = this.bodyLeft + this.paddingLeft
    this.bodyLeft = 0
    this.paddingLeft = 0
    if (n === 0) return
    const at = this.bytes.position
    const skipped = await this.bytes.skip(n)
    if (skipped < n) throw this.truncated(at + skipped)
  }

  private async readMeta(size: number, at: number): Promise<Buffer> {
    if (size > MAX_META_SIZE) throw new LazyError('NOT_A_TAR', `${this.label}: extended header of ${size} bytes at byte ${at} is too large`)
    const data = await this.bytes.read(size)
    if (data.length < size) throw this.truncated(at)
    const pad = paddingFor(size)
    if ((await this.bytes.skip(pad)) < pad) throw this.truncated(at)
    return Buffer.from(data)
  }

  private truncated(at: number): LazyError {
    return new LazyError('NOT_A_TAR', `${this.label} is truncated: the tar archive ends inside an entry (byte ${at})`)
  }
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0)
  return b.toString('utf8', 0, nul < 0 ? b.length : nul)
}

function printable(c: string): string {
  return /^[\x20-\x7e]$/.test(c) ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`
}

function applyPax(h: TarHeader, records: Map<string, Buffer>, where: string): void {
  const int = (key: string): number | undefined => {
    const v = records.get(key)
    if (v === undefined) return undefined
    const text = v.toString('utf8')
    const n = Number(text.split('.')[0])
    if (!/^-?\d+(\.\d*)?$/.test(text) || !Number.isSafeInteger(n)) throw new LazyError('NOT_A_TAR', `${where}: bad PAX ${key}=${JSON.stringify(text)}`)
    return n
  }
  for (const [key, value] of records) {
    if (key.startsWith('SCHILY.xattr.')) h.xattrs.set(key.slice('SCHILY.xattr.'.length), value)
  }
  const path = records.get('path')
  if (path) h.name = path.toString('utf8')
  const linkpath = records.get('linkpath')
  if (linkpath) h.linkname = linkpath.toString('utf8')
  const uname = records.get('uname')
  if (uname) h.uname = uname.toString('utf8')
  const gname = records.get('gname')
  if (gname) h.gname = gname.toString('utf8')
  h.uid = int('uid') ?? h.uid
  h.gid = int('gid') ?? h.gid
  h.size = int('size') ?? h.size
  h.mtime = int('mtime') ?? h.mtime
  if (h.size < 0 || h.uid < 0 || h.gid < 0) throw new LazyError('NOT_A_TAR', `${where}: negative size or id`)
}
