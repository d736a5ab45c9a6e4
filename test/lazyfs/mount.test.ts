// The FUSE filesystem of one layer, mounted for real, over a synthetic layer (gzip members per
// chunk, as in eStargz, without a TOC) so FUSE and fetch behaviour are pinned on their own.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {chmodSync, existsSync, mkdtempSync, rmSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {fileURLToPath} from 'node:url'
import {bufferSource} from '../../src/estargz/random-access.js'
import {ChunkCache} from '../../src/lazyfs/chunk-cache.js'
import {mountLayerContent, type MountedLayer} from '../../src/lazyfs/mount.js'
import type {LazyfsLog} from '../../src/lazyfs/log.js'
import {buildSyntheticLayer, type SyntheticFile} from './synthetic-layer.js'
import {countingSource, waitFor, type CountingSource} from './counting-source.js'
import {forceUnmount, isMounted, requireFuse} from './mounts.js'
import {requireCommand} from '../rig/process.js'
import {dumpTree, sh, shStatus} from './tree-dump.js'
import {rigTempDir} from '../rig/tmp.js'

const CHUNK = 64 << 10
const big = randomBytes(20 * CHUNK + 1234)
const small = Buffer.from('hello from a lazy layer\n')
const files: SyntheticFile[] = [
  {path: 'etc', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_000_000},
  {path: 'etc/motd', kind: 'reg', mode: 0o644, uid: 0, gid: 0, data: small, mtimeMs: 1_600_000_001_000},
  {path: 'srv', kind: 'dir', mode: 0o1777, uid: 12, gid: 34},
  {path: 'srv/big.bin', kind: 'reg', mode: 0o600, uid: 1000, gid: 1001, data: big, mtimeMs: 1_650_000_000_000, xattrs: {'user.origin': 'test'}},
  {path: 'srv/big-link', kind: 'reg', hardlinkTo: 'srv/big.bin'},
  {path: 'usr/bin/su', kind: 'reg', mode: 0o4755, data: Buffer.from('#!/bin/sh\n')},
  {path: 'usr/bin/wall', kind: 'reg', mode: 0o2755, gid: 5, data: Buffer.from('wall\n')},
  {path: 'usr/bin/sh', kind: 'symlink', mode: 0o777, linkName: '../../bin/busybox'},
  {path: 'dev/null', kind: 'char', mode: 0o666, devMajor: 1, devMinor: 3},
  {path: 'dev/loop0', kind: 'block', mode: 0o660, devMajor: 7, devMinor: 0, gid: 6},
  {path: 'run/ctl', kind: 'fifo', mode: 0o600},
  {path: 'empty', kind: 'reg', mode: 0o644, data: Buffer.alloc(0)},
  {path: 'zeros', kind: 'reg', mode: 0o644, data: Buffer.alloc(4 * CHUNK)},
]
const layer = buildSyntheticLayer(files, CHUNK)

const logLines: string[] = []
const log: LazyfsLog = {
  debug: () => undefined,
  info: (m) => logLines.push(`info ${m}`),
  warn: (m, f) => logLines.push(`warn ${m} ${JSON.stringify(f)}`),
  error: (m, f) => logLines.push(`error ${m} ${JSON.stringify(f)}`),
}

let work: string
const mounts: MountedLayer[] = []
const mountpoints: string[] = []

