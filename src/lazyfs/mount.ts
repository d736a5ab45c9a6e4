// One lazy layer as a FUSE filesystem (fuse-native over libfuse2's path-based API). Read-only;
// metadata comes from the TOC tree built at mount; file bytes come chunk by chunk from the cache
// or the source, verified before they are returned. Any failure to get verified bytes is EIO for
// that read, logged with its reason: never wrong bytes.
import Fuse, {type FuseOperations, type FuseStat} from 'fuse-native'
import {constants as fsConstants, readFileSync} from 'node:fs'
import {execFile} from 'node:child_process'
import {createRequire} from 'node:module'
import {dirname, resolve} from 'node:path'
import {LazyError, describeError} from '../cli/errors.js'
import type {RandomAccessSource} from '../estargz/random-access.js'
import type {ChunkCache} from './chunk-cache.js'
import {ChunkFetcher, type ChunkSpan} from './chunk-fetcher.js'
import {buildFsTree, type FsNode, type FsTree} from './fs-tree.js'
import type {LayerContent} from './layer-content.js'
import {silentLog, type LazyfsLog} from './log.js'
import {newCounters, type LayerCounters, type LayerStats} from './stats.js'
import type {ChunkRef, EstargzNode, EstargzReader} from '../estargz/reader.js'
import {layerContentFromReader} from './from-estargz-reader.js'
import {prefetchRange, startBackgroundFetch, type BackgroundFetch, type BackgroundFetchOptions, type PrefetchOptions, type PrefetchResult} from './background-fetch.js'

export interface MountTuning {
  /** Range reads in flight at once for on-demand reads. Default 4. */
  maxFetchesInFlight?: number
  /** Largest compressed span of one coalesced on-demand range read. Default 16 MiB. */
  maxCoalescedBytes?: number
  /** Extra attempts of a failed range read. Default 2. */
  fetchRetries?: number
  /**
   * Chunks fetched ahead of a sequential reader (one coalesced range read), so inflating the
   * next chunk overlaps serving this one. 0 disables. Default 2.
   */
  readAheadChunks?: number
  /** A read that has not got its bytes after this long fails with EIO. Default 120 000 ms. */
  readTimeoutMs?: number
  /** Kernel entry/attribute cache, seconds. The layer is immutable, so long is safe. Default 30. */
  attrTimeoutSeconds?: number
  /** Let every user (root in containers, overlayfs) see the mount. Default true. */
  allowOther?: boolean
  /** libfuse debug output on stderr. */
  debug?: boolean
  /** Told about every range read to the source (for a fetch latency histogram). */
  onRangeRead?: (observation: {bytes: number; ms: number; ok: boolean}) => void
}

export interface MountContentOptions<N, C extends ChunkSpan> extends MountTuning {
  mountpoint: string
  content: LayerContent<N, C>
  source: RandomAccessSource
  cache: ChunkCache
  log?: LazyfsLog
  /** Names the layer in log lines and stats (the blob digest). */
  label?: string
  /** The layer's fetcher and counters, made before the mount (see prepareLayerFetch); made here otherwise. */
  fetch?: LayerFetch<N, C>
}

/**
 * A layer's chunk fetcher and its counters, apart from its mount: made when the layer is resolved
 * ahead of its Prepare, so its prioritized range can be fetched before the mount; the mount then
 * uses the same fetcher (chunks in flight are joined, never fetched twice) and counts on from there.
 */
export interface LayerFetch<N, C extends ChunkSpan> {
  content: LayerContent<N, C>
  fetcher: ChunkFetcher<C>
  counters: LayerCounters
  /** Fetches the prioritized range (up to the landmark) into the cache; see MountedLayer.prefetch. */
  prefetch(options?: PrefetchOptions): Promise<PrefetchResult>
  /** Every chunk of the layer (made once). */
  allChunks(): readonly C[]
}

