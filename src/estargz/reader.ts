// Random-access eStargz reader: footer → TOC (checked against its expected digest) → a file
// tree → any byte range of any file, chunk by chunk, each chunk checked against its
// `chunkDigest` before a single byte of it is returned. The chunk-plan functions are what the lazy
// filesystem uses to fetch, cache and verify chunks on its own terms.
import {createHash} from 'node:crypto'
import {gunzip, inflateRawSync} from 'node:zlib'
import {promisify} from 'node:util'
import {LazyError} from '../cli/errors.js'
import {decodeFooter, type Footer} from './footer.js'
import {inflateRange} from './inflate.js'
import type {RandomAccessSource} from './random-access.js'
import {BLOCK_SIZE, decodeUstarBlock} from './tar-header.js'
import {memoizedModtimeSeconds} from './modtime.js'
import {canonicalPath, parseTocInSlices} from './toc-codec.js'
import {SLICE_ENTRIES, runInTurns, type Sliced} from './slices.js'
import {FOOTER_SIZE, LEGACY_FOOTER_SIZE, MAX_CHUNK_SPAN, MAX_FOOTER_SIZE, MAX_TOC_SIZE, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME, type Toc, type TocEntry} from './toc.js'

const gunzipAsync = promisify(gunzip)

export type NodeType = 'dir' | 'reg' | 'symlink' | 'char' | 'block' | 'fifo'

/** One chunk of a regular file and where its gzip member lies in the blob. */
export interface ChunkRef {
  /** Offset of the chunk within the uncompressed file. */
  chunkOffset: number
  /** Uncompressed size of the chunk. */
  chunkSize: number
  /** Start of the gzip member holding the chunk (the TOC entry's `offset`). */
  compressedOffset: number
  /** End of the compressed range to fetch: the next member start (next payload or the TOC). */
  compressedEnd: number
  /** Uncompressed bytes before the chunk inside its member (non-zero only with packed members). */
  innerOffset: number
  /** `sha256:<hex>` of the chunk's bytes; empty when the TOC has none (reads then fail). */
  chunkDigest: string
}

/** A file-system object of the layer; hard links to it share the same object. */
export interface EstargzNode {
  /** Canonical path of the first name this object was found under ("" is the root). */
  path: string
  type: NodeType
  /** Permission bits with setuid/setgid/sticky (mode & 0o7777). */
  mode: number
  uid: number
  gid: number
  userName: string
  groupName: string
  /** Modification time in seconds since the epoch (0 when absent). */
  mtime: number
  size: number
  /** Symlink target. */
  linkName: string
  devMajor: number
  devMinor: number
  /** Shared and empty for the many entries without xattrs: never modify it. */
  xattrs: ReadonlyMap<string, Buffer>
  /** `sha256:<hex>` of the whole file, when recorded. */
  digest: string
  /** Number of names referring to this object (dirs: 2 + subdirectories). */
  numLink: number
  /** Regular files only; other types share one frozen empty array. */
  chunks: ChunkRef[]
  /** Directory entries by name (dirs only). */
  children: Map<string, EstargzNode> | null
  /** The TOC entry this object came from (null for synthesized parent directories). */
  entry: TocEntry | null
}

/** What the layer says about prefetching. */
export type PrefetchHint =
  | {kind: 'landmark'; /** prefetch compressed bytes [0, end) */ end: number}
  | {kind: 'no-prefetch'}
  | {kind: 'none'}

export interface OpenEstargzOptions {
  /** `sha256:<hex>` the TOC must hash to (the `containerd.io/snapshot/stargz/toc.digest` annotation). */
  expectedTocDigest?: string
  /** Names the blob in error messages. */
  label?: string
  /**
   * When the footer does not parse, read up to 4 MiB of the blob's end to tell a truncated
   * eStargz blob from one that is not eStargz (default true). Off for guesses (resolving layers
   * ahead), where a plain gzip layer must cost no more than its footer read.
   */
  diagnoseTruncation?: boolean
}

