// Real eStargz layers (made by lazyctl's writer from a GNU tar of a real tree) mounted through
// FUSE: from a local file and from the rig's docker-registry by HTTP range.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {randomBytes} from 'node:crypto'
import {createReadStream, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createHash} from 'node:crypto'
import {join} from 'node:path'
import {openFileSource, type ClosableRandomAccessSource, type RandomAccessSource} from '../../src/estargz/random-access.js'
import {openEstargz} from '../../src/estargz/reader.js'
import {ChunkCache} from '../../src/lazyfs/chunk-cache.js'
import {mountLayer, type MountedLayer} from '../../src/lazyfs/mount.js'
import {RegistryClient} from '../../src/registry/client.js'
import {parseReference} from '../../src/oci/reference.js'
import type {Digest} from '../../src/oci/digest.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {buildEstargzFixture, type EstargzFixture} from './estargz-fixture.js'
import {countingSource, waitFor, type CountingSource} from './counting-source.js'
import {forceUnmount, isMounted, requireFuse} from './mounts.js'
import {dumpTree, sh, shStatus, type DumpedEntry} from './tree-dump.js'
import type {SyntheticFile} from './synthetic-layer.js'
import {rigTempDir} from '../rig/tmp.js'

const files: SyntheticFile[] = [
  {path: 'bin', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_000_000},
  {path: 'bin/busybox', kind: 'reg', mode: 0o755, data: randomBytes(700_000), mtimeMs: 1_600_000_010_000},
  {path: 'bin/sh', kind: 'symlink', linkName: 'busybox'},
  {path: 'bin/ls', kind: 'reg', hardlinkTo: 'bin/busybox'},
  {path: 'usr/bin/passwd', kind: 'reg', mode: 0o4755, data: Buffer.from('setuid\n')},
  {path: 'usr/bin/crontab', kind: 'reg', mode: 0o2755, gid: 101, data: Buffer.from('setgid\n')},
  {path: 'usr/bin', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_020_000},
  {path: 'usr', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_020_000},
  {path: 'tmp', kind: 'dir', mode: 0o1777, mtimeMs: 1_600_000_030_000},
  {path: 'home/alice/notes.txt', kind: 'reg', mode: 0o600, uid: 1000, gid: 1000, data: Buffer.from('alice only\n'), xattrs: {'user.comment': 'private'}},
  {path: 'home/alice', kind: 'dir', mode: 0o700, uid: 1000, gid: 1000, mtimeMs: 1_600_000_040_000},
  {path: 'home', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_040_000},
  {path: 'dev/console', kind: 'char', mode: 0o600, devMajor: 5, devMinor: 1},
  {path: 'dev/sda1', kind: 'block', mode: 0o660, gid: 6, devMajor: 8, devMinor: 1},
  {path: 'dev', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_050_000},
  {path: 'run/initctl', kind: 'fifo', mode: 0o600},
  {path: 'run', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_050_000},
  {path: 'srv/data/large.bin', kind: 'reg', mode: 0o644, data: randomBytes(3 << 20)},
  {path: 'srv/data/text.log', kind: 'reg', mode: 0o644, data: Buffer.from('line of text\n'.repeat(100_000))},
  {path: 'srv/data/empty', kind: 'reg', mode: 0o644, data: Buffer.alloc(0)},
  {path: 'srv/data', kind: 'dir', mode: 0o750, uid: 33, gid: 33, mtimeMs: 1_600_000_060_000},
  {path: 'srv', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_060_000},
  {path: 'etc/hostname', kind: 'reg', mode: 0o644, data: Buffer.from('lazy\n'), mtimeMs: 1_600_000_070_000},
  {path: 'etc', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_070_000},
]

let work: string
let fixture: EstargzFixture
const mounts: MountedLayer[] = []
const mountpoints: string[] = []
const sources: ClosableRandomAccessSource[] = []

before(async () => {
  requireFuse()
  work = rigTempDir('lazyfs-esgz')
  fixture = await buildEstargzFixture(work, 'layer', files, {chunkSize: 256 << 10})
})

after(async () => {
  for (const m of mounts) await m.unmount().catch(() => undefined)
  for (const dir of mountpoints) await forceUnmount(dir)
  for (const s of sources) await s.close()
  for (const dir of mountpoints) assert.equal(await isMounted(dir), false, `${dir} still mounted`)
  rmSync(work, {recursive: true, force: true})
})

/** The dump without what legitimately differs: inode numbers (compared as groups) and dir sizes. */
function comparable(tree: Record<string, DumpedEntry>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(tree).map(([path, e]) => {
    const {ino: _ino, ...rest} = e
    return [path, e.type === 'dir' ? {...rest, size: 0} : rest]
  }))
}

