// tar → eStargz. Two passes, memory bounded by a few chunks:
//  1. Read the input tar; cut every regular file into chunks; compress each chunk into its own
//     gzip member on the thread pool, several at once, and append the members, in order, to a
//     temp file. Only entry metadata stays in memory.
//  2. Decide the final order (landmark, prioritized files, later duplicates replacing earlier
//     ones), then assemble the blob: tar headers gathered into small members of their own, each
//     payload member copied from the temp file, the TOC member and the footer.
// Every payload starts a member; headers sit in the member before it, which the spec allows. The
// output depends only on the input and the options (level, chunk size), not on timing or cores.
import {createHash, type Hash} from 'node:crypto'
import {mkdtemp, open, rm, type FileHandle} from 'node:fs/promises'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import type {Writable} from 'node:stream'
import {promisify} from 'node:util'
import {gunzip, gzip, gzipSync} from 'node:zlib'
import {LazyError} from '../cli/errors.js'
import {encodeFooter} from './footer.js'
import {decompressedTar} from './input.js'
import {BLOCK_SIZE, TYPEFLAG, emptyHeader, encodeTarHeader, paddingFor, type TarHeader} from './tar-header.js'
import {TarReader} from './tar-reader.js'
import {canonicalPath, serializeToc} from './toc-codec.js'
import {
  DEFAULT_CHUNK_SIZE, DEFAULT_COMPRESSION_LEVEL, LANDMARK_CONTENT, MAX_TOC_SIZE, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK,
  TOC_TAR_NAME, TOC_VERSION, type TocEntry, type TocEntryType,
} from './toc.js'

const gzipAsync = promisify(gzip)
const gunzipAsync = promisify(gunzip)

export interface EstargzWriterOptions {
  /** Uncompressed bytes per chunk (default 4 MiB). */
  chunkSize?: number
  /** gzip level 1–9 (default 9). */
  compressionLevel?: number
  /** Paths to put first, in order (then `.prefetch.landmark`); none → `.no.prefetch.landmark` first. */
  prioritizedFiles?: string[]
  /** Chunks compressed at once (default: the number of cores). */
  concurrency?: number
  /** Where the temp file of compressed chunks lives (default: the OS temp dir). */
  tempDir?: string
  /** Names the input in error messages. */
  label?: string
}

export interface EstargzResult {
  /** `sha256:<hex>` of the blob. */
  blobDigest: string
  blobSize: number
  /** `sha256:<hex>` of the TOC JSON: the `containerd.io/snapshot/stargz/toc.digest` annotation. */
  tocDigest: string
  /** Bytes of the decompressed blob: the `io.containers.estargz.uncompressed-size` annotation. */
  uncompressedSize: number
  /** `sha256:<hex>` of the decompressed blob: the layer's new diffID. */
  diffID: string
  /** Compressed offset of the TOC member. */
  tocOffset: number
  /** Number of TOC entries. */
  entries: number
  /** Prioritized paths that were not in this layer (ignored, as ctr-remote does). */
  missingPrioritized: string[]
}

interface ChunkRecord {
  chunkOffset: number
  chunkSize: number
  digest: string
  /** Where the compressed member lies in the temp file (filled when it is written). */
  tempOffset: number
  tempLength: number
  /** The member itself, for payloads made in pass 2 (landmarks). */
  inline?: Buffer
}

interface EntryRecord {
  header: TarHeader
  path: string
  fileDigest: string
  chunks: ChunkRecord[]
}

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

export function checkWriterOptions(options: EstargzWriterOptions): {chunkSize: number; level: number; concurrency: number} {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE
  const level = options.compressionLevel ?? DEFAULT_COMPRESSION_LEVEL
  // The format allows large chunks, and so does this API; the CLI stops at MAX_CHUNK_SIZE, the
  // largest chunk lazy readers accept (larger ones make a layer fall back to a full download).
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1 || chunkSize > 1 << 30) throw new LazyError('USAGE', `chunk size ${chunkSize} must be between 1 byte and 1 GiB`)
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new LazyError('USAGE', `compression level ${level} must be 1 to 9`)
  const concurrency = Math.max(1, options.concurrency ?? availableParallelism())
  return {chunkSize, level, concurrency}
}

/**
 * Converts a tar stream (plain, gzip or zstd) into an eStargz blob written to `output` (which is
 * not ended: the caller owns it). Resolves with the blob's digests and sizes.
 */