export interface EstargzReader {
  readonly source: RandomAccessSource
  readonly footer: Footer
  readonly toc: Toc
  /** `sha256:<hex>` of the TOC JSON bytes. */
  readonly tocDigest: string
  readonly root: EstargzNode
  readonly prefetch: PrefetchHint
  /** The node at `path` (any form: "a/b", "/a/b", "./a/b"), or null. */
  lookup(path: string): EstargzNode | null
  /** Directory entries of `dir` by name (landmarks at the root are hidden). */
  children(dir: string | EstargzNode): Map<string, EstargzNode>
  /** Every chunk of every file in the tree (hard links once), in blob order; computed once. */
  allChunks(): readonly ChunkRef[]
  /** The chunks covering [offset, offset+length) of a regular file, in order. */
  chunksFor(file: string | EstargzNode, offset: number, length: number): ChunkRef[]
  /** Inflates one chunk from its compressed range and checks its digest. */
  decodeChunk(chunk: ChunkRef, compressed: Buffer): Promise<Buffer>
  /** Verified bytes [offset, offset+length) of a regular file (shorter at end of file). */
  readFile(file: string | EstargzNode, offset?: number, length?: number): Promise<Buffer>
  /** Verified chunks of a whole file, in order, one chunk in memory at a time. */
  fileChunks(file: string | EstargzNode): AsyncGenerator<Buffer>
}

export async function openEstargz(source: RandomAccessSource, options: OpenEstargzOptions = {}): Promise<EstargzReader> {
  const label = options.label ?? 'blob'
  const tailSize = Math.min(source.size, MAX_FOOTER_SIZE)
  const tail = await source.readAt(source.size - tailSize, tailSize)
  let footer: Footer
  try {
    footer = decodeFooter(tail)
  } catch (err) {
    if (options.diagnoseTruncation !== false && await endsShortAfterToc(source)) {
      throw new LazyError('ESTARGZ_TRUNCATED', `${label} is truncated: it has a TOC but no footer after it`, {cause: err})
    }
    throw err
  }
  const tocEnd = source.size - footer.size
  if (footer.tocOffset >= tocEnd) {
    throw new LazyError('ESTARGZ_TRUNCATED', `${label}: the footer puts the TOC at ${footer.tocOffset}, but the blob's data ends at ${tocEnd} (truncated?)`)
  }
  if (tocEnd - footer.tocOffset > MAX_TOC_SIZE) {
    throw new LazyError('ESTARGZ_TOC_TOO_LARGE', `${label}: compressed TOC is ${tocEnd - footer.tocOffset} bytes, more than the ${MAX_TOC_SIZE}-byte limit`)
  }
  const tocJson = await readTocJson(source, footer.tocOffset, tocEnd, label)
  const tocDigest = `sha256:${createHash('sha256').update(tocJson).digest('hex')}`
  if (options.expectedTocDigest !== undefined && options.expectedTocDigest !== tocDigest) {
    throw new LazyError('ESTARGZ_TOC_DIGEST', `${label}: TOC digest is ${tocDigest}, expected ${options.expectedTocDigest}`, {
      hint: 'the blob does not match the manifest annotation; it may have been altered or recompressed',
    })
  }
  // In slices with turns of the event loop between them: a snapshotter keeps serving other layers.
  return oneTocAtATime(async () => {
    const {toc, paths} = await runInTurns(parseTocInSlices(tocJson, {dataEnd: footer.tocOffset}))
    const reader = new Reader(source, footer, toc, tocDigest, label)
    await runInTurns(reader.index(paths))
    return reader
  })
}

let tocTurn: Promise<unknown> = Promise.resolve()

/**
 * TOCs are parsed one at a time (their fetches still overlap): parsing runs on the one JS thread
 * anyway, so taking turns costs no throughput, and a snapshotter resolving eight layers ahead holds
 * one TOC's parse garbage at a time, not eight.
 */
function oneTocAtATime<T>(work: () => Promise<T>): Promise<T> {
  const run = tocTurn.then(work, work)
  tocTurn = run.catch(() => undefined)
  return run
}

