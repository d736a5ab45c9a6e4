// Random access into an uncompressed tar (OCI and docker-save archives): one pass over the
// headers records where each regular file's bytes are, then files are read in place with
// ranged reads, never extracted. Names that escape the archive root are refused.
import {createReadStream} from 'node:fs'
import {open, type FileHandle} from 'node:fs/promises'
import {Readable} from 'node:stream'
import {LazyError} from '../cli/errors.js'

export interface TarMember {
  offset: number
  size: number
}

const BLOCK = 512

function octal(buf: Buffer, start: number, length: number): number {
  const field = buf.subarray(start, start + length)
  if (field[0]! & 0x80) {
    // base-256 (GNU) for sizes ≥ 8 GiB
    let n = 0
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!
    return n
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim()
  return text === '' ? 0 : parseInt(text, 8)
}

function cString(buf: Buffer, start: number, length: number): string {
  const field = buf.subarray(start, start + length)
  const nul = field.indexOf(0)
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8')
}

function normalise(name: string, file: string): string | undefined {
  const parts: string[] = []
  for (const p of name.split('/')) {
    if (p === '' || p === '.') continue
    if (p === '..') throw new LazyError('ESTARGZ_UNSAFE_PATH', `${file}: archive entry "${name}" escapes the archive root`)
    parts.push(p)
  }
  return parts.length ? parts.join('/') : undefined
}

function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>()
  let i = 0
  while (i < data.length) {
    const sp = data.indexOf(0x20, i)
    if (sp < 0) break
    const len = parseInt(data.subarray(i, sp).toString('ascii'), 10)
    if (!Number.isFinite(len) || len <= 0) break
    const rec = data.subarray(sp + 1, i + len - 1).toString('utf8')
    const eq = rec.indexOf('=')
    if (eq > 0) out.set(rec.slice(0, eq), rec.slice(eq + 1))
    i += len
  }
  return out
}

export class TarIndex {
  private constructor(
    readonly file: string,
    private readonly fh: FileHandle,
    readonly members: Map<string, TarMember>,
  ) {}

  static async open(file: string): Promise<TarIndex> {
    let fh: FileHandle
    try {
      fh = await open(file, 'r')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') throw new LazyError('NOT_FOUND', `${file}: no such file`, {cause: err})
      throw new LazyError('IO', `${file}: cannot open: ${code ?? (err as Error).message}`, {cause: err})
    }
    try {
      const size = (await fh.stat()).size
      const members = new Map<string, TarMember>()
      const header = Buffer.alloc(BLOCK)
      let pos = 0
      let longName: string | undefined
      let pax: Map<string, string> | undefined
      while (pos + BLOCK <= size) {
        await readFully(fh, header, pos)
        if (header.every((b) => b === 0)) break
        if (!header.subarray(257, 262).toString('latin1').startsWith('ustar') && !checksumOk(header)) {
          throw new LazyError('NOT_A_TAR', `${file}: not a tar archive (bad header at byte ${pos})`)
        }
        const type = String.fromCharCode(header[156] || 0x30)
        let entrySize = octal(header, 124, 12)
        const prefix = cString(header, 345, 155)
        let name = cString(header, 0, 100)
        if (prefix && header.subarray(257, 263).toString('latin1') === 'ustar\u000000') name = `${prefix}/${name}`
        const dataStart = pos + BLOCK
        if (type === 'x' || type === 'L') {
          if (entrySize > 1 << 20) throw new LazyError('NOT_A_TAR', `${file}: oversized extended header at byte ${pos}`)
          const data = Buffer.alloc(entrySize)
          await readFully(fh, data, dataStart)
          if (type === 'x') pax = paxRecords(data)
          else longName = data.toString('utf8').replace(/\0+$/, '')
        } else if (type !== 'g') {
          if (longName !== undefined) name = longName
          if (pax?.has('path')) name = pax.get('path')!
          if (pax?.has('size')) entrySize = Number(pax.get('size'))
          longName = undefined
          pax = undefined
          if (type === '0' || type === '\0' || type === '7') {
            const key = normalise(name, file)
            if (key) {
              if (dataStart + entrySize > size) throw new LazyError('NOT_A_TAR', `${file}: truncated (member ${key} runs past the end)`)
              members.set(key, {offset: dataStart, size: entrySize})
            }
          }
        }
        pos = dataStart + Math.ceil(entrySize / BLOCK) * BLOCK
      }
      return new TarIndex(file, fh, members)
    } catch (err) {
      await fh.close()
      throw err
    }
  }

  has(name: string): boolean {
    return this.members.has(name)
  }

  size(name: string): number | undefined {
    return this.members.get(name)?.size
  }

  async read(name: string): Promise<Buffer> {
    const m = this.members.get(name)
    if (!m) throw new LazyError('NOT_FOUND', `${this.file}: no ${name} in the archive`)
    const buf = Buffer.alloc(m.size)
    await readFully(this.fh, buf, m.offset)
    return buf
  }

  stream(name: string): Readable {
    const m = this.members.get(name)
    if (!m) throw new LazyError('NOT_FOUND', `${this.file}: no ${name} in the archive`)
    if (m.size === 0) return Readable.from([])
    return createReadStream(this.file, {start: m.offset, end: m.offset + m.size - 1})
  }

  async readAt(name: string, offset: number, length: number): Promise<Buffer> {
    const m = this.members.get(name)
    if (!m) throw new LazyError('NOT_FOUND', `${this.file}: no ${name} in the archive`)
    if (offset + length > m.size) throw new LazyError('ESTARGZ_TRUNCATED', `${this.file}:${name}: read past the end`)
    const buf = Buffer.alloc(length)
    await readFully(this.fh, buf, m.offset + offset)
    return buf
  }

  async close(): Promise<void> {
    await this.fh.close()
  }
}

function checksumOk(h: Buffer): boolean {
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!
  return sum === octal(h, 148, 8)
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < buf.length) {
    const {bytesRead} = await fh.read(buf, done, buf.length - done, position + done)
    if (bytesRead === 0) throw new LazyError('NOT_A_TAR', `truncated archive (wanted ${buf.length} bytes at ${position})`)
    done += bytesRead
  }
}