export async function convertToEstargz(input: AsyncIterable<Buffer | Uint8Array | string>, output: Writable, options: EstargzWriterOptions = {}): Promise<EstargzResult> {
  const {chunkSize, level, concurrency} = checkWriterOptions(options)
  const label = options.label ?? 'input'
  const prioritized = options.prioritizedFiles ?? []
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'lazyctl-estargz-'))
  const temp = await open(join(dir, 'chunks'), 'w+')
  try {
    const compressor = new ChunkCompressor(temp, level, concurrency, chunkSize)
    // While entries stay in input order, the diffID is hashed as we go; otherwise pass 2 inflates.
    const streamHash = prioritized.length === 0 ? createHash('sha256') : null
    const landmark = landmarkRecord(prioritized.length === 0 ? NO_PREFETCH_LANDMARK : PREFETCH_LANDMARK, level)
    if (streamHash) hashEntry(streamHash, landmark.header, Buffer.from([LANDMARK_CONTENT]))
    let inOrder = streamHash !== null
    const records: (EntryRecord | null)[] = []
    const byPath = new Map<string, number>()
    const tar = new TarReader(decompressedTar(input, label), {label})
    for (let header = await tar.next(); header; header = await tar.next()) {
      const path = canonicalPath(header.name, `${label}: tar entry`)
      if (path === TOC_TAR_NAME || path === PREFETCH_LANDMARK || path === NO_PREFETCH_LANDMARK) continue
      if (path === '' && header.typeflag !== TYPEFLAG.dir) throw new LazyError('NOT_A_TAR', `${label}: the root entry ${JSON.stringify(header.name)} is not a directory`)
      if (header.typeflag === TYPEFLAG.hardlink) canonicalPath(header.linkname, `${label}: hardlink target of ${JSON.stringify(header.name)}`)
      const record: EntryRecord = {header, path, fileDigest: '', chunks: []}
      streamHash?.update(encodeTarHeader(header))
      if (header.typeflag === TYPEFLAG.reg) {
        const fileHash = header.size > chunkSize ? createHash('sha256') : null
        for (let off = 0; off < header.size; off += chunkSize) {
          const n = Math.min(chunkSize, header.size - off)
          const last = off + n === header.size
          // One buffer for the chunk and, on the last chunk, the tar padding that shares its member.
          const pad = last ? paddingFor(header.size) : 0
          const payload = Buffer.allocUnsafe(n + pad)
          payload.fill(0, n)
          await tar.readBodyInto(payload, 0, n)
          const data = payload.subarray(0, n)
          const digest = sha256(data)
          fileHash?.update(data)
          streamHash?.update(payload)
          const chunk: ChunkRecord = {chunkOffset: off, chunkSize: n, digest, tempOffset: -1, tempLength: 0}
          record.chunks.push(chunk)
          await compressor.submit(payload, chunk)
          if (!fileHash) record.fileDigest = digest
        }
        if (fileHash) record.fileDigest = `sha256:${fileHash.digest('hex')}`
        if (header.size === 0) record.fileDigest = EMPTY_SHA256
      }
      const previous = byPath.get(path)
      if (previous !== undefined) {
        // A later entry with the same path replaces the earlier one, at the later position.
        records[previous] = null
        inOrder = false
      }
      byPath.set(path, records.length)
      records.push(record)
    }
    await compressor.finish()
    const live = records.filter((r): r is EntryRecord => r !== null)
    const {order, missing} = finalOrder(live, prioritized, landmark)
    const result = await assemble(order, temp, output, level, inOrder ? streamHash : null)
    return {...result, missingPrioritized: missing}
  } finally {
    await temp.close().catch(() => undefined)
    await rm(dir, {recursive: true, force: true})
  }
}

function hashEntry(hash: Hash, header: TarHeader, body: Buffer): void {
  hash.update(encodeTarHeader(header))
  hash.update(body)
  hash.update(Buffer.alloc(paddingFor(body.length)))
}

function landmarkRecord(name: string, level: number): EntryRecord {
  const header = {...emptyHeader(name, TYPEFLAG.reg), size: 1}
  const payload = Buffer.alloc(BLOCK_SIZE)
  payload[0] = LANDMARK_CONTENT
  const digest = sha256(Buffer.from([LANDMARK_CONTENT]))
  const chunk: ChunkRecord = {chunkOffset: 0, chunkSize: 1, digest, tempOffset: -1, tempLength: 0, inline: gzipSync(payload, {level})}
  return {header, path: name, fileDigest: digest, chunks: [chunk]}
}