/** Inflates the TOC member and returns the JSON payload of its `stargz.index.json` tar entry. */
async function readTocJson(source: RandomAccessSource, start: number, end: number, label: string): Promise<Buffer> {
  const compressed = await source.readAt(start, end - start)
  let tar: Buffer
  try {
    tar = await gunzipAsync(compressed, {maxOutputLength: MAX_TOC_SIZE + 64 * 1024, chunkSize: inflateChunkSize(compressed)})
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new LazyError('ESTARGZ_TOC_TOO_LARGE', `${label}: TOC inflates to more than the ${MAX_TOC_SIZE}-byte limit`, {cause: err})
    }
    throw new LazyError('ESTARGZ_TOC', `${label}: TOC member at ${start} does not inflate: ${(err as Error).message}`, {cause: err})
  }
  const header = tar.length >= BLOCK_SIZE ? decodeUstarBlock(tar.subarray(0, BLOCK_SIZE)) : null
  if (!header) throw new LazyError('ESTARGZ_TOC', `${label}: TOC member at ${start} does not start with a tar header`)
  if (canonicalName(header.name) !== TOC_TAR_NAME) throw new LazyError('ESTARGZ_TOC', `${label}: TOC member holds ${JSON.stringify(header.name)}, not ${TOC_TAR_NAME}`)
  if (header.size > MAX_TOC_SIZE) throw new LazyError('ESTARGZ_TOC_TOO_LARGE', `${label}: TOC is ${header.size} bytes, more than the ${MAX_TOC_SIZE}-byte limit`)
  if (BLOCK_SIZE + header.size > tar.length) throw new LazyError('ESTARGZ_TRUNCATED', `${label}: TOC entry is cut short (${tar.length - BLOCK_SIZE} of ${header.size} bytes)`)
  return tar.subarray(BLOCK_SIZE, BLOCK_SIZE + header.size)
}

/**
 * An output chunk size that inflates the whole TOC member in one piece: the gzip trailer's ISIZE
 * (the uncompressed size mod 2^32). Only a hint, as the trailer is not trusted: bounded by what
 * deflate can expand the input to and by the TOC size limit (zlib still enforces that limit).
 */
function inflateChunkSize(member: Buffer): number {
  const isize = member.length >= 18 ? member.readUInt32LE(member.length - 4) : 0
  return Math.max(64 * 1024, Math.min(isize + 1, member.length * 1032, MAX_TOC_SIZE + 64 * 1024))
}

function canonicalName(name: string): string {
  return name.replace(/^(\.?\/)+/, '')
}

/**
 * Whether the blob looks like eStargz cut short after (or inside) its TOC member: some gzip member
 * near the end inflates to the `stargz.index.json` tar header, and either does not finish or is
 * followed by too few bytes for a footer. Tells "truncated" apart from "not eStargz" and from
 * "complete blob with a garbage footer" when the footer does not parse.
 */
async function endsShortAfterToc(source: RandomAccessSource): Promise<boolean> {
  const window = Math.min(source.size, 4 << 20)
  if (window < 20) return false
  const tail = await source.readAt(source.size - window, window)
  for (let at = tail.lastIndexOf(GZIP_MAGIC); at >= 0; at = at > 0 ? tail.lastIndexOf(GZIP_MAGIC, at - 1) : -1) {
    let head: Buffer
    try {
      head = await inflateRange(tail.subarray(at, at + 4096), 0, BLOCK_SIZE)
    } catch {
      continue
    }
    if (head.length !== BLOCK_SIZE || canonicalName(decodeUstarBlock(head)?.name ?? '') !== TOC_TAR_NAME) continue
    const end = memberEnd(tail, at)
    if (end === null) return true
    // Fewer bytes than any footer, or the start of an eStargz footer missing its end.
    const rest = tail.length - end
    return rest < LEGACY_FOOTER_SIZE || (rest < FOOTER_SIZE && tail.subarray(end, end + 4).equals(FOOTER_START))
  }
  return false
}

/** Where the gzip member starting at `at` ends, or null if it is cut short or corrupt. */
function memberEnd(buf: Buffer, at: number): number | null {
  const flags = buf[at + 3] ?? 0
  let pos = at + 10
  if (flags & 0x04) pos += 2 + (buf.readUInt16LE(pos) || 0)
  if (flags & 0x08) pos = buf.indexOf(0, pos) + 1
  if (flags & 0x10) pos = buf.indexOf(0, pos) + 1
  if (flags & 0x02) pos += 2
  if (pos <= at || pos > buf.length) return null
  try {
    const {engine} = inflateRawSync(buf.subarray(pos), {info: true, maxOutputLength: MAX_TOC_SIZE + (1 << 20)}) as unknown as {engine: {bytesWritten: number}}
    const end = pos + engine.bytesWritten + 8
    return end <= buf.length ? end : null
  } catch {
    return null
  }
}
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08])
const FOOTER_START = Buffer.from([0x1f, 0x8b, 0x08, 0x04])