export function prepareLayerFetch<N, C extends ChunkSpan>(options: Pick<MountContentOptions<N, C>, 'content' | 'source' | 'cache' | 'log' | 'label' | 'maxFetchesInFlight' | 'maxCoalescedBytes' | 'fetchRetries' | 'onRangeRead'>): LayerFetch<N, C> {
  const {content} = options
  const counters = newCounters()
  const fetcher = new ChunkFetcher<C>({
    source: options.source, cache: options.cache, counters, log: options.log ?? silentLog, label: options.label,
    decode: (chunk, compressed) => content.decodeChunk(chunk, compressed),
    decoderVerifies: content.decoderVerifies,
    maxFetchesInFlight: options.maxFetchesInFlight,
    maxCoalescedBytes: options.maxCoalescedBytes,
    retries: options.fetchRetries,
    onRangeRead: options.onRangeRead,
  })
  let chunks: readonly C[] | undefined
  const allChunks = (): readonly C[] => (chunks ??= content.allChunks())
  return {
    content,
    fetcher,
    counters,
    allChunks,
    prefetch(prefetchOptions: PrefetchOptions = {}): Promise<PrefetchResult> {
      const end = prefetchOptions.end ?? content.prefetchEnd
      if (end === undefined) return Promise.resolve({chunks: 0, alreadyLocal: 0, failed: 0})
      return prefetchRange(fetcher, allChunks(), end, prefetchOptions)
    },
  }
}

export interface MountedLayer {
  readonly mountpoint: string
  readonly label: string | undefined
  /** Counters and "percent local" (chunksLocal / chunksTotal), for status and metrics. */
  stats(): LayerStats
  /**
   * Fetches the prioritized range (default: up to the `.prefetch.landmark` offset) in large
   * range reads into the cache. Resolves with what it did; never rejects for fetch failures.
   */
  prefetch(options?: PrefetchOptions): Promise<PrefetchResult>
  /** Starts (or returns the running) background fetch of every chunk not yet local. */
  backgroundFetch(options: BackgroundFetchOptions): BackgroundFetch
  /** Stops background work and unmounts; safe to call twice. */
  unmount(): Promise<void>
}

// fuse-native's native binding, for the one call its unmount skips on failure (see below).
const fuseNativeRequire = createRequire(createRequire(import.meta.url).resolve('fuse-native'))
const fuseBinding = fuseNativeRequire('node-gyp-build')(dirname(fuseNativeRequire.resolve('./package.json'))) as {
  fuse_native_unmount(mountpoint: string, thread: Buffer): void
}

/** fuse-native with the mount options it has no switch for, and an unmount that always lets go. */
class LazyFuse extends Fuse {
  declare private _thread: Buffer | null

  constructor(mountpoint: string, ops: FuseOperations, options: Record<string, unknown>, private readonly extraOptions: string[]) {
    super(mountpoint, ops, options)
  }

  protected override _fuseOptions(): string {
    const base = super._fuseOptions()
    const extra = this.extraOptions.join(',')
    return base ? `${base},${extra}` : `-o${extra}`
  }

  /**
   * fuse-native releases its event-loop handle only when `fusermount -u` succeeds; a mount that
   * someone else already unmounted would then keep the process alive forever. Here the handle is
   * released whenever the mount is gone, whoever removed it.
   */
  protected _close(cb: (err: Error | null) => void): void {
    const release = (): void => {
      try {
        if (this._thread) fuseBinding.fuse_native_unmount(this.mnt, this._thread)
      } catch (err) {
        return cb(err as Error)
      }
      cb(null)
    }
    if (!isMountPoint(this.mnt)) return release()
    detach(this.mnt, (err) => (err && isMountPoint(this.mnt) ? cb(err) : release()))
  }
}

/**
 * `fusermount -uz MOUNTPOINT` without a shell: fuse-native's own unmount passes the path through
 * `sh -c` inside double quotes, where `$(…)` in a path would run.
 */
function detach(mountpoint: string, cb: (err: Error | null) => void): void {
  execFile('fusermount', ['-uz', mountpoint], (err) => cb(err))
}