/** Orders entries as the reference writer does (estargz.Build's sortEntries / moveRec). */
function finalOrder(live: EntryRecord[], prioritized: string[], landmark: EntryRecord): {order: EntryRecord[]; missing: string[]} {
  if (prioritized.length === 0) return {order: [landmark, ...live], missing: []}
  const byPath = new Map(live.map((r) => [r.path, r]))
  const moved = new Set<EntryRecord>()
  const first: EntryRecord[] = []
  const missing: string[] = []
  const move = (path: string, depth: number): void => {
    const record = byPath.get(path)
    if (path !== '') {
      const slash = path.lastIndexOf('/')
      move(slash < 0 ? '' : path.slice(0, slash), depth + 1)
    }
    if (!record || moved.has(record) || depth > 4096) return
    if (record.header.typeflag === TYPEFLAG.hardlink) {
      try {
        move(canonicalPath(record.header.linkname, 'hardlink target'), depth + 1)
      } catch {
        // an unsafe link target is refused when the entry itself is written
      }
    }
    if (moved.has(record)) return
    moved.add(record)
    first.push(record)
  }
  for (const raw of prioritized) {
    let path: string
    try {
      path = canonicalPath(raw.replace(/^\/+/, '').replace(/^(\.\.\/)+/, ''), 'prioritized file')
    } catch {
      missing.push(raw)
      continue
    }
    if (!byPath.has(path)) {
      missing.push(raw)
      continue
    }
    move(path, 0)
  }
  return {order: [...first, landmark, ...live.filter((r) => !moved.has(r))], missing}
}

/** Compresses payloads concurrently on the thread pool and appends the members in submission order. */
class ChunkCompressor {
  private readonly queue: {member: Promise<Buffer>; bytes: number; chunk: ChunkRecord}[] = []
  private inflightBytes = 0
  private position = 0
  private readonly maxBytes: number
  private readonly maxJobs: number

  constructor(
    private readonly file: FileHandle,
    private readonly level: number,
    concurrency: number,
    chunkSize: number,
  ) {
    // Enough queued work to keep every core busy while the head is written out.
    this.maxBytes = Math.max(chunkSize * (concurrency + 1), 8 << 20)
    this.maxJobs = Math.max(8, concurrency * 8)
  }

  async submit(payload: Buffer, chunk: ChunkRecord): Promise<void> {
    const member = gzipAsync(payload, {level: this.level})
    member.catch(() => undefined) // awaited in order below; this only silences the early rejection
    this.queue.push({member, bytes: payload.length, chunk})
    this.inflightBytes += payload.length
    while (this.inflightBytes > this.maxBytes || this.queue.length > this.maxJobs) await this.writeHead()
  }

  async finish(): Promise<void> {
    while (this.queue.length > 0) await this.writeHead()
  }

  private async writeHead(): Promise<void> {
    const job = this.queue.shift()!
    const member = await job.member
    await writeAll(this.file, member, this.position)
    job.chunk.tempOffset = this.position
    job.chunk.tempLength = member.length
    this.position += member.length
    this.inflightBytes -= job.bytes
  }
}

async function writeAll(file: FileHandle, data: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < data.length) {
    const {bytesWritten} = await file.write(data, done, data.length - done, position + done)
    done += bytesWritten
  }
}

/** Writes to a stream with back-pressure, hashing and counting what goes out. */
class BlobSink {
  readonly hash = createHash('sha256')
  size = 0

  constructor(private readonly output: Writable) {}

  async write(data: Buffer): Promise<void> {
    if (this.output.errored || this.output.destroyed) {
      throw new LazyError('IO', `cannot write the blob: ${this.output.errored?.message ?? 'output closed'}`, {cause: this.output.errored})
    }
    this.hash.update(data)
    this.size += data.length
    if (!this.output.write(data)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          this.output.off('error', onError)
          resolve()
        }
        const onError = (err: Error): void => {
          this.output.off('drain', onDrain)
          reject(err)
        }
        this.output.once('drain', onDrain)
        this.output.once('error', onError)
      })
    }
  }
}

function tocType(typeflag: string): TocEntryType {
  switch (typeflag) {
    case TYPEFLAG.reg: return 'reg'
    case TYPEFLAG.hardlink: return 'hardlink'
    case TYPEFLAG.symlink: return 'symlink'
    case TYPEFLAG.char: return 'char'
    case TYPEFLAG.block: return 'block'
    case TYPEFLAG.dir: return 'dir'
    case TYPEFLAG.fifo: return 'fifo'
    default: throw new LazyError('INTERNAL', `unexpected typeflag ${typeflag}`)
  }
}

function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