function decodeXattrs(xattrs: Record<string, string> | undefined): ReadonlyMap<string, Buffer> {
  if (!xattrs) return NO_XATTRS
  const keys = Object.keys(xattrs)
  return keys.length === 0 ? NO_XATTRS : new Map(keys.map((k) => [k, Buffer.from(xattrs[k]!, 'base64')]))
}
const NO_XATTRS: ReadonlyMap<string, Buffer> = new Map()
const NO_CHUNKS: ChunkRef[] = Object.freeze([]) as unknown as ChunkRef[]

/** A node with every field set, in one order, so all nodes share one shape. */
function newNode(path: string, type: NodeType, entry: TocEntry | null): EstargzNode {
  return {
    path, type, mode: 0o755, uid: 0, gid: 0, userName: '', groupName: '', mtime: 0, size: 0, linkName: '',
    devMajor: 0, devMinor: 0, xattrs: NO_XATTRS, digest: '', numLink: type === 'dir' ? 2 : 1,
    chunks: type === 'reg' ? [] : NO_CHUNKS, children: type === 'dir' ? new Map() : null, entry,
  }
}

/** The node of a TOC entry (no children or chunks yet), in newNode's shape. */
function nodeOf(path: string, e: TocEntry, uid: number, gid: number, userName: string, groupName: string, mtime: number): EstargzNode {
  const type = e.type as NodeType
  return {
    path, type, mode: (e.mode ?? 0) & 0o7777, uid, gid, userName, groupName,
    mtime, size: type === 'reg' ? e.size ?? 0 : 0, linkName: type === 'symlink' ? e.linkName ?? '' : '',
    devMajor: e.devMajor ?? 0, devMinor: e.devMinor ?? 0, xattrs: decodeXattrs(e.xattrs), digest: e.digest ?? '', numLink: type === 'dir' ? 2 : 1,
    chunks: type === 'reg' ? [] : NO_CHUNKS, children: type === 'dir' ? new Map() : null, entry: e,
  }
}

/** Copies what a TOC entry says of an object onto its node (a dir seen twice gets the later say). */
function applyEntry(node: EstargzNode, e: TocEntry, userName: string, groupName: string, mtime: number): void {
  const type = e.type as NodeType
  node.type = type
  node.mode = (e.mode ?? 0) & 0o7777
  node.uid = e.uid ?? 0
  node.gid = e.gid ?? 0
  node.userName = userName
  node.groupName = groupName
  node.mtime = mtime
  node.size = type === 'reg' ? e.size ?? 0 : 0
  node.linkName = type === 'symlink' ? e.linkName ?? '' : ''
  node.devMajor = e.devMajor ?? 0
  node.devMinor = e.devMinor ?? 0
  node.xattrs = decodeXattrs(e.xattrs)
  node.digest = e.digest ?? ''
  node.entry = e
}

class Reader implements EstargzReader {
  readonly root: EstargzNode
  prefetch: PrefetchHint
  /** Directories by canonical path; other nodes are found in their parent's children (nodeAt). */
  private readonly dirs = new Map<string, EstargzNode>()
  /** Every chunk made, in TOC order (the blob's order, unless a TOC says otherwise: chunksSorted). */
  private readonly chunksMade: ChunkRef[] = []
  private chunksSorted = true
  /** Whether some name was given twice: a replaced file (or a dir's whole subtree) may then be out of the tree. */
  private replacedAny = false
  /** The directory the last attach linked into (see attach). */
  private lastParent: EstargzNode
  private chunkList: ChunkRef[] | undefined

  constructor(
    readonly source: RandomAccessSource,
    readonly footer: Footer,
    readonly toc: Toc,
    readonly tocDigest: string,
    private readonly label: string,
  ) {
    this.root = newNode('', 'dir', null)
    this.lastParent = this.root
    this.dirs.set('', this.root)
    this.prefetch = {kind: 'none'}
  }