async function mountFresh(blob = layer.blob, options: {cacheDir?: string; content?: typeof layer.content; readAheadChunks?: number} = {}): Promise<{mounted: MountedLayer; source: CountingSource; cache: ChunkCache; dir: string}> {
  const dir = join(work, `mnt-${mountpoints.length}`)
  mountpoints.push(dir)
  const source = countingSource(bufferSource(blob))
  const cache = await ChunkCache.open({dir: options.cacheDir ?? join(work, `cache-${mountpoints.length}`)})
  const mounted = await mountLayerContent({mountpoint: dir, content: options.content ?? layer.content, source, cache, log, label: 'sha256:synthetic', readAheadChunks: options.readAheadChunks})
  mounts.push(mounted)
  return {mounted, source, cache, dir}
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex')

before(() => {
  requireFuse()
  work = rigTempDir('lazyfs')
})

after(async () => {
  for (const m of mounts) await m.unmount().catch(() => undefined)
  for (const dir of mountpoints) await forceUnmount(dir)
  for (const dir of mountpoints) assert.equal(await isMounted(dir), false, `${dir} still mounted`)
  rmSync(work, {recursive: true, force: true})
})

describe('a mounted layer', () => {
  let dir: string
  let source: CountingSource
  before(async () => {
    ;({dir, source} = await mountFresh())
  })

  test('shows the fsname lazyctl, read-only, nosuid and nodev, with the kernel checking permissions, in the mount table', async () => {
    const line = await sh('findmnt', ['-n', '-o', 'SOURCE,FSTYPE,OPTIONS', '--mountpoint', dir])
    assert.match(line, /^lazyctl\s+fuse\.lazyctl\s+ro,/)
    // Set-uid files and device nodes of an image act only through a container's overlay mount,
    // never straight from the lazy mount on the host.
    assert.match(line, /\bnosuid\b/)
    assert.match(line, /\bnodev\b/)
    assert.match(line, /allow_other/)
    assert.match(line, /default_permissions/)
  })

  test('presents names, modes, owners, times, sizes, symlinks, devices and xattrs as the layer records them', async () => {
    const tree = await dumpTree(dir, {data: false})
    assert.deepEqual(Object.keys(tree).sort(), ['', 'dev', 'dev/loop0', 'dev/null', 'empty', 'etc', 'etc/motd', 'run', 'run/ctl', 'srv', 'srv/big-link', 'srv/big.bin', 'usr', 'usr/bin', 'usr/bin/sh', 'usr/bin/su', 'usr/bin/wall', 'zeros'])
    assert.deepEqual({type: tree['etc/motd'].type, mode: tree['etc/motd'].mode, size: tree['etc/motd'].size, mtime: tree['etc/motd'].mtime}, {type: 'reg', mode: 0o644, size: small.length, mtime: 1_600_000_001})
    assert.deepEqual({mode: tree.srv.mode, uid: tree.srv.uid, gid: tree.srv.gid, type: tree.srv.type}, {mode: 0o1777, uid: 12, gid: 34, type: 'dir'})
    assert.equal(tree['usr/bin/su'].mode, 0o4755)
    assert.deepEqual([tree['usr/bin/wall'].mode, tree['usr/bin/wall'].gid], [0o2755, 5])
    assert.deepEqual([tree['usr/bin/sh'].type, tree['usr/bin/sh'].target, tree['usr/bin/sh'].size], ['symlink', '../../bin/busybox', '../../bin/busybox'.length])
    assert.deepEqual([tree['dev/null'].type, tree['dev/null'].rdevMajor, tree['dev/null'].rdevMinor, tree['dev/null'].mode], ['char', 1, 3, 0o666])
    assert.deepEqual([tree['dev/loop0'].type, tree['dev/loop0'].rdevMajor, tree['dev/loop0'].rdevMinor, tree['dev/loop0'].gid], ['block', 7, 0, 6])
    assert.equal(tree['run/ctl'].type, 'fifo')
    assert.deepEqual([tree['srv/big.bin'].uid, tree['srv/big.bin'].gid, tree['srv/big.bin'].mode, tree['srv/big.bin'].size], [1000, 1001, 0o600, big.length])
    assert.deepEqual(tree['srv/big.bin'].xattrs, {'user.origin': 'test'})
    assert.equal(tree.empty.size, 0)
  })

  test('hardlinked names share one inode number and its link count', async () => {
    const tree = await dumpTree(dir, {data: false})
    assert.equal(tree['srv/big-link'].ino, tree['srv/big.bin'].ino)
    assert.equal(tree['srv/big.bin'].nlink, 2)
    assert.notEqual(tree['etc/motd'].ino, tree['srv/big.bin'].ino)
  })

  test('reading one small file fetches only its own chunk from the source', async () => {
    const before = source.bytesRead
    assert.equal(await sh('cat', [join(dir, 'etc/motd')]), small.toString())
    const fetched = source.bytesRead - before
    const motd = layer.chunks.find((c) => c.path === 'etc/motd')!
    assert.equal(fetched, motd.compressedEnd - motd.compressedOffset)
    assert.ok(fetched < layer.blob.length / 50, `fetched ${fetched} of ${layer.blob.length}`)
  })

  test('serves every file byte-identical to the layer content', async () => {
    const tree = await dumpTree(dir)
    assert.equal(tree['srv/big.bin'].sha256, sha(big))
    assert.equal(tree['srv/big-link'].sha256, sha(big))
    assert.equal(tree['etc/motd'].sha256, sha(small))
    assert.equal(tree.zeros.sha256, sha(Buffer.alloc(4 * CHUNK)))
    assert.equal(tree.empty.sha256, sha(Buffer.alloc(0)))
  })

  test('refuses every write with EROFS', async () => {
    for (const [cmd, args] of [['touch', [join(dir, 'new')]], ['mkdir', [join(dir, 'newdir')]], ['rm', ['-f', join(dir, 'etc/motd')]], ['chmod', ['600', join(dir, 'etc/motd')]]] as const) {
      const result = await shStatus(cmd, [...args])
      assert.notEqual(result.code, 0, `${cmd} succeeded`)
      assert.match(result.stderr, /Read-only file system/, `${cmd}: ${result.stderr}`)
    }
    const append = await shStatus('sh', ['-c', `echo x >> ${join(dir, 'etc/motd')}`])
    assert.match(append.stderr, /Read-only file system/)
  })
})

describe('fetching', () => {
  test('a read spanning several missing chunks fetches them with one range read', async () => {
    const {dir, source} = await mountFresh()
    const bigChunks = layer.chunks.filter((c) => c.path === 'srv/big.bin')
    // 5 chunks from the middle of the file, one dd read call each of 5 chunks.
    const out = await sh('sh', ['-c', `dd if=${join(dir, 'srv/big.bin')} bs=${5 * CHUNK} skip=2 count=1 status=none | sha256sum`])
    assert.equal(out.split(' ')[0], sha(big.subarray(2 * 5 * CHUNK, 3 * 5 * CHUNK)))
    const wanted = bigChunks.filter((c) => c.chunkOffset >= 10 * CHUNK && c.chunkOffset < 15 * CHUNK)
    const span = {offset: wanted[0].compressedOffset, end: wanted[wanted.length - 1].compressedEnd}
    // The kernel splits the 320 KiB read into ≤128 KiB requests and may read ahead, so look for
    // a range read that covers two or more adjacent chunks in one go.
    const coalesced = source.reads.filter((r) => r.offset >= span.offset && r.offset < span.end && bigChunks.filter((c) => c.compressedOffset >= r.offset && c.compressedEnd <= r.offset + r.length).length >= 2)
    assert.ok(coalesced.length >= 1, `reads: ${JSON.stringify(source.reads)}`)
    // And no byte of the blob was read twice.
    const seen = new Set<number>()
    for (const r of source.reads) {
      assert.ok(!seen.has(r.offset), `offset ${r.offset} read twice`)
      seen.add(r.offset)
    }
  })

  test('concurrent reads of one chunk share a single range read', async () => {
    const coarse = buildSyntheticLayer(files, 16 * CHUNK)
    // No read-ahead here: only the two readers' own requests should reach the source.
    const {dir, source, mounted} = await mountFresh(coarse.blob, {content: coarse.content, readAheadChunks: 0})
    source.hold()
    const file = join(dir, 'srv/big.bin')
    // Two readers, different pages of the same (16×64 KiB) chunk, so the kernel sends two requests.
    const first = sh('sh', ['-c', `dd if=${file} bs=4096 skip=1 count=1 status=none | sha256sum`])
    const second = sh('sh', ['-c', `dd if=${file} bs=4096 skip=200 count=1 status=none | sha256sum`])
    await waitFor(() => mounted.stats().cacheMisses >= 2, 'both reads to miss the cache')
    assert.equal(source.waiting, 1, 'one range read waits; the second read joined it')
    source.release()
    const [a, b] = await Promise.all([first, second])
    assert.equal(a.split(' ')[0], sha(big.subarray(4096, 8192)))
    assert.equal(b.split(' ')[0], sha(big.subarray(200 * 4096, 201 * 4096)))
    assert.equal(source.reads.length, 1)
    const shared = coarse.chunks.find((c) => c.path === 'srv/big.bin')!
    assert.deepEqual(source.reads[0], {offset: shared.compressedOffset, length: shared.compressedEnd - shared.compressedOffset})
  })

  test('a chunk whose bytes do not match its digest fails the read with EIO and is never cached', async () => {
    const corrupt = Buffer.from(layer.blob)
    const motd = layer.chunks.find((c) => c.path === 'etc/motd')!
    // Re-encode different content in the same member slot: valid gzip, wrong digest.
    const victim = layer.chunks.find((c) => c.path === 'srv/big.bin' && c.chunkOffset === 3 * CHUNK)!
    corrupt[victim.compressedOffset + 20] ^= 0xff
    const {dir, cache} = await mountFresh(corrupt)
    const result = await shStatus('dd', [`if=${join(dir, 'srv/big.bin')}`, 'of=/dev/null', `bs=${CHUNK}`, 'skip=3', 'count=1', 'status=none'])
    assert.notEqual(result.code, 0)
    assert.match(result.stderr, /Input\/output error/)
    assert.equal(cache.has(victim.chunkDigest), false)
    assert.ok(logLines.some((l) => /error (chunk digest mismatch|chunk does not decode)/.test(l)), logLines.join('\n'))
    // Other files still read fine.
    assert.equal(await sh('cat', [join(dir, 'etc/motd')]), small.toString())
    // A verified chunk is served first and written to the cache right after.
    await waitFor(() => cache.has(motd.chunkDigest), 'the good chunk to reach the cache')
  })

  test('a source that fails makes reads EIO, and reads work again once it recovers', async () => {
    let failing = true
    const inner = bufferSource(layer.blob)
    const flaky = {size: inner.size, readAt: (o: number, l: number) => (failing ? Promise.reject(new Error('registry unreachable')) : inner.readAt(o, l))}
    const dir = join(work, `mnt-${mountpoints.length}`)
    mountpoints.push(dir)
    const cache = await ChunkCache.open({dir: join(work, 'cache-flaky')})
    const mounted = await mountLayerContent({mountpoint: dir, content: layer.content, source: flaky, cache, log, fetchRetries: 1})
    mounts.push(mounted)
    const first = await shStatus('cat', [join(dir, 'etc/motd')])
    assert.match(first.stderr, /Input\/output error/)
    // The kernel may retry the page once itself; each attempt is one failed (retried) fetch.
    assert.ok(mounted.stats().fetchErrors >= 1)
    assert.ok(mounted.stats().readErrors >= 1)
    failing = false
    // The kernel caches no failed page, so the same read goes to lazyfs again.
    assert.equal(await sh('cat', [join(dir, 'etc/motd')]), small.toString())
  })

  test('a reread from chunks in memory serves the same bytes and counts them, fetching nothing, with the chunk files gone', async () => {
    const {dir, mounted, source, cache} = await mountFresh()
    const file = join(dir, 'srv/big.bin')
    assert.equal((await sh('sh', ['-c', `sha256sum < ${file}`])).split(' ')[0], sha(big))
    const fetched = source.reads.length
    const before = mounted.stats()
    // Only the verified copies in memory can answer now: the disk cache has lost its files.
    for (const sub of readdirSync(cache.dir)) if (/^[0-9a-f]{2}$/.test(sub)) rmSync(join(cache.dir, sub), {recursive: true})
    // Out of the kernel's page cache, so the reads reach lazyfs again (128 KiB requests across
    // chunk boundaries, the last one past the end of the file).
    await sh('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none'])
    assert.equal((await sh('sh', ['-c', `dd if=${file} bs=1000 status=none | sha256sum`])).split(' ')[0], sha(big))
    const now = mounted.stats()
    assert.deepEqual(source.reads.slice(fetched), [], 'nothing fetched again (read-ahead included)')
    assert.equal(now.bytesServed - before.bytesServed, big.length, 'every byte served once more, and counted')
    assert.ok(now.cacheHits > before.cacheHits, 'answered as cache hits')
    assert.equal(now.readErrors, 0)
  })

  test('a sequential reader gets the next chunks fetched ahead of its reads', async () => {
    const {dir, mounted, cache} = await mountFresh(layer.blob, {readAheadChunks: 2})
    await sh('dd', [`if=${join(dir, 'srv/big.bin')}`, 'of=/dev/null', `bs=${CHUNK}`, 'count=3', 'status=none'])
    // The kernel asked for bytesServed bytes from offset 0 (its own read-ahead included); chunks
    // past that were fetched by lazyfs's read-ahead.
    const asked = mounted.stats().bytesServed
    const bigChunks = layer.chunks.filter((c) => c.path === 'srv/big.bin')
    await waitFor(() => bigChunks.some((c) => c.chunkOffset >= asked && cache.has(c.chunkDigest)), `a chunk past offset ${asked} to be fetched ahead`)
  })

  test('a cache bounded below the layer size still serves every byte right, refetching what it evicted', async () => {
    const dir = join(work, `mnt-${mountpoints.length}`)
    mountpoints.push(dir)
    const source = countingSource(bufferSource(layer.blob))
    const cache = await ChunkCache.open({dir: join(work, 'cache-bounded'), maxBytes: 4 * CHUNK, memoryBytes: CHUNK})
    const mounted = await mountLayerContent({mountpoint: dir, content: layer.content, source, cache, log})
    mounts.push(mounted)
    for (let pass = 0; pass < 2; pass++) {
      const out = await sh('sha256sum', [join(dir, 'srv/big.bin')])
      assert.equal(out.split(' ')[0], sha(big))
    }
    // Chunks are written just after they are served; each write evicts back under the bound.
    await waitFor(() => cache.bytesOnDisk <= 4 * CHUNK, `the cache to shrink to its bound (${cache.bytesOnDisk} bytes)`)
    assert.ok(cache.evictions > 0)
    assert.ok(mounted.stats().chunksLocal < mounted.stats().chunksTotal)
  })

  test('a read whose fetch hangs fails with EIO at the deadline, and the late bytes harm nothing', async () => {
    const dir = join(work, `mnt-${mountpoints.length}`)
    mountpoints.push(dir)
    const source = countingSource(bufferSource(layer.blob))
    const cache = await ChunkCache.open({dir: join(work, 'cache-deadline')})
    const mounted = await mountLayerContent({mountpoint: dir, content: layer.content, source, cache, log, readTimeoutMs: 300})
    mounts.push(mounted)
    source.hold()
    const stuck = await shStatus('cat', [join(dir, 'etc/motd')])
    assert.match(stuck.stderr, /Input\/output error/)
    assert.ok(mounted.stats().readErrors >= 1)
    source.release()
    const motd = layer.chunks.find((c) => c.path === 'etc/motd')!
    // The fetch finishes after all and is cached; the next read is served from it.
    await waitFor(() => cache.has(motd.chunkDigest), 'the late chunk to be cached')
    assert.equal(await sh('cat', [join(dir, 'etc/motd')]), small.toString())
  })

  test('a remount over the same cache reads everything without fetching and reports 100% local', async () => {
    const cacheDir = join(work, 'cache-shared')
    const first = await mountFresh(layer.blob, {cacheDir})
    await dumpTree(first.dir)
    await waitFor(() => first.mounted.stats().chunksLocal === first.mounted.stats().chunksTotal, 'every chunk read to be cached')
    await first.mounted.unmount()
    assert.equal(await isMounted(first.dir), false)
    const second = await mountFresh(layer.blob, {cacheDir})
    assert.equal(second.mounted.stats().chunksLocal, second.mounted.stats().chunksTotal, 'percent local derived from the cache dir')
    const tree = await dumpTree(second.dir)
    assert.equal(tree['srv/big.bin'].sha256, sha(big))
    assert.equal(second.source.bytesRead, 0)
    // No temp files are left in the cache.
    assert.deepEqual(readdirSync(join(cacheDir, 'tmp')), [])
  })
})

