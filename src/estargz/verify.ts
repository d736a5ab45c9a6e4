// Full verification of a blob: footer and TOC (and its expected digest), every chunk through
// the random-access path (so every recorded offset is a real member start holding the right
// bytes), then the whole blob as one tar.gz stream whose entries must match the TOC one to one.
import {createHash} from 'node:crypto'
import {createGunzip} from 'node:zlib'
import {Readable} from 'node:stream'
import {LazyError} from '../cli/errors.js'
import type {RandomAccessSource} from './random-access.js'
import {openEstargz, type ChunkRef} from './reader.js'
import {TYPEFLAG} from './tar-header.js'
import {TarReader} from './tar-reader.js'
import {canonicalPath} from './toc-codec.js'
import {TOC_TAR_NAME, type TocEntry} from './toc.js'

export interface VerifyResult {
  tocDigest: string
  blobSize: number
  /** TOC entries (files, dirs, links, chunks …). */
  entries: number
  chunks: number
  /** Bytes of the decompressed blob and their sha256 (the layer's diffID). */
  uncompressedSize: number
  diffID: string
}

const TYPE_OF_FLAG: Record<string, string> = {
  [TYPEFLAG.reg]: 'reg', [TYPEFLAG.hardlink]: 'hardlink', [TYPEFLAG.symlink]: 'symlink', [TYPEFLAG.char]: 'char',
  [TYPEFLAG.block]: 'block', [TYPEFLAG.dir]: 'dir', [TYPEFLAG.fifo]: 'fifo',
}

export async function verifyEstargz(source: RandomAccessSource, options: {expectedTocDigest?: string; label?: string} = {}): Promise<VerifyResult> {
  const label = options.label ?? 'blob'
  const reader = await openEstargz(source, options)
  const entries = reader.toc.entries

  // 1. Every chunk, by random access, with bounded parallelism.
  const chunks: ChunkRef[] = []
  const seen = new Set<object>()
  const collect = (node: typeof reader.root): void => {
    if (seen.has(node)) return
    seen.add(node)
    chunks.push(...node.chunks)
    for (const child of node.children?.values() ?? []) collect(child)
  }
  collect(reader.root)
  // Landmarks are hidden from the tree but are files with chunks too.
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < chunks.length) {
      const chunk = chunks[next++]!
      const compressed = await source.readAt(chunk.compressedOffset, chunk.compressedEnd - chunk.compressedOffset)
      await reader.decodeChunk(chunk, compressed)
    }
  }
  await Promise.all([worker(), worker(), worker(), worker()])

  // 2. The blob as an ordinary tar.gz: entries, metadata and bytes must be those the TOC lists.
  const diff = createHash('sha256')
  let uncompressedSize = 0
  const gunzip = createGunzip()
  const stream = Readable.from(blobPieces(source)).pipe(gunzip)
  const counted = (async function* () {
    try {
      for await (const piece of stream) {
        diff.update(piece as Buffer)
        uncompressedSize += (piece as Buffer).length
        yield piece as Buffer
      }
    } catch (err) {
      throw new LazyError('ESTARGZ_MISMATCH', `${label} is not a valid gzip stream: ${(err as Error).message}`, {cause: err})
    }
  })()
  const tar = new TarReader(counted, {label: `${label} (decompressed)`})
  let i = 0
  let chunkCount = 0
  const mismatch = (what: string): LazyError => new LazyError('ESTARGZ_MISMATCH', `${label}: ${what}`)
  for (let h = await tar.next(); h; h = await tar.next()) {
    if (canonicalPath(h.name, 'tar entry') === TOC_TAR_NAME) {
      if (i !== entries.length) throw mismatch(`the tar has the TOC after ${i} entries, the TOC lists ${entries.length}`)
      const json = await tar.readBody(h.size)
      if (`sha256:${createHash('sha256').update(json).digest('hex')}` !== reader.tocDigest) throw mismatch('the TOC tar entry differs from the TOC the footer points at')
      if (await tar.next()) throw mismatch('there are tar entries after the TOC')
      break
    }
    const e: TocEntry | undefined = entries[i++]
    if (!e) throw mismatch(`tar entry ${JSON.stringify(h.name)} is not in the TOC`)
    const where = `tar entry ${JSON.stringify(h.name)} (TOC entry ${i - 1})`
    const check = (field: string, tarValue: unknown, tocValue: unknown): void => {
      if (tarValue !== tocValue) throw mismatch(`${where}: ${field} is ${JSON.stringify(tarValue)} in the tar, ${JSON.stringify(tocValue)} in the TOC`)
    }
    check('name', h.name, e.name)
    check('type', TYPE_OF_FLAG[h.typeflag], e.type)
    check('mode', h.mode, e.mode ?? 0)
    check('uid', h.uid, e.uid ?? 0)
    check('gid', h.gid, e.gid ?? 0)
    // The TOC rounds to the second; a tar may carry a fractional PAX mtime that was floored.
    if (e.modtime && Math.abs(h.mtime - Date.parse(e.modtime) / 1000) > 1) check('modtime', h.mtime, Date.parse(e.modtime) / 1000)
    if (e.type === 'symlink' || e.type === 'hardlink') check('linkName', h.linkname, e.linkName ?? '')
    if (e.type === 'char' || e.type === 'block') {
      check('devMajor', h.devmajor, e.devMajor ?? 0)
      check('devMinor', h.devminor, e.devMinor ?? 0)
    }
    const tarXattrs = JSON.stringify(Object.fromEntries([...h.xattrs].map(([k, v]) => [k, v.toString('base64')]).sort()))
    const tocXattrs = JSON.stringify(Object.fromEntries(Object.entries(e.xattrs ?? {}).sort()))
    check('xattrs', tarXattrs, tocXattrs)
    if (e.type !== 'reg') continue
    check('size', h.size, e.size ?? 0)
    const whole = createHash('sha256')
    let chunk: TocEntry = e
    for (let off = 0; off < h.size;) {
      if (off > 0) {
        chunk = entries[i++]!
        if (chunk?.type !== 'chunk') throw mismatch(`${where}: the TOC lists no chunk at file offset ${off}`)
      }
      const size = chunk.chunkSize || h.size - off
      const data = await tar.readBody(size)
      whole.update(data)
      if (`sha256:${createHash('sha256').update(data).digest('hex')}` !== chunk.chunkDigest) throw mismatch(`${where}: bytes ${off}..${off + size} do not match the chunkDigest`)
      chunkCount++
      off += size
    }
    if (e.digest && `sha256:${whole.digest('hex')}` !== e.digest) throw mismatch(`${where}: content does not match the TOC digest`)
  }
  if (i !== entries.length) throw mismatch(`the tar ends after ${i} of the TOC's ${entries.length} entries`)
  return {tocDigest: reader.tocDigest, blobSize: source.size, entries: entries.length, chunks: chunkCount, uncompressedSize, diffID: `sha256:${diff.digest('hex')}`}
}

async function* blobPieces(source: RandomAccessSource): AsyncGenerator<Buffer> {
  const piece = 1 << 20
  for (let at = 0; at < source.size; at += piece) yield await source.readAt(at, Math.min(piece, source.size - at))
}