  /**
   * Builds the tree from the TOC's entries, in slices (see slices.ts). `paths` is the canonical
   * path of each entry, as parseTocInSlices checked it.
   */
  *index(paths: readonly string[]): Sliced<void> {
    const {toc, footer, label} = this
    const userNames = new Map<number, string>()
    const groupNames = new Map<number, string>()
    const mtimeOf = memoizedModtimeSeconds()
    const hardlinks: {path: string; target: string; entry: TocEntry}[] = []
    const entries = toc.entries
    // A payload's compressed range ends where the next gzip member starts (or at the TOC): chunks
    // wait here until an entry starting a member (an offset, no innerOffset) says where that is.
    const unended: ChunkRef[] = []
    let current: EstargzNode | null = null
    // Each field is read once into a local: entries come in many shapes, so every read of one is slow.
    for (let i = 0; i < entries.length; i++) {
      if (i % SLICE_ENTRIES === SLICE_ENTRIES - 1) yield
      const e = entries[i]!
      const type = e.type
      if (type === 'reg' || type === 'chunk') {
        const offset = e.offset
        if (offset && !e.innerOffset) {
          for (const chunk of unended) this.endChunk(chunk, offset)
          unended.length = 0
        }
        if (type === 'chunk') {
          if (current) unended.push(this.addChunk(current, e))
          continue
        }
      }
      current = null
      const path = paths[i]!
      // uid/gid names are written once per id; later entries inherit them.
      const uid = e.uid ?? 0
      const gid = e.gid ?? 0
      let userName = e.userName
      let groupName = e.groupName
      if (userName) userNames.set(uid, userName)
      else userName = userNames.get(uid) ?? ''
      if (groupName) groupNames.set(gid, groupName)
      else groupName = groupNames.get(gid) ?? ''
      if (type === 'reg' && path === PREFETCH_LANDMARK) {
        this.prefetch = {kind: 'landmark', end: e.offset ?? 0}
        continue
      }
      if (type === 'reg' && path === NO_PREFETCH_LANDMARK) {
        if (this.prefetch.kind === 'none') this.prefetch = {kind: 'no-prefetch'}
        continue
      }
      if (type === 'hardlink') {
        hardlinks.push({path, target: canonicalPath(e.linkName ?? '', 'hardlink target'), entry: e})
        continue
      }
      if (type === 'dir') {
        const existing = this.dirs.get(path)
        if (existing) {
          // A directory seen again (or synthesized for its children earlier) keeps its children.
          applyEntry(existing, e, userName, groupName, mtimeOf(e.modtime))
          continue
        }
      }
      if (path === '') throw new LazyError('ESTARGZ_TOC', `${label}: the layer root is a ${type}, not a directory`)
      const node = nodeOf(path, e, uid, gid, userName, groupName, mtimeOf(e.modtime))
      this.attach(path, node)
      if (type === 'reg' && node.size > 0) {
        unended.push(this.addChunk(node, e))
        current = node
      }
    }
    for (const chunk of unended) this.endChunk(chunk, footer.tocOffset)
    for (const link of hardlinks) {
      const target = this.nodeAt(link.target)
      if (!target || target.type === 'dir') {
        throw new LazyError('ESTARGZ_HARDLINK', `${label}: hardlink ${JSON.stringify(link.entry.name)} points to ${JSON.stringify(link.entry.linkName)}, ${target ? 'a directory' : 'which is not in the layer'}`)
      }
      target.numLink++
      this.attach(link.path, target)
    }
  }

  /** Sets where a chunk's compressed range ends, refusing a span a read would not fetch. */
  private endChunk(chunk: ChunkRef, end: number): void {
    if (end - chunk.compressedOffset > MAX_CHUNK_SPAN) {
      throw new LazyError('ESTARGZ_CHUNK_TOO_LARGE', `${this.label}: the chunk at ${chunk.compressedOffset} spans ${end - chunk.compressedOffset} compressed bytes, more than the ${MAX_CHUNK_SPAN}-byte limit`)
    }
    chunk.compressedEnd = end
  }