function inodeGroups(tree: Record<string, DumpedEntry>): string[][] {
  const groups = new Map<number, string[]>()
  for (const [path, e] of Object.entries(tree)) groups.set(e.ino, [...(groups.get(e.ino) ?? []), path])
  return [...groups.values()].map((g) => g.sort()).sort((a, b) => a[0].localeCompare(b[0]))
}

describe('an eStargz layer from a local file', () => {
  let dir: string
  let source: CountingSource
  let mounted: MountedLayer

  before(async () => {
    const file = await openFileSource(fixture.blob)
    sources.push(file)
    source = countingSource(file)
    const reader = await openEstargz(source, {expectedTocDigest: fixture.result.tocDigest})
    dir = join(work, 'mnt-file')
    mountpoints.push(dir)
    mounted = await mountLayer({mountpoint: dir, reader, source, cache: await ChunkCache.open({dir: join(work, 'cache-file')}), label: fixture.result.blobDigest})
    mounts.push(mounted)
  })

  test('reading one small file fetches a small fraction of the blob', async () => {
    const before = source.bytesRead
    assert.equal(await sh('cat', [join(dir, 'etc/hostname')]), 'lazy\n')
    const fetched = source.bytesRead - before
    assert.ok(fetched > 0 && fetched < fixture.result.blobSize / 100, `fetched ${fetched} of ${fixture.result.blobSize}`)
  })

  test('the mounted tree equals the source tree: names, types, modes, owners, times, sizes, links, devices, xattrs, contents', async () => {
    const expected = await dumpTree(fixture.dir)
    const actual = await dumpTree(dir)
    assert.deepEqual(comparable(actual), comparable(expected))
    assert.deepEqual(inodeGroups(actual), inodeGroups(expected))
    assert.equal(actual['bin/ls'].ino, actual['bin/busybox'].ino)
  })

  test('after reading everything, every chunk is local and stats count what was served', async () => {
    await waitFor(() => mounted.stats().chunksLocal === mounted.stats().chunksTotal, 'every chunk read to be cached')
    const stats = mounted.stats()
    assert.ok(stats.bytesFetched <= fixture.result.blobSize)
    assert.equal(stats.bytesFetched, source.bytesRead - (source.reads[0]?.offset === undefined ? 0 : tocBytes(source)))
    assert.ok(stats.bytesServed >= (3 << 20) + 700_000)
  })
})

/** Bytes the reader itself read at open (footer and TOC), before lazyfs fetched anything. */
function tocBytes(source: CountingSource): number {
  return source.reads.filter((r) => r.offset >= fixture.result.tocOffset).reduce((n, r) => n + r.length, 0)
}

test('a corrupted chunk in the blob fails its read with EIO and leaves nothing of it in the cache', async () => {
  const blob = readFileSync(fixture.blob)
  const original = await openFileSource(fixture.blob)
  sources.push(original)
  const reader0 = await openEstargz(original)
  const target = reader0.lookup('srv/data/text.log')!
  const chunk = target.chunks[1]
  // Flip a byte inside the deflate data of the second chunk (past its 10-byte gzip header).
  blob[chunk.compressedOffset + 40] ^= 0x55
  const corruptPath = join(work, 'corrupt.esgz')
  writeFileSync(corruptPath, blob)
  const file = await openFileSource(corruptPath)
  sources.push(file)
  const reader = await openEstargz(file, {expectedTocDigest: fixture.result.tocDigest})
  const dir = join(work, 'mnt-corrupt')
  mountpoints.push(dir)
  const cache = await ChunkCache.open({dir: join(work, 'cache-corrupt')})
  const mounted = await mountLayer({mountpoint: dir, reader, cache})
  mounts.push(mounted)
  const bad = await shStatus('dd', [`if=${join(dir, 'srv/data/text.log')}`, 'of=/dev/null', `bs=${chunk.chunkSize}`, `skip=1`, 'count=1', 'status=none'])
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /Input\/output error/)
  assert.equal(cache.has(chunk.chunkDigest), false)
  assert.ok(mounted.stats().verifyFailures >= 1)
  // The first chunk of the same file is intact and readable.
  const good = await sh('sh', ['-c', `head -c 13 ${join(dir, 'srv/data/text.log')}`])
  assert.equal(good, 'line of text\n')
})

