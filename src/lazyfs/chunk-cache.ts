// The on-disk cache of verified, uncompressed eStargz chunks, shared by every lazy layer of a
// snapshotter. A chunk is named by its `chunkDigest`, so identical chunks of different layers are
// stored once, and what is local survives a restart: it is whatever files the directory holds.
//
// Layout: <dir>/<hex[0:2]>/sha256:<hex>, written to <dir>/tmp/ first and renamed into place, so a
// crash never leaves a partial chunk under a digest name. Only bytes that matched their digest are
// ever put here (the fetcher verifies before it calls put()). The files are root's alone (0700
// directories, 0600 files: they hold private images' content), and a chunk found on disk by a new
// process is hashed against its name before its first use: the disk is not trusted across a
// restart, a rewritten chunk is dropped and fetched again.
import {chmod, mkdir, open, readdir, rename, rm, stat, unlink, writeFile, type FileHandle} from 'node:fs/promises'
import {join} from 'node:path'
import {createHash, randomBytes} from 'node:crypto'
import {LazyError} from '../cli/errors.js'

const DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/

export interface ChunkCacheOptions {
  /** Directory of the cache; created if missing. */
  dir: string
  /** Bytes of decoded chunks kept in memory (most recently used first). Default 64 MiB. */
  memoryBytes?: number
  /** Open cache files kept for reuse. Default 32. */
  maxOpenFiles?: number
  /**
   * Bound on the chunk bytes on disk. Past it, the least recently used chunks are deleted (down
   * to 90 % of the bound); a deleted chunk is simply fetched again when read. Default: unbounded.
   */
  maxBytes?: number
}

interface OpenChunkFile {
  handle: FileHandle
  size: number
  users: number
}

export class ChunkCache {
  readonly dir: string
  private readonly tmpDir: string
  /** Digest → size in bytes of every chunk file on disk, least recently used first. */
  private readonly onDisk = new Map<string, number>()
  private readonly maxBytes: number | undefined
  private evicting: Promise<void> | undefined
  /** Chunks deleted to honour maxBytes since open. */
  evictions = 0
  private diskBytes = 0
  /** Bytes of chunk writes in progress (counted against maxBytes before they land). */
  private reserved = 0
  private readonly memory = new Map<string, Buffer>()
  private memoryUsed = 0
  private readonly memoryLimit: number
  private readonly files = new Map<string, OpenChunkFile>()
  private readonly pendingOpens = new Map<string, Promise<OpenChunkFile | undefined>>()
  private readonly pendingLoads = new Map<string, Promise<Buffer | undefined>>()
  private readonly maxOpenFiles: number
  private readonly madeDirs = new Set<string>()
  /** Chunks on disk from an earlier process, not yet hashed against their digest. */
  private readonly unverified = new Set<string>()

  private constructor(options: ChunkCacheOptions) {
    this.dir = options.dir
    this.tmpDir = join(options.dir, 'tmp')
    this.memoryLimit = options.memoryBytes ?? 64 << 20
    this.maxOpenFiles = options.maxOpenFiles ?? 32
    this.maxBytes = options.maxBytes
  }

  /** Opens (or creates) a cache directory and learns which chunks it already holds. */
  static async open(options: ChunkCacheOptions): Promise<ChunkCache> {
    const cache = new ChunkCache(options)
    try {
      await mkdir(cache.dir, {recursive: true, mode: 0o700})
      // A cache made by an older version may be world-readable: its root alone closes it.
      await chmod(cache.dir, 0o700)
      // Leftovers of writes interrupted by a crash: never renamed, so never trusted.
      await rm(cache.tmpDir, {recursive: true, force: true})
      await mkdir(cache.tmpDir, {recursive: true, mode: 0o700})
      await cache.scan()
    } catch (err) {
      throw new LazyError('IO', `chunk cache ${cache.dir}: ${(err as Error).message}`, {cause: err})
    }
    return cache
  }

  /** True when the chunk is on disk. */
  has(digest: string): boolean {
    return this.onDisk.has(digest)
  }

  /** Number of chunk files on disk. */
  get chunkCount(): number {
    return this.onDisk.size
  }

  /** Bytes of chunk data on disk. */
  get bytesOnDisk(): number {
    return this.diskBytes
  }

  /** True when the decoded chunk is in the in-memory LRU (its order unchanged). */
  inMemory(digest: string): boolean {
    return this.memory.has(digest)
  }

  /** The decoded chunk if it is in the in-memory LRU (and marks it recently used). */
  fromMemory(digest: string): Buffer | undefined {
    const data = this.memory.get(digest)
    if (data) {
      this.memory.delete(digest)
      this.memory.set(digest, data)
    }
    return data
  }

  /** Keeps a decoded chunk in the in-memory LRU, evicting the least recently used beyond the limit. */
  remember(digest: string, data: Buffer): void {
    if (data.length > this.memoryLimit) return
    const old = this.memory.get(digest)
    if (old) {
      this.memory.delete(digest)
      this.memoryUsed -= old.length
    }
    this.memory.set(digest, data)
    this.memoryUsed += data.length
    for (const [key, value] of this.memory) {
      if (this.memoryUsed <= this.memoryLimit) break
      this.memory.delete(key)
      this.memoryUsed -= value.length
    }
  }