async function assemble(order: EntryRecord[], temp: FileHandle, output: Writable, level: number, streamHash: Hash | null): Promise<Omit<EstargzResult, 'missingPrioritized'>> {
  const sink = new BlobSink(output)
  const diffHash = streamHash ?? createHash('sha256')
  let uncompressed = 0
  let headerRun: Buffer[] = []
  const flushHeaders = async (): Promise<void> => {
    if (headerRun.length === 0) return
    const run = Buffer.concat(headerRun)
    headerRun = []
    if (!streamHash) diffHash.update(run)
    await sink.write(gzipSync(run, {level}))
  }
  const entries: TocEntry[] = []
  const lastUserName = new Map<number, string>()
  const lastGroupName = new Map<number, string>()
  for (const record of order) {
    const h = record.header
    const headerBytes = encodeTarHeader(h)
    headerRun.push(headerBytes)
    uncompressed += headerBytes.length
    const entry: TocEntry = {name: h.name, type: tocType(h.typeflag)}
    if (entry.type === 'reg') entry.size = h.size
    if (h.mtime > 0) entry.modtime = rfc3339(h.mtime)
    if (entry.type === 'symlink' || entry.type === 'hardlink') entry.linkName = h.linkname
    entry.mode = h.mode
    entry.uid = h.uid
    entry.gid = h.gid
    // Names are written once per id (and again when they change); readers back-fill the rest.
    if (lastUserName.get(h.uid) !== h.uname) {
      entry.userName = h.uname
      lastUserName.set(h.uid, h.uname)
    }
    if (lastGroupName.get(h.gid) !== h.gname) {
      entry.groupName = h.gname
      lastGroupName.set(h.gid, h.gname)
    }
    if (entry.type === 'char' || entry.type === 'block') {
      entry.devMajor = h.devmajor
      entry.devMinor = h.devminor
    }
    if (h.xattrs.size > 0) entry.xattrs = Object.fromEntries([...h.xattrs].map(([k, v]) => [k, v.toString('base64')]))
    if (entry.type === 'reg') entry.digest = record.fileDigest
    entries.push(entry)
    if (record.chunks.length === 0) continue
    await flushHeaders()
    for (let i = 0; i < record.chunks.length; i++) {
      const chunk = record.chunks[i]!
      const last = i === record.chunks.length - 1
      const target: TocEntry = i === 0 ? entry : {name: h.name, type: 'chunk'}
      target.offset = sink.size
      if (i > 0) target.chunkOffset = chunk.chunkOffset
      // The spec's rule: every chunk but the last records its size; the last means "to the end".
      if (!last) target.chunkSize = chunk.chunkSize
      target.chunkDigest = chunk.digest
      if (i > 0) entries.push(target)
      const member = chunk.inline ?? (await readTemp(temp, chunk))
      await sink.write(member)
      const payloadBytes = chunk.chunkSize + (last ? paddingFor(h.size) : 0)
      uncompressed += payloadBytes
      if (!streamHash) diffHash.update(await gunzipAsync(member))
    }
  }
  await flushHeaders()

  const tocJson = serializeToc({version: TOC_VERSION, entries})
  if (tocJson.length > MAX_TOC_SIZE) {
    throw new LazyError('ESTARGZ_TOC_TOO_LARGE', `the layer's TOC would be ${tocJson.length} bytes, more than the ${MAX_TOC_SIZE}-byte limit readers accept`)
  }
  const tocDigest = sha256(tocJson)
  const tocHeader = encodeTarHeader({...emptyHeader(TOC_TAR_NAME, TYPEFLAG.reg), size: tocJson.length})
  // The TOC entry, its padding and the tar end-of-archive (two zero blocks) form the last member.
  const tocTar = Buffer.concat([tocHeader, tocJson, Buffer.alloc(paddingFor(tocJson.length) + 2 * BLOCK_SIZE)])
  diffHash.update(tocTar)
  uncompressed += tocTar.length
  const tocOffset = sink.size
  await sink.write(await gzipAsync(tocTar, {level}))
  await sink.write(encodeFooter(tocOffset))
  return {
    blobDigest: `sha256:${sink.hash.digest('hex')}`,
    blobSize: sink.size,
    tocDigest,
    uncompressedSize: uncompressed,
    diffID: `sha256:${diffHash.digest('hex')}`,
    tocOffset,
    entries: entries.length,
  }
}

async function readTemp(temp: FileHandle, chunk: ChunkRecord): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(chunk.tempLength)
  let done = 0
  while (done < buf.length) {
    const {bytesRead} = await temp.read(buf, done, buf.length - done, chunk.tempOffset + done)
    if (bytesRead === 0) throw new LazyError('IO', 'temp file of compressed chunks ended early')
    done += bytesRead
  }
  return buf
}