test('prefetch of a layer with prioritized files fetches exactly the range before the landmark', async () => {
  const prioritized = await buildEstargzFixture(work, 'prioritized', files, {chunkSize: 256 << 10, prioritizedFiles: ['etc/hostname', 'bin/busybox']})
  const file = await openFileSource(prioritized.blob)
  sources.push(file)
  const source = countingSource(file)
  const reader = await openEstargz(source, {expectedTocDigest: prioritized.result.tocDigest})
  assert.equal(reader.prefetch.kind, 'landmark')
  const landmark = reader.prefetch.kind === 'landmark' ? reader.prefetch.end : 0
  const dir = join(work, 'mnt-prioritized')
  mountpoints.push(dir)
  const cache = await ChunkCache.open({dir: join(work, 'cache-prioritized')})
  const mounted = await mountLayer({mountpoint: dir, reader, source, cache})
  mounts.push(mounted)
  const before = source.bytesRead
  const result = await mounted.prefetch()
  assert.equal(result.failed, 0)
  assert.equal(mounted.stats().prefetch, 'done')
  for (const path of ['etc/hostname', 'bin/busybox']) {
    for (const chunk of reader.lookup(path)!.chunks) assert.ok(cache.has(chunk.chunkDigest), `${path} chunk at ${chunk.chunkOffset} not local`)
  }
  assert.equal(cache.has(reader.lookup('srv/data/large.bin')!.chunks[0].chunkDigest), false)
  const fetched = source.bytesRead - before
  assert.ok(fetched <= landmark, `prefetch read ${fetched} bytes, the prioritized range is ${landmark}`)
  // The prioritized files now read without touching the source.
  await sh('cat', [join(dir, 'etc/hostname'), join(dir, 'bin/busybox')])
  assert.equal(source.bytesRead - before, fetched)
})

describe('an eStargz layer served by the rig registry', () => {
  let registry: RegistryRig
  let client: RegistryClient
  let dir: string
  let digest: Digest

  before(async () => {
    registry = await startRegistry()
    client = new RegistryClient()
    const ref = parseReference(`${registry.host}/lazyfs/layer:v1`)
    digest = fixture.result.blobDigest as Digest
    await client.pushBlob(ref, {digest, size: fixture.result.blobSize}, () => createReadStream(fixture.blob))
    const source = client.blobRangeSource(ref, digest, fixture.result.blobSize)
    const reader = await openEstargz(source, {expectedTocDigest: fixture.result.tocDigest})
    dir = join(work, 'mnt-registry')
    mountpoints.push(dir)
    mounts.push(await mountLayer({mountpoint: dir, reader, cache: await ChunkCache.open({dir: join(work, 'cache-registry')}), label: digest}))
  })

  after(async () => {
    await client?.close()
    await registry?.stop()
  })

  test('reading one small file makes the registry serve a small fraction of the blob', async () => {
    const before = await registry.bytesServed({digest, method: 'GET'})
    assert.equal(await sh('cat', [join(dir, 'home/alice/notes.txt')]), 'alice only\n')
    const served = (await registry.bytesServed({digest, method: 'GET'})) - before
    assert.ok(served > 0 && served < fixture.result.blobSize / 100, `registry served ${served} of ${fixture.result.blobSize}`)
  })

  test('background fetch makes a fresh mount fully local with the registry serving no byte twice', async () => {
    const ref = parseReference(`${registry.host}/lazyfs/layer:v1`)
    const reader = await openEstargz(client.blobRangeSource(ref, digest, fixture.result.blobSize), {expectedTocDigest: fixture.result.tocDigest})
    const bgDir = join(work, 'mnt-background')
    mountpoints.push(bgDir)
    const layer = await mountLayer({mountpoint: bgDir, reader, cache: await ChunkCache.open({dir: join(work, 'cache-background')}), label: digest})
    mounts.push(layer)
    const before = await registry.bytesServed({digest, method: 'GET'})
    const run = layer.backgroundFetch({bytesPerSecond: 1 << 30, maxRangeBytes: 1 << 20})
    assert.equal(await run.finished, 'done')
    const served = (await registry.bytesServed({digest, method: 'GET'})) - before
    const stats = layer.stats()
    assert.equal(stats.chunksLocal, stats.chunksTotal)
    // Everything before the TOC is payload; the registry sent it once at most.
    assert.ok(served <= fixture.result.tocOffset, `registry served ${served} bytes; the payload is ${fixture.result.tocOffset}`)
    assert.equal(stats.bytesFetched, served)
  })

  test('a chunk inside a range still in flight is served as soon as its own bytes have arrived', async () => {
    const ref = parseReference(`${registry.host}/lazyfs/layer:v1`)
    const blob = client.blobRangeSource(ref, digest, fixture.result.blobSize)
    const reader = await openEstargz(blob, {expectedTocDigest: fixture.result.tocDigest})
    // The registry's own range reads; one that spans several chunks (read-ahead) gets every byte
    // from the registry but is not answered until release: only the bytes that arrived can help.
    let release!: () => void
    const released = new Promise<void>((resolve) => {
      release = resolve
    })
    const reads: Array<{offset: number; length: number; held: boolean}> = []
    let holding = 0
    const source: RandomAccessSource = {
      size: blob.size,
      async readAt(offset, length, onProgress) {
        const held = length > 300 << 10
        reads.push({offset, length, held})
        const data = await blob.readAt(offset, length, onProgress)
        if (held) {
          holding++
          await released
          holding--
        }
        return data
      },
    }
    const holdDir = join(work, 'mnt-held')
    mountpoints.push(holdDir)
    const layer = await mountLayer({mountpoint: holdDir, reader, source, cache: await ChunkCache.open({dir: join(work, 'cache-held')}), label: digest, readAheadChunks: 4})
    mounts.push(layer)
    const before = await registry.bytesServed({digest, method: 'GET'})
    let sum: string | undefined
    const reading = sh('sh', ['-c', `dd if=${join(holdDir, 'srv/data/large.bin')} bs=128K status=none | sha256sum`]).then((out) => {
      sum = out.split(' ')[0]
    })
    try {
      await waitFor(() => sum !== undefined, 'the whole file read while read-ahead ranges are still held', 30_000)
      assert.ok(holding > 0, 'a range was still unanswered when the read finished')
    } finally {
      release()
    }
    await reading
    assert.equal(sum, createHash('sha256').update(readFileSync(join(fixture.dir, 'srv/data/large.bin'))).digest('hex'))
    // Chunks of the file came only from held ranges (nobody fetched them again): no byte twice.
    const fileChunks = reader.chunksFor('srv/data/large.bin', 0, 3 << 20)
    const fromHeld = fileChunks.filter((c) => reads.some((r) => r.held && r.offset <= c.compressedOffset && c.compressedEnd <= r.offset + r.length))
    assert.ok(fromHeld.length > 0, `reads: ${JSON.stringify(reads)}`)
    const sorted = [...reads].sort((a, b) => a.offset - b.offset)
    sorted.forEach((r, i) => assert.ok(i === 0 || sorted[i - 1].offset + sorted[i - 1].length <= r.offset, `ranges overlap: ${JSON.stringify(sorted)}`))
    await waitFor(() => layer.stats().rangeReads === reads.length, 'every range read to be counted')
    assert.equal(layer.stats().bytesFetched, (await registry.bytesServed({digest, method: 'GET'})) - before)
  })

  test('every file read through the registry-backed mount has the source sha256', async () => {
    const before = await registry.bytesServed({digest, method: 'GET'})
    const expected = await dumpTree(fixture.dir)
    const actual = await dumpTree(dir)
    for (const [path, e] of Object.entries(expected)) {
      if (e.type === 'reg') assert.equal(actual[path]?.sha256, e.sha256, path)
    }
    const served = (await registry.bytesServed({digest, method: 'GET'})) - before
    assert.ok(served <= fixture.result.blobSize, `registry served ${served} for a ${fixture.result.blobSize}-byte blob`)
  })
})