  /** Adds the chunk of a `reg` or `chunk` entry to its file; the caller sets compressedEnd (endChunk). */
  private addChunk(node: EstargzNode, e: TocEntry): ChunkRef {
    const chunkOffset = e.chunkOffset ?? 0
    const chunk: ChunkRef = {
      chunkOffset,
      chunkSize: e.chunkSize || node.size - chunkOffset,
      compressedOffset: e.offset ?? 0,
      compressedEnd: 0,
      innerOffset: e.innerOffset ?? 0,
      chunkDigest: e.chunkDigest ?? '',
    }
    node.chunks.push(chunk)
    const last = this.chunksMade[this.chunksMade.length - 1]
    if (last && compareChunks(last, chunk) > 0) this.chunksSorted = false
    this.chunksMade.push(chunk)
    return chunk
  }

  /** Links `node` under its parent directory, creating missing parents (mode 0755) on the way. */
  private attach(path: string, node: EstargzNode): void {
    const slash = path.lastIndexOf('/')
    const name = path.slice(slash + 1)
    // Entries come directory by directory: the previous entry's parent is usually this one's,
    // found without slicing and hashing the parent's path again.
    const last = this.lastParent
    const sameParent = slash < 0 ? last.path === '' : last.path.length === slash && path.startsWith(last.path)
    const parentPath = sameParent ? last.path : slash < 0 ? '' : path.slice(0, slash)
    // Not a known dir: a missing one (made, mode 0755), or something else there (refused below).
    let parent = sameParent ? last : this.dirs.get(parentPath) ?? this.nodeAt(parentPath)
    if (!parent) {
      parent = newNode(parentPath, 'dir', null)
      this.attach(parentPath, parent)
    }
    if (parent.type !== 'dir' || !parent.children) {
      throw new LazyError('ESTARGZ_TOC', `${this.label}: ${JSON.stringify(path)} is inside ${JSON.stringify(parentPath)}, which is not a directory`)
    }
    const replaced = parent.children.get(name)
    if (replaced) {
      this.replacedAny = true
      if (replaced.type === 'dir') parent.numLink--
      replaced.numLink--
    }
    parent.children.set(name, node)
    this.lastParent = parent
    if (node.type === 'dir') {
      parent.numLink++
      this.dirs.set(path, node)
    } else if (replaced?.type === 'dir') {
      this.dirs.delete(path)
    }
  }

  /** The node at a canonical path: a dir, or an entry of its parent dir. */
  private nodeAt(path: string): EstargzNode | undefined {
    const dir = this.dirs.get(path)
    if (dir || path === '') return dir
    const slash = path.lastIndexOf('/')
    return this.dirs.get(slash < 0 ? '' : path.slice(0, slash))?.children?.get(path.slice(slash + 1))
  }

  allChunks(): readonly ChunkRef[] {
    if (this.chunkList) return this.chunkList
    // Without a replaced name every file made is in the tree, once (hard links share the node).
    if (!this.replacedAny) {
      this.chunkList = this.chunksSorted ? this.chunksMade : [...this.chunksMade].sort(compareChunks)
      return this.chunkList
    }
    this.chunkList = reachableFiles(this.root).flatMap((file) => file.chunks).sort(compareChunks)
    return this.chunkList
  }

  lookup(path: string): EstargzNode | null {
    let canonical: string
    try {
      canonical = canonicalPath(path.replace(/^\/+/, ''), 'path')
    } catch {
      return null
    }
    if (canonical === PREFETCH_LANDMARK || canonical === NO_PREFETCH_LANDMARK) return null
    return this.nodeAt(canonical) ?? null
  }

  children(dir: string | EstargzNode): Map<string, EstargzNode> {
    const node = typeof dir === 'string' ? this.lookup(dir) : dir
    if (!node) throw new LazyError('NOT_FOUND', `${this.label}: no ${JSON.stringify(dir)} in the layer`)
    if (!node.children) throw new LazyError('USAGE', `${this.label}: ${JSON.stringify(node.path)} is not a directory`)
    return node.children
  }