/** Whether the kernel has a mount at `path` (read from /proc/self/mountinfo, never touching it). */
export function isMountPoint(path: string): boolean {
  let table: string
  try {
    table = readFileSync('/proc/self/mountinfo', 'utf8')
  } catch {
    return true
  }
  // Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
  return table.split('\n').some((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))) === path)
}

/**
 * The part of `chunk` that the file range [position, position+wanted) covers: bytes [from, to) of
 * the chunk, which land at `at` in the reply.
 */
function chunkSlice(chunk: ChunkSpan, position: number, wanted: number): {from: number; to: number; at: number} {
  const from = Math.max(position, chunk.chunkOffset) - chunk.chunkOffset
  const to = Math.min(position + wanted, chunk.chunkOffset + chunk.chunkSize) - chunk.chunkOffset
  return {from, to, at: chunk.chunkOffset + from - position}
}

/** An open file: its node, where the last read ended (to tell sequential readers), where read-ahead last started. */
interface OpenFile<N> {
  node: FsNode<N>
  nextOffset: number
  readAheadFrom: number
}

const O_ACCMODE = 3
const WRITE_FLAGS = fsConstants.O_TRUNC | fsConstants.O_CREAT | fsConstants.O_APPEND

export async function mountLayerContent<N, C extends ChunkSpan>(options: MountContentOptions<N, C>): Promise<MountedLayer> {
  const layerFetch = options.fetch ?? prepareLayerFetch(options)
  const {content, fetcher, counters} = layerFetch
  const {source, cache, label} = options
  const mountpoint = resolve(options.mountpoint)
  const log = options.log ?? silentLog
  const readTimeoutMs = options.readTimeoutMs ?? 120_000
  const attrTimeout = options.attrTimeoutSeconds ?? 30
  const tree: FsTree<N> = buildFsTree(content.tree)
  const allChunks = layerFetch.allChunks()
  const distinctChunks = new Map<string, number>()
  for (const c of allChunks) distinctChunks.set(c.chunkDigest, c.chunkSize)
  const readAheadChunks = options.readAheadChunks ?? 2
  const handles = new Map<number, OpenFile<N>>()
  let nextHandle = 1
  let prefetchState: LayerStats['prefetch'] = content.prefetchEnd === undefined ? 'none' : 'pending'
  let background: BackgroundFetch | undefined

  /** Starts the read-ahead from `from` once per chunk boundary a sequential reader reaches (not per 128 KiB request). */
  const readAhead = (node: FsNode<N>, from: number, handle: OpenFile<N> | undefined): void => {
    if (from >= node.size || (handle && handle.readAheadFrom === from)) return
    if (handle) handle.readAheadFrom = from
    const ahead = content.chunksFor(node.source as N, from, 1).flatMap((first) => content.chunksFor(node.source as N, first.chunkOffset, 1 + (readAheadChunks - 1) * first.chunkSize))
      .slice(0, readAheadChunks)
    // Not awaited: a failure here only means the later read fetches (and reports) it itself.
    // A chunk in memory but not on disk (its file evicted, or its write failed) is still at hand:
    // fetching it again would download its bytes twice.
    const missing = ahead.filter((c) => !fetcher.isLocalOrPending(c.chunkDigest) && !cache.inMemory(c.chunkDigest))
    if (missing.length > 0) void fetcher.ensureLocal(missing)
    // Chunks on disk are read into memory ahead of the reader, overlapping disk and FUSE work.
    for (const c of ahead) if (cache.has(c.chunkDigest)) void cache.loadChunk(c.chunkDigest, c.chunkSize).catch(() => undefined)
  }

  /**
   * The file bytes [position, position+length) in a buffer of our own: the kernel's buffer must
   * not be written once a read has been answered (a timed-out read goes on in the background).
   */
  const readFile = async (node: FsNode<N>, length: number, position: number, sequential: boolean, handle: OpenFile<N> | undefined): Promise<Buffer> => {
    if (position >= node.size || length === 0) return Buffer.alloc(0)
    const wanted = Math.min(length, node.size - position)
    const target = Buffer.allocUnsafe(wanted)
    const chunks = content.chunksFor(node.source as N, position, wanted)
    if (sequential && readAheadChunks > 0 && chunks.length > 0) {
      const last = chunks[chunks.length - 1]
      readAhead(node, last.chunkOffset + last.chunkSize, handle)
    }
    const missing: {chunk: C; from: number; to: number; at: number}[] = []
    for (const chunk of chunks) {
      const {from, to, at} = chunkSlice(chunk, position, wanted)
      if (to <= from) continue
      if (cache.has(chunk.chunkDigest) || cache.fromMemory(chunk.chunkDigest)) {
        if (sequential) {
          const data = await cache.loadChunk(chunk.chunkDigest, chunk.chunkSize)
          if (data) {
            data.copy(target, at, from, to)
            counters.cacheHits++
            continue
          }
        } else if (await cache.readInto(chunk.chunkDigest, chunk.chunkSize, from, to - from, target, at)) {
          counters.cacheHits++
          continue
        }
      }
      missing.push({chunk, from, to, at})
    }
    if (missing.length > 0) {
      const data = await Promise.all(fetcher.chunks(missing.map((m) => m.chunk)))
      missing.forEach((m, i) => data[i].copy(target, m.at, m.from, m.to))
    }
    return target
  }

  /**
   * Answers a read at once, straight into the kernel's buffer, when every chunk it covers is in
   * the in-memory LRU (verified bytes): a sequential reader then costs one copy per 128 KiB
   * request and no promise, timer or buffer of its own. Undefined when some chunk is not in memory.
   */
  const readFromMemory = (node: FsNode<N>, buffer: Buffer, length: number, position: number): {served: number; chunksEnd: number} | undefined => {
    if (position >= node.size || length === 0) return {served: 0, chunksEnd: node.size}
    const wanted = Math.min(length, node.size - position)
    const chunks = content.chunksFor(node.source as N, position, wanted)
    const found: Buffer[] = []
    for (const chunk of chunks) {
      const data = cache.fromMemory(chunk.chunkDigest)
      if (!data || data.length !== chunk.chunkSize) return undefined
      found.push(data)
    }
    chunks.forEach((chunk, i) => {
      const {from, to, at} = chunkSlice(chunk, position, wanted)
      if (to > from) found[i].copy(buffer, at, from, to)
    })
    counters.cacheHits += chunks.length
    const last = chunks[chunks.length - 1]
    return {served: wanted, chunksEnd: last ? last.chunkOffset + last.chunkSize : node.size}
  }

  const withDeadline = <T>(work: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new LazyError('IO', `no bytes after ${readTimeoutMs} ms`)), readTimeoutMs)
    })
    return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
  }

  const stat = (node: FsNode<N>): FuseStat => ({
    mode: node.mode, uid: node.uid, gid: node.gid, size: node.size, nlink: node.nlink, ino: node.ino, rdev: node.rdev,
    blksize: 4096, blocks: Math.ceil(node.size / 4096) * 8, atime: node.mtimeMs, mtime: node.mtimeMs, ctime: node.mtimeMs,
  })

  const readOnly = (...args: unknown[]): void => {
    const cb = args[args.length - 1] as (code: number) => void
    cb(Fuse.EROFS)
  }

  const ops: FuseOperations = {
    init: (cb) => cb(0),
    getattr: (path, cb) => {
      const node = tree.byPath.get(path)
      if (!node) return cb(Fuse.ENOENT)
      cb(0, stat(node))
    },
    access: (path, mode, cb) => {
      if (!tree.byPath.has(path)) return cb(Fuse.ENOENT)
      cb(mode & fsConstants.W_OK ? Fuse.EROFS : 0)
    },
    statfs: (_path, cb) => cb(0, {
      bsize: 4096, frsize: 4096, blocks: Math.ceil(tree.totalBytes / 4096), bfree: 0, bavail: 0,
      files: tree.inodeCount, ffree: 0, favail: 0, fsid: 0, flag: 1 /* ST_RDONLY */, namemax: 255,
    }),
    readdir: (path, cb) => {
      const node = tree.byPath.get(path)
      if (!node) return cb(Fuse.ENOENT)
      if (!node.children) return cb(Fuse.ENOTDIR)
      const names = ['.', '..', ...node.children.keys()]
      const stats = [stat(node), stat(node), ...[...node.children.values()].map(stat)]
      cb(0, names, stats)
    },
    readlink: (path, cb) => {
      const node = tree.byPath.get(path)
      if (!node) return cb(Fuse.ENOENT)
      if (node.kind !== 'symlink') return cb(Fuse.EINVAL)
      cb(0, node.linkName ?? '')
    },
    open: (path, flags, cb) => {
      const node = tree.byPath.get(path)
      if (!node) return cb(Fuse.ENOENT)
      if ((flags & O_ACCMODE) !== fsConstants.O_RDONLY || (flags & WRITE_FLAGS) !== 0) return cb(Fuse.EROFS)
      if (node.kind === 'dir') return cb(Fuse.EISDIR)
      const fd = nextHandle++
      handles.set(fd, {node, nextOffset: 0, readAheadFrom: -1})
      cb(0, fd)
    },
    release: (_path, fd, cb) => {
      handles.delete(fd)
      cb(0)
    },
    read: (path, fd, buffer, length, position, cb) => {
      const handle = handles.get(fd)
      const node = handle?.node ?? tree.byPath.get(path)
      if (!node) return cb(Fuse.EBADF)
      if (node.kind !== 'reg') return cb(Fuse.EINVAL)
      // The kernel reads ahead itself in ≤128 KiB requests; a read that starts where the last
      // one ended (give or take that window) is a sequential reader.
      const sequential = handle !== undefined && position > 0 && Math.abs(position - handle.nextOffset) <= 1 << 20
      if (handle) handle.nextOffset = position + length
      const fromMemory = readFromMemory(node, buffer, length, position)
      if (fromMemory !== undefined) {
        if (sequential && readAheadChunks > 0) readAhead(node, fromMemory.chunksEnd, handle)
        counters.bytesServed += fromMemory.served
        return cb(fromMemory.served)
      }
      withDeadline(readFile(node, length, position, sequential, handle)).then((data) => {
        data.copy(buffer, 0)
        counters.bytesServed += data.length
        cb(data.length)
      }, (err) => {
        counters.readErrors++
        log.error('read failed: EIO', {layer: label, path, offset: position, length, error: describeError(err)})
        cb(Fuse.EIO)
      })
    },
    getxattr: (path, name, _position, cb) => {
      const node = tree.byPath.get(path)
      if (!node) return cb(Fuse.ENOENT)
      const value = node.xattrs.get(name)
      if (!value) return cb(Fuse.ENODATA)
      cb(0, value)
    },
    listxattr: (path, cb) => {
      const node = tree.byPath.get(path)
      if (!node) return cb(Fuse.ENOENT)
      cb(0, [...node.xattrs.keys()])
    },
    write: readOnly, create: readOnly, truncate: readOnly, ftruncate: readOnly, unlink: readOnly, rename: readOnly,
    link: readOnly, symlink: readOnly, mkdir: readOnly, rmdir: readOnly, chmod: readOnly, chown: readOnly,
    utimens: readOnly, mknod: readOnly, setxattr: readOnly, removexattr: readOnly,
  }

  // fuse-native's `force` would detach a stale mount through a shell (see detach): done here instead.
  if (isMountPoint(mountpoint)) await new Promise<void>((resolve) => detach(mountpoint, () => resolve()))
  const fuse = new LazyFuse(mountpoint, ops, {
    force: false,
    mkdir: true,
    allowOther: options.allowOther ?? true,
    fsname: 'lazyctl',
    subtype: 'lazyctl',
    // The kernel keeps file pages across opens: the layer never changes under it.
    kernelCache: true,
    entryTimeout: attrTimeout,
    attrTimeout,
    debug: options.debug ?? false,
    // Our own deadline turns a stuck fetch into EIO; fuse-native's would give ETIMEDOUT.
    timeout: false,
    // allow_other lets containers (any uid) in; default_permissions makes the kernel check each
    // caller against the layer's modes and owners, as on any filesystem.
  }, ['ro', 'use_ino', 'default_permissions', `negative_timeout=${attrTimeout}`])

  await new Promise<void>((resolve, reject) => {
    fuse.mount((err) => {
      if (err) reject(new LazyError('FUSE', `cannot mount the layer at ${mountpoint}: ${describeError(err)}`, {cause: err, hint: 'is /dev/fuse present and libfuse2 installed (apt-get install libfuse2 fuse3)?'}))
      else resolve()
    })
  })
  log.info('layer mounted', {layer: label, mountpoint, inodes: tree.inodeCount, chunks: distinctChunks.size})

  let unmounted: Promise<void> | undefined
  return {
    mountpoint,
    label,
    stats(): LayerStats {
      let chunksLocal = 0
      let chunkBytesTotal = 0
      let chunkBytesLocal = 0
      for (const [digest, size] of distinctChunks) {
        chunkBytesTotal += size
        if (cache.has(digest)) {
          chunksLocal++
          chunkBytesLocal += size
        }
      }
      return {
        ...counters, chunksTotal: distinctChunks.size, chunksLocal, chunkBytesTotal, chunkBytesLocal, blobSize: source.size,
        prefetch: prefetchState, backgroundFetch: background?.state ?? 'off',
      }
    },
    async prefetch(prefetchOptions: PrefetchOptions = {}): Promise<PrefetchResult> {
      const end = prefetchOptions.end ?? content.prefetchEnd
      if (end === undefined) return {chunks: 0, alreadyLocal: 0, failed: 0}
      prefetchState = 'running'
      const result = await layerFetch.prefetch({...prefetchOptions, end})
      prefetchState = result.failed > 0 ? 'failed' : 'done'
      log.info('prefetch finished', {layer: label, chunks: result.chunks, alreadyLocal: result.alreadyLocal, failed: result.failed})
      return result
    },
    backgroundFetch(backgroundOptions: BackgroundFetchOptions): BackgroundFetch {
      if (background?.state === 'running') return background
      background = startBackgroundFetch(fetcher, allChunks, backgroundOptions, log, label)
      return background
    },
    unmount(): Promise<void> {
      unmounted ??= (async () => {
        background?.stop()
        await new Promise<void>((resolve, reject) => {
          fuse.unmount((err) => (err ? reject(new LazyError('FUSE', `cannot unmount ${mountpoint}: ${describeError(err)}`, {cause: err})) : resolve()))
        })
        log.info('layer unmounted', {layer: label, mountpoint})
      })()
      return unmounted
    },
  }
}