describe('prefetch and background fetch', () => {
  test('prefetch fetches the prioritized range in one large read and nothing else', async () => {
    const prioritized = buildSyntheticLayer(files, CHUNK, 'srv/big.bin')
    const {mounted, source, cache} = await mountFresh(prioritized.blob, {content: prioritized.content})
    const result = await mounted.prefetch()
    const wanted = prioritized.chunks.filter((c) => c.compressedOffset < prioritized.content.prefetchEnd!)
    assert.equal(result.failed, 0)
    assert.equal(result.chunks, wanted.length)
    for (const c of wanted) assert.ok(cache.has(c.chunkDigest))
    assert.equal(source.reads.length, 1)
    assert.equal(source.bytesRead, prioritized.content.prefetchEnd)
    assert.equal(mounted.stats().prefetch, 'done')
  })

  test('background fetch makes the whole layer local without reading any byte twice', async () => {
    const {mounted, source, dir} = await mountFresh()
    await sh('cat', [join(dir, 'etc/motd')])
    const run = mounted.backgroundFetch({bytesPerSecond: 1 << 30, maxRangeBytes: 3 * CHUNK})
    assert.equal(await run.finished, 'done')
    const stats = mounted.stats()
    assert.equal(stats.chunksLocal, stats.chunksTotal)
    assert.equal(stats.backgroundFetch, 'done')
    const dataEnd = Math.max(...layer.chunks.map((c) => c.compressedEnd))
    assert.ok(source.bytesRead <= dataEnd, `fetched ${source.bytesRead} > ${dataEnd}`)
    const ranges = [...source.reads].sort((a, b) => a.offset - b.offset)
    for (let i = 1; i < ranges.length; i++) assert.ok(ranges[i].offset >= ranges[i - 1].offset + ranges[i - 1].length, 'overlapping range reads')
    // Everything now reads with no further fetch.
    const fetched = source.bytesRead
    await dumpTree(dir)
    assert.equal(source.bytesRead, fetched)
  })
})