test('background fetch keeps `concurrency` range reads in flight, and still reads each byte once', async () => {
  const file = await openFileSource(fixture.blob)
  sources.push(file)
  const source = countingSource(file)
  const reader = await openEstargz(source, {expectedTocDigest: fixture.result.tocDigest})
  const dir = join(work, 'mnt-concurrent-background')
  mountpoints.push(dir)
  const mounted = await mountLayer({mountpoint: dir, reader, source, cache: await ChunkCache.open({dir: join(work, 'cache-concurrent-background')})})
  mounts.push(mounted)
  const readsBefore = source.reads.length
  source.hold()
  // One chunk per range read, so the layer takes many reads.
  const run = mounted.backgroundFetch({bytesPerSecond: 1 << 30, maxRangeBytes: 256 << 10, concurrency: 3})
  await waitFor(() => source.waiting === 3, 'three range reads to be waiting')
  // Give the walk every chance to start a fourth: it must not.
  for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve))
  assert.equal(source.waiting, 3)
  source.release()
  assert.equal(await run.finished, 'done')
  const stats = mounted.stats()
  assert.equal(stats.chunksLocal, stats.chunksTotal)
  const reads = source.reads.slice(readsBefore).sort((a, b) => a.offset - b.offset)
  assert.ok(reads.length > 3, `only ${reads.length} range reads`)
  for (let i = 1; i < reads.length; i++) {
    const previous = reads[i - 1]!
    assert.ok(previous.offset + previous.length <= reads[i]!.offset, `reads at ${previous.offset}+${previous.length} and ${reads[i]!.offset} overlap`)
  }
  assert.ok(reads.reduce((n, r) => n + r.length, 0) <= fixture.result.tocOffset)
})