  /**
   * Copies `length` bytes at `offset` of a cached chunk into `target` at `targetOffset`. Returns false
   * when the chunk is not on disk (or its file is not the expected size, or, from an earlier
   * process, does not hash to its digest: then it is dropped).
   */
  async readInto(digest: string, expectedSize: number, offset: number, length: number, target: Buffer, targetOffset: number): Promise<boolean> {
    const memory = this.fromMemory(digest)
    if (memory && memory.length === expectedSize) {
      memory.copy(target, targetOffset, offset, offset + length)
      return true
    }
    if (!this.onDisk.has(digest)) return false
    if (this.unverified.has(digest)) {
      // First use since a restart: the whole chunk is read and hashed once, then served from memory.
      const whole = await this.loadChunk(digest, expectedSize)
      if (!whole) return false
      whole.copy(target, targetOffset, offset, offset + length)
      return true
    }
    return this.readFromDisk(digest, expectedSize, offset, length, target, targetOffset)
  }

  /** Reads a whole cached chunk, or undefined when it is not on disk. */
  async readChunk(digest: string, expectedSize: number): Promise<Buffer | undefined> {
    const memory = this.fromMemory(digest)
    if (memory && memory.length === expectedSize) return memory
    const buffer = Buffer.allocUnsafe(expectedSize)
    if (!(await this.readFromDisk(digest, expectedSize, 0, expectedSize, buffer, 0))) return undefined
    if (this.unverified.has(digest)) {
      if (`sha256:${createHash('sha256').update(buffer).digest('hex')}` !== digest) {
        this.unverified.delete(digest)
        await this.remove(digest)
        return undefined
      }
      this.unverified.delete(digest)
    }
    return buffer
  }

  private async readFromDisk(digest: string, expectedSize: number, offset: number, length: number, target: Buffer, targetOffset: number): Promise<boolean> {
    const size = this.onDisk.get(digest)
    if (size === undefined) return false
    // Recently used chunks go to the end of the eviction order.
    this.onDisk.delete(digest)
    this.onDisk.set(digest, size)
    const file = await this.openChunk(digest)
    if (!file) return false
    try {
      if (file.size !== expectedSize) {
        await this.remove(digest)
        return false
      }
      let done = 0
      while (done < length) {
        const {bytesRead} = await file.handle.read(target, targetOffset + done, length - done, offset + done)
        if (bytesRead === 0) throw new LazyError('IO', `chunk cache: ${digest} shorter than expected`)
        done += bytesRead
      }
      return true
    } finally {
      file.users--
      this.trimOpenFiles()
    }
  }

  /**
   * The whole chunk in memory, read from disk once and kept in the LRU: a sequential reader then
   * costs one disk read per chunk instead of one per 128 KiB FUSE request. Concurrent callers
   * share the load. Undefined when the chunk is not on disk.
   */
  async loadChunk(digest: string, expectedSize: number): Promise<Buffer | undefined> {
    const memory = this.fromMemory(digest)
    if (memory && memory.length === expectedSize) return memory
    let pending = this.pendingLoads.get(digest)
    if (!pending) {
      pending = this.readChunk(digest, expectedSize).then((data) => {
        if (data) this.remember(digest, data)
        return data
      }).finally(() => this.pendingLoads.delete(digest))
      this.pendingLoads.set(digest, pending)
    }
    return pending
  }

  /** Stores a verified chunk: temp file, then rename, so readers never see a partial one. */
  async put(digest: string, data: Buffer, options: {skipMemory?: boolean} = {}): Promise<void> {
    checkDigest(digest)
    if (!options.skipMemory) this.remember(digest, data)
    if (this.onDisk.has(digest)) return
    const subdir = join(this.dir, digest.slice(7, 9))
    if (!this.madeDirs.has(subdir)) {
      await mkdir(subdir, {recursive: true, mode: 0o700})
      this.madeDirs.add(subdir)
    }
    // The bytes are reserved before they are written and room is made first, so writes do not
    // overshoot maxBytes while they land; writes that start together on an empty cache can, so
    // room is made again once this one is on disk (then the bound holds when writes settle).
    this.reserved += data.length
    try {
      await this.makeRoom()
      const temp = join(this.tmpDir, `${digest.slice(7)}.${randomBytes(6).toString('hex')}`)
      try {
        await writeFile(temp, data, {mode: 0o600})
        await rename(temp, this.pathOf(digest))
      } catch (err) {
        await unlink(temp).catch(() => undefined)
        throw new LazyError('IO', `chunk cache: cannot store ${digest}: ${(err as Error).message}`, {cause: err})
      }
      if (!this.onDisk.has(digest)) {
        this.onDisk.set(digest, data.length)
        this.diskBytes += data.length
      }
    } finally {
      this.reserved -= data.length
    }
    await this.makeRoom()
  }