test('a mount removed from outside still unmounts cleanly and lets the process exit', async () => {
  const childWork = join(work, 'child')
  mountpoints.push(join(childWork, 'mnt'))
  const child = fileURLToPath(new URL('./external-unmount-child.js', import.meta.url))
  // The child exits by itself (no timeout kill) only if nothing of the mount holds its event loop.
  const {stdout} = await promisify(execFile)(process.execPath, [child, childWork], {timeout: 30_000}).catch((err: {stderr?: string; message: string}) => {
    throw new Error(`child failed: ${err.message}\n${err.stderr ?? ''}`)
  })
  assert.equal(stdout, 'hello\nunmounted\n')
  assert.equal(await isMounted(join(childWork, 'mnt')), false)
})

test('unmount leaves no mount behind', async () => {
  const {mounted, dir} = await mountFresh()
  assert.equal(await isMounted(dir), true)
  await mounted.unmount()
  assert.equal(await isMounted(dir), false)
})

describe('mount and unmount without a shell', () => {
  test('a mountpoint whose path holds $(…) and backquotes mounts and unmounts, running nothing', async () => {
    const marker = join(work, 'ran')
    const dir = join(work, `odd $(touch ${marker}) \`touch ${marker}\` "q"`)
    mountpoints.push(dir)
    const cache = await ChunkCache.open({dir: join(work, 'cache-odd')})
    const mounted = await mountLayerContent({mountpoint: dir, content: layer.content, source: bufferSource(layer.blob), cache, log, label: 'sha256:odd'})
    assert.equal(await isMounted(dir), true)
    await mounted.unmount()
    assert.equal(await isMounted(dir), false)
    assert.equal(existsSync(marker), false, 'no shell expanded the path')
  })
})