export interface MountLayerOptions extends MountTuning {
  mountpoint: string
  /** The opened layer (TOC already checked against the manifest's annotation). */
  reader: EstargzReader
  /** Where chunk bytes come from; default the reader's own source. */
  source?: RandomAccessSource
  cache: ChunkCache
  log?: LazyfsLog
  /** Names the layer in log lines and stats (the blob digest). */
  label?: string
  /** Made by prepareEstargzFetch for this reader before the mount. */
  prepared?: EstargzLayerFetch
}

/** An eStargz layer's fetcher (see LayerFetch). */
export type EstargzLayerFetch = LayerFetch<EstargzNode, ChunkRef>

export function prepareEstargzFetch(options: Omit<MountLayerOptions, 'mountpoint' | 'prepared'>): EstargzLayerFetch {
  return prepareLayerFetch({...options, content: layerContentFromReader(options.reader), source: options.source ?? options.reader.source})
}

/** Mounts one eStargz layer read-only at `mountpoint`; bytes are fetched on first read. */
export function mountLayer(options: MountLayerOptions): Promise<MountedLayer> {
  const {reader, source, prepared, ...rest} = options
  const content = prepared?.content ?? layerContentFromReader(reader)
  return mountLayerContent({...rest, content, source: source ?? reader.source, ...(prepared ? {fetch: prepared} : {})})
}
