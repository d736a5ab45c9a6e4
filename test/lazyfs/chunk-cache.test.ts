// The chunk cache on disk: what it holds survives a restart, and a crash can never leave a
// partial chunk that is later served.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {ChunkCache} from '../../src/lazyfs/chunk-cache.js'
import {isLazyError} from '../../src/cli/errors.js'
import {rigTempDir} from '../rig/tmp.js'

let work: string
before(() => {
  work = rigTempDir('chunk-cache')
})
after(() => rmSync(work, {recursive: true, force: true}))

const digestOf = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`

test('stores a chunk under <dir>/<hex[0:2]>/<digest> and finds it again after reopening', async () => {
  const dir = join(work, 'reopen')
  const data = Buffer.from('chunk bytes '.repeat(1000))
  const digest = digestOf(data)
  const cache = await ChunkCache.open({dir})
  await cache.put(digest, data)
  assert.ok(existsSync(join(dir, digest.slice(7, 9), digest)))
  await cache.close()
  const again = await ChunkCache.open({dir, memoryBytes: 0})
  assert.equal(again.has(digest), true)
  assert.equal(again.chunkCount, 1)
  assert.equal(again.bytesOnDisk, data.length)
  assert.deepEqual(await again.readChunk(digest, data.length), data)
  const part = Buffer.alloc(5)
  assert.equal(await again.readInto(digest, data.length, 6, 5, part, 0), true)
  assert.equal(part.toString(), 'bytes')
  await again.close()
})

test('removes temp files a crash left behind and never counts them as chunks', async () => {
  const dir = join(work, 'crash')
  mkdirSync(join(dir, 'tmp'), {recursive: true})
  const data = Buffer.from('half written')
  writeFileSync(join(dir, 'tmp', `${digestOf(data).slice(7)}.abc123`), data.subarray(0, 4))
  const cache = await ChunkCache.open({dir})
  assert.equal(cache.chunkCount, 0)
  assert.equal(cache.has(digestOf(data)), false)
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [])
  await cache.close()
})

test('a chunk file of the wrong size is treated as missing and dropped', async () => {
  const dir = join(work, 'short')
  const data = Buffer.alloc(10_000, 7)
  const digest = digestOf(data)
  const first = await ChunkCache.open({dir})
  await first.put(digest, data)
  await first.close()
  // As if the machine lost power after the rename but before the data reached the disk.
  truncateSync(join(dir, digest.slice(7, 9), digest), 100)
  const cache = await ChunkCache.open({dir, memoryBytes: 0})
  assert.equal(await cache.readChunk(digest, data.length), undefined)
  assert.equal(cache.has(digest), false)
  assert.equal(existsSync(join(dir, digest.slice(7, 9), digest)), false)
  await cache.close()
})

test('a chunk rewritten on disk with the same size is caught by its digest after a restart, dropped, and not served', async () => {
  const dir = join(work, 'rewritten')
  const data = Buffer.alloc(20_000, 1)
  const digest = digestOf(data)
  const first = await ChunkCache.open({dir})
  await first.put(digest, data)
  await first.close()
  writeFileSync(join(dir, digest.slice(7, 9), digest), Buffer.alloc(20_000, 2))
  const cache = await ChunkCache.open({dir, memoryBytes: 0})
  const part = Buffer.alloc(10)
  assert.equal(await cache.readInto(digest, data.length, 100, 10, part, 0), false, 'a partial read is refused too')
  assert.equal(cache.has(digest), false)
  assert.equal(existsSync(join(dir, digest.slice(7, 9), digest)), false)
  // The right bytes, stored again, are served (and hashed once).
  await cache.put(digest, data)
  assert.deepEqual(await cache.readChunk(digest, data.length), data)
  await cache.close()
})

test('the cache is root\'s alone: 0700 directories (an older 0755 cache closed on open), 0600 chunk files', async () => {
  const dir = join(work, 'modes')
  mkdirSync(dir, {mode: 0o755})
  chmodSync(dir, 0o755)
  const cache = await ChunkCache.open({dir})
  const data = Buffer.from('private image content')
  const digest = digestOf(data)
  await cache.put(digest, data)
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  assert.equal(statSync(join(dir, digest.slice(7, 9))).mode & 0o777, 0o700)
  assert.equal(statSync(join(dir, digest.slice(7, 9), digest)).mode & 0o777, 0o600)
  await cache.close()
})

test('refuses a digest that could steer a path outside the cache', async () => {
  const cache = await ChunkCache.open({dir: join(work, 'hostile')})
  await assert.rejects(cache.put('sha256:../../etc/passwd', Buffer.from('x')), (err: unknown) => isLazyError(err, 'ESTARGZ_TOC'))
  await cache.close()
})

test('the in-memory LRU stays within its byte bound', async () => {
  const cache = await ChunkCache.open({dir: join(work, 'lru'), memoryBytes: 3000})
  const chunks = [1, 2, 3, 4].map((n) => Buffer.alloc(1000, n))
  for (const c of chunks) cache.remember(digestOf(c), c)
  assert.equal(cache.fromMemory(digestOf(chunks[0])), undefined, 'least recently used evicted')
  for (const c of chunks.slice(1)) assert.deepEqual(cache.fromMemory(digestOf(c)), c)
  await cache.close()
})

test('a bounded cache deletes the least recently used chunks and keeps what was just read', async () => {
  const dir = join(work, 'bounded')
  const cache = await ChunkCache.open({dir, maxBytes: 3500, memoryBytes: 0})
  const chunks = [1, 2, 3, 4].map((n) => Buffer.alloc(1000, n))
  for (const c of chunks.slice(0, 3)) await cache.put(digestOf(c), c)
  // Reading the oldest makes it the most recently used.
  assert.deepEqual(await cache.readChunk(digestOf(chunks[0]), 1000), chunks[0])
  await cache.put(digestOf(chunks[3]), chunks[3])
  assert.ok(cache.bytesOnDisk <= 3500 * 0.9, `${cache.bytesOnDisk} bytes on disk`)
  assert.equal(cache.has(digestOf(chunks[1])), false, 'least recently used evicted')
  assert.equal(cache.has(digestOf(chunks[0])), true, 'recently read kept')
  assert.equal(cache.has(digestOf(chunks[3])), true, 'just written kept')
  assert.equal(existsSync(join(dir, digestOf(chunks[1]).slice(7, 9), digestOf(chunks[1]))), false)
  assert.equal(cache.evictions, 1)
  await cache.close()
})