describe('permissions', () => {
  test("the kernel checks the layer's modes (default_permissions): user nobody reads a 0644 file, not a 0600 one of uid 1000", async () => {
    requireCommand('setpriv', 'util-linux')
    // Outside the rig's 0700 temp dir: nobody must be able to reach the mount at all.
    const base = mkdtempSync('/tmp/lazyctl-permissions-')
    chmodSync(base, 0o755)
    const dir = join(base, 'mnt')
    mountpoints.push(dir)
    try {
      const cache = await ChunkCache.open({dir: join(work, 'cache-permissions')})
      const mounted = await mountLayerContent({mountpoint: dir, content: layer.content, source: bufferSource(layer.blob), cache, log, label: 'sha256:permissions'})
      // Asynchronously: this process serves the mount, so a blocking child would deadlock it.
      const asNobody = (path: string) =>
        new Promise<{code: number | null; stdout: string; stderr: string}>((resolve) => {
          execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'head', '-c', '64', join(dir, path)], {encoding: 'utf8'}, (err, stdout, stderr) => resolve({code: err ? ((err as {code?: number}).code ?? 1) : 0, stdout, stderr}))
        })
      const open = await asNobody('etc/motd')
      assert.equal(open.code, 0, open.stderr)
      assert.equal(open.stdout, small.toString())
      const closed = await asNobody('srv/big.bin')
      assert.notEqual(closed.code, 0)
      assert.match(closed.stderr, /Permission denied/)
      await mounted.unmount()
    } finally {
      rmSync(base, {recursive: true, force: true})
    }
  })
})