  /** Evicts least recently used chunks until the reserved writes fit under maxBytes. */
  private async makeRoom(): Promise<void> {
    const max = this.maxBytes
    if (max === undefined) return
    // One eviction pass at a time (down to 90%, so not every write evicts); others wait and check again.
    while (this.diskBytes + this.reserved > max && this.onDisk.size > 0) {
      this.evicting ??= this.evict(Math.max(0, Math.floor(max * 0.9) - this.reserved)).finally(() => {
        this.evicting = undefined
      }).then(() => undefined)
      await this.evicting
    }
  }

  /**
   * Deletes least recently used chunks until at most `targetBytes` remain on disk; returns the
   * bytes freed. Readers of a deleted chunk fetch it again (an open file stays readable).
   */
  async evict(targetBytes: number): Promise<number> {
    let freed = 0
    for (const [digest, size] of [...this.onDisk]) {
      if (this.diskBytes <= targetBytes) break
      await this.remove(digest)
      this.evictions++
      freed += size
    }
    return freed
  }

  /** Drops a chunk from disk and memory (eviction, or a file found damaged). */
  async remove(digest: string): Promise<void> {
    checkDigest(digest)
    const size = this.onDisk.get(digest)
    // Gone for lookups at once; its bytes stay counted until the file is unlinked, so a
    // concurrent put never writes past maxBytes on the strength of space not yet freed.
    if (size !== undefined) this.onDisk.delete(digest)
    const cached = this.memory.get(digest)
    if (cached) {
      this.memory.delete(digest)
      this.memoryUsed -= cached.length
    }
    const file = this.files.get(digest)
    if (file && file.users === 0) {
      this.files.delete(digest)
      await file.handle.close().catch(() => undefined)
    }
    await unlink(this.pathOf(digest)).catch(() => undefined)
    if (size !== undefined) this.diskBytes -= size
  }

  /** Path of a chunk's file (whether or not it exists). */
  pathOf(digest: string): string {
    checkDigest(digest)
    return join(this.dir, digest.slice(7, 9), digest)
  }

  /** Closes cached file handles; the cache stays usable (files are reopened on demand). */
  async close(): Promise<void> {
    const files = [...this.files.values()]
    this.files.clear()
    await Promise.all(files.map((f) => f.handle.close().catch(() => undefined)))
    this.memory.clear()
    this.memoryUsed = 0
  }

  private async openChunk(digest: string): Promise<OpenChunkFile | undefined> {
    const known = this.files.get(digest)
    if (known) {
      known.users++
      // Keep most recently used at the end of the map.
      this.files.delete(digest)
      this.files.set(digest, known)
      return known
    }
    let pending = this.pendingOpens.get(digest)
    if (!pending) {
      pending = (async () => {
        try {
          const handle = await open(this.pathOf(digest), 'r')
          const {size} = await handle.stat()
          const file: OpenChunkFile = {handle, size, users: 0}
          this.files.set(digest, file)
          return file
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
            const size = this.onDisk.get(digest)
            if (size !== undefined) {
              this.onDisk.delete(digest)
              this.diskBytes -= size
            }
            return undefined
          }
          throw err
        } finally {
          this.pendingOpens.delete(digest)
        }
      })()
      this.pendingOpens.set(digest, pending)
    }
    const file = await pending
    if (file) file.users++
    return file
  }

  private trimOpenFiles(): void {
    if (this.files.size <= this.maxOpenFiles) return
    for (const [digest, file] of this.files) {
      if (this.files.size <= this.maxOpenFiles) break
      if (file.users > 0) continue
      this.files.delete(digest)
      void file.handle.close().catch(() => undefined)
    }
  }

  private async scan(): Promise<void> {
    const found: Array<{name: string; size: number; mtimeMs: number}> = []
    for (const sub of await readdir(this.dir, {withFileTypes: true})) {
      if (!sub.isDirectory() || !/^[0-9a-f]{2}$/.test(sub.name)) continue
      const subdir = join(this.dir, sub.name)
      this.madeDirs.add(subdir)
      for (const name of await readdir(subdir)) {
        if (!DIGEST_PATTERN.test(name) || name.slice(7, 9) !== sub.name) continue
        const {size, mtimeMs} = await stat(join(subdir, name))
        found.push({name, size, mtimeMs})
      }
    }
    // Oldest first: after a restart the eviction order starts from when chunks were written.
    for (const {name, size} of found.sort((a, b) => a.mtimeMs - b.mtimeMs)) {
      this.onDisk.set(name, size)
      this.unverified.add(name)
      this.diskBytes += size
    }
  }
}

function checkDigest(digest: string): void {
  // A digest comes from a TOC, i.e. from the network: it must never steer a path.
  if (!DIGEST_PATTERN.test(digest)) throw new LazyError('ESTARGZ_TOC', `not a sha256 chunk digest: ${JSON.stringify(digest).slice(0, 80)}`)
}

export function isChunkDigest(digest: string): boolean {
  return DIGEST_PATTERN.test(digest)
}