  private file(file: string | EstargzNode): EstargzNode {
    const node = typeof file === 'string' ? this.lookup(file) : file
    if (!node) throw new LazyError('NOT_FOUND', `${this.label}: no ${JSON.stringify(file)} in the layer`)
    if (node.type !== 'reg') throw new LazyError('USAGE', `${this.label}: ${JSON.stringify(node.path)} is a ${node.type}, not a regular file`)
    return node
  }

  chunksFor(file: string | EstargzNode, offset: number, length: number): ChunkRef[] {
    const node = this.file(file)
    const end = Math.min(node.size, offset + length)
    if (offset >= end) return []
    // Binary search for the first chunk that ends after `offset`.
    const chunks = node.chunks
    let lo = 0
    let hi = chunks.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      const c = chunks[mid]!
      if (c.chunkOffset + c.chunkSize <= offset) lo = mid + 1
      else hi = mid
    }
    const out: ChunkRef[] = []
    for (let i = lo; i < chunks.length && chunks[i]!.chunkOffset < end; i++) out.push(chunks[i]!)
    return out
  }

  async decodeChunk(chunk: ChunkRef, compressed: Buffer): Promise<Buffer> {
    return decodeChunk(chunk, compressed, this.label)
  }

  async readFile(file: string | EstargzNode, offset = 0, length = Number.MAX_SAFE_INTEGER): Promise<Buffer> {
    const node = this.file(file)
    const end = Math.min(node.size, offset + length)
    const parts: Buffer[] = []
    for (const chunk of this.chunksFor(node, offset, end - offset)) {
      const data = await this.fetchChunk(chunk)
      const from = Math.max(0, offset - chunk.chunkOffset)
      const to = Math.min(chunk.chunkSize, end - chunk.chunkOffset)
      parts.push(data.subarray(from, to))
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  }

  async *fileChunks(file: string | EstargzNode): AsyncGenerator<Buffer> {
    const node = this.file(file)
    for (const chunk of node.chunks) yield await this.fetchChunk(chunk)
  }

  private async fetchChunk(chunk: ChunkRef): Promise<Buffer> {
    const compressed = await this.source.readAt(chunk.compressedOffset, chunk.compressedEnd - chunk.compressedOffset)
    return decodeChunk(chunk, compressed, this.label)
  }
}

function compareChunks(a: ChunkRef, b: ChunkRef): number {
  return a.compressedOffset - b.compressedOffset || a.innerOffset - b.innerOffset
}

/** Regular files reachable from `root`, each once. */
function reachableFiles(root: EstargzNode): EstargzNode[] {
  const seen = new Set<EstargzNode>()
  const out: EstargzNode[] = []
  const stack = [root]
  while (stack.length > 0) {
    const node = stack.pop()!
    if (seen.has(node)) continue
    seen.add(node)
    if (node.type === 'reg') out.push(node)
    if (node.children) for (const child of node.children.values()) stack.push(child)
  }
  return out
}

/**
 * Inflates a chunk from the compressed bytes [compressedOffset, compressedEnd) of the blob and
 * returns its bytes only if their sha256 equals `chunkDigest` (ESTARGZ_CHUNK_DIGEST otherwise).
 */
export async function decodeChunk(chunk: ChunkRef, compressed: Buffer, label = 'blob'): Promise<Buffer> {
  const where = `${label}: chunk at ${chunk.compressedOffset} (file bytes ${chunk.chunkOffset}..${chunk.chunkOffset + chunk.chunkSize})`
  if (!chunk.chunkDigest) throw new LazyError('ESTARGZ_CHUNK_DIGEST', `${where} has no chunkDigest in the TOC; refusing unverifiable data`)
  let data: Buffer
  try {
    data = await inflateRange(compressed, chunk.innerOffset, chunk.chunkSize)
  } catch (err) {
    throw new LazyError('ESTARGZ_CHUNK_DIGEST', `${where} does not inflate: ${(err as Error).message}`, {cause: err})
  }
  if (data.length !== chunk.chunkSize) {
    throw new LazyError('ESTARGZ_CHUNK_DIGEST', `${where} inflates to ${data.length} bytes, want ${chunk.chunkSize}`)
  }
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
  if (digest !== chunk.chunkDigest) throw new LazyError('ESTARGZ_CHUNK_DIGEST', `${where} has digest ${digest}, the TOC says ${chunk.chunkDigest}`)
  return data
}
