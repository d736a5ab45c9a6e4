// Prefetch, background fetch, faults, the cache bound and the metrics of lazy layers, through the
// real daemon (`lazyctl snapshotter serve`), a real registry and real FUSE mounts. Layers are
// prepared the way containerd's unpacker asks for them (Prepare with the remote labels), and the
// files are read straight from the FUSE mountpoint the daemon reports.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {createReadStream, readdirSync, statSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import * as grpc from '@grpc/grpc-js'
import {parseReference} from '../../src/oci/reference.js'
import type {Digest} from '../../src/oci/digest.js'
import {RegistryClient} from '../../src/registry/client.js'
import {CredentialStore, staticLocator} from '../../src/registry/credentials.js'
import type {MountedLayerStatus} from '../../src/snapshotter/remote-layer-mounter.js'
import {querySnapshotterStatus, type SnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {buildEstargzFixture, type EstargzFixture} from '../lazyfs/estargz-fixture.js'
import {runCli} from '../rig/cli.js'
import {freePort} from '../rig/ports.js'
import {waitUntilReady} from '../rig/process.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from './daemon.js'
import {SnapshotsClient, grpcCode} from './snapshots-client.js'

const CHUNK = 256 << 10
// Random bytes: gzip cannot shrink them, so compressed and uncompressed sizes are alike and the
// byte counts below mean something.
const FILES: Record<string, Buffer> = {
  'app/prioritized.bin': randomBytes(CHUNK * 3 + 1000),
  'data/one.bin': randomBytes(CHUNK * 4),
  'data/two.bin': randomBytes(CHUNK * 4 + 17),
  'data/three.bin': randomBytes(CHUNK * 2),
}
const REPOSITORY = 'lazy/fetch'

let registry: RegistryRig
let workDir: string
let fixture: EstargzFixture
let imageRef: string

before(async () => {
  workDir = rigTempDir('lazy-fetch')
  registry = await startRegistry()
  fixture = await buildEstargzFixture(workDir, 'layer', Object.entries(FILES).map(([path, data]) => ({path, kind: 'reg' as const, mode: 0o644, data})), {
    chunkSize: CHUNK,
    prioritizedFiles: ['app/prioritized.bin'],
  })
  assert.deepEqual(fixture.result.missingPrioritized, [])
  imageRef = `${registry.host}/${REPOSITORY}:v1`
  const client = new RegistryClient()
  try {
    await client.pushBlob(parseReference(imageRef), {digest: fixture.result.blobDigest as Digest, size: fixture.result.blobSize}, () => createReadStream(fixture.blob))
  } finally {
    await client.close()
  }
})
after(async () => {
  await registry?.stop()
  if (workDir) removeDir(workDir)
})

let prepareCount = 0

/** Asks the daemon for the layer as containerd's unpacker does; returns the mounted layer's status. */
async function prepareLazily(daemon: SnapshotterDaemon, reference = imageRef): Promise<MountedLayerStatus> {
  const client = new SnapshotsClient(daemon.socket)
  try {
    const n = ++prepareCount
    const answer = await grpcCode(client.prepare(`extract-${process.pid}-${n}`, '', {
      'containerd.io/snapshot.ref': `sha256:${createHash('sha256').update(`target-${n}`).digest('hex')}`,
      'containerd.io/snapshot/remote/stargz.reference': reference,
      'containerd.io/snapshot/remote/stargz.digest': fixture.result.blobDigest,
      'containerd.io/snapshot/stargz/toc.digest': fixture.result.tocDigest,
    }))
    assert.equal(answer.code, grpc.status.ALREADY_EXISTS, `the layer is served lazily (${answer.details})`)
  } finally {
    client.close()
  }
  return layerOf(await querySnapshotterStatus(daemon.socket))
}

function layerOf(status: SnapshotterStatus): MountedLayerStatus {
  const layer = status.layers.find((l) => l.layerDigest === fixture.result.blobDigest)
  assert.ok(layer, 'status lists the lazy layer')
  return layer
}

async function layerNow(daemon: SnapshotterDaemon): Promise<MountedLayerStatus> {
  return layerOf(await querySnapshotterStatus(daemon.socket))
}

/** Body bytes the registry sent for the blob (GETs: HEADs have no body). */
function blobBytesServed(): Promise<number> {
  return registry.bytesServed({repository: REPOSITORY, digest: fixture.result.blobDigest, method: 'GET'})
}

function totalFetched(layer: MountedLayerStatus): number {
  return (layer.bytesFetched ?? 0) + (layer.metadataBytesFetched ?? 0)
}

async function assertFilesCorrect(mountpoint: string, paths = Object.keys(FILES)): Promise<void> {
  for (const path of paths) {
    const data = await readFile(join(mountpoint, path))
    assert.ok(data.equals(FILES[path]!), `${path} read through FUSE has the source's bytes`)
  }
}

/** Sum of file sizes under a directory (the cache's chunk files and any temp files). */
function bytesUnder(dir: string): number {
  let total = 0
  for (const entry of readdirSync(dir, {withFileTypes: true, recursive: true})) {
    // A chunk evicted between the listing and its stat is no longer on disk.
    if (entry.isFile()) total += statSync(join(entry.parentPath, entry.name), {throwIfNoEntry: false})?.size ?? 0
  }
  return total
}

/** Prometheus text → name{labels} → value. */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line)
    if (m) values.set(m[1]!, Number(m[2]))
  }
  return values
}

describe('prefetch, status numbers, metrics and faults (background fetch off)', () => {
  let daemon: SnapshotterDaemon
  let metricsPort: number
  let layer: MountedLayerStatus

  before(async () => {
    metricsPort = await freePort()
    daemon = await startSnapshotterDaemon({
      config: `[prefetch]\nenable = true\ntimeout_sec = 60\n[background_fetch]\nenable = false\n[metrics]\naddress = "127.0.0.1:${metricsPort}"\n`,
    })
  })
  after(async () => {
    await daemon?.stop()
  })

  test('the prioritized files are local when Prepare returns: reading them sends nothing to the registry', async () => {
    const before = await blobBytesServed()
    layer = await prepareLazily(daemon)
    assert.equal(layer.prefetch, 'done')
    assert.ok((layer.chunksLocal ?? 0) >= 4, `the prioritized file's 4 chunks are local (${layer.chunksLocal})`)
    assert.ok((layer.chunksLocal ?? 0) < (layer.chunksTotal ?? 0), 'the rest of the layer is not')
    const servedAfterPrepare = await blobBytesServed()
    assert.ok(servedAfterPrepare > before)
    await assertFilesCorrect(layer.mountpoint, ['app/prioritized.bin'])
    const afterRead = await layerNow(daemon)
    assert.equal(afterRead.rangeReads, layer.rangeReads, 'no range read for the prioritized file')
    assert.equal(await blobBytesServed(), servedAfterPrepare, 'the registry served nothing more')
    assert.ok((afterRead.bytesServed ?? 0) >= FILES['app/prioritized.bin']!.length)
  })

  test("`lazyctl snapshotter status` bytes fetched equal the registry's own count for the blob", async () => {
    await assertFilesCorrect(layer.mountpoint, ['data/one.bin'])
    const cli = await runCli(['snapshotter', 'status', '--snapshotter-socket', daemon.socket, '--format', 'json'])
    assert.equal(cli.status, 0, cli.stderr)
    const status = JSON.parse(cli.stdout) as SnapshotterStatus
    const now = layerOf(status)
    // The registry only ever served this daemon (the blob was pushed, never pulled, before).
    assert.ok((now.metadataBytesFetched ?? 0) > 0, 'footer and TOC reads are counted')
    assert.equal(totalFetched(now), await blobBytesServed(), 'chunk reads + footer/TOC reads = what the registry sent')
    assert.ok((now.bytesFetched ?? 0) <= fixture.result.blobSize)
    const human = await runCli(['snapshotter', 'status', '--snapshotter-socket', daemon.socket])
    // No [cache] max_bytes here: bounded by half the filesystem of the root.
    assert.match(human.stdout, /Chunk cache:\s+\S+ \S+ in \d+ chunks \(bound \S+ \S+, 0 evicted\)/)
  })

  test('/metrics reports bytes fetched and served, fetch latency, cache hits and mounted layers, as status does', async () => {
    await assertFilesCorrect(layer.mountpoint, ['data/one.bin'])
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    assert.equal(res.status, 200)
    const metrics = parseMetrics(await res.text())
    const now = await layerNow(daemon)
    assert.equal(metrics.get('lazyctl_snapshotter_fetched_bytes_total'), totalFetched(now))
    assert.equal(metrics.get('lazyctl_snapshotter_served_bytes_total'), now.bytesServed)
    assert.ok((now.bytesServed ?? 0) > 0)
    assert.equal(metrics.get('lazyctl_snapshotter_range_reads_total'), now.rangeReads)
    assert.equal(metrics.get('lazyctl_snapshotter_fetch_duration_seconds_count{outcome="ok"}'), now.rangeReads, 'one latency sample per range read')
    assert.ok((metrics.get('lazyctl_snapshotter_fetch_duration_seconds_sum{outcome="ok"}') ?? 0) > 0)
    assert.ok((metrics.get('lazyctl_snapshotter_cache_hits_total') ?? 0) > 0, 'the second read of data/one.bin hit the cache')
    assert.ok((metrics.get('lazyctl_snapshotter_cache_misses_total') ?? 0) > 0)
    assert.equal(metrics.get('lazyctl_snapshotter_layers_mounted'), 1)
    assert.ok((metrics.get('lazyctl_snapshotter_cache_bytes') ?? 0) > 0)
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404)
  })

  test('a fallback is counted by reason in /metrics', async () => {
    const client = new SnapshotsClient(daemon.socket)
    try {
      const key = `bad-toc-${process.pid}`
      await client.prepare(key, '', {
        'containerd.io/snapshot.ref': `sha256:${'5'.repeat(64)}`,
        'containerd.io/snapshot/remote/stargz.reference': imageRef,
        'containerd.io/snapshot/remote/stargz.digest': fixture.result.blobDigest,
        'containerd.io/snapshot/stargz/toc.digest': `sha256:${'6'.repeat(64)}`,
      })
      await daemon.waitForLog('the fallback line', (l) => l.key === key && l['remote-snapshot-prepared'] === false)
    } finally {
      client.close()
    }
    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text())
    assert.equal(metrics.get('lazyctl_snapshotter_fallbacks_total{reason="toc_digest_mismatch"}'), 1)
    // The refused layer's footer and TOC reads are in the total too: every byte the registry sent.
    const now = await layerNow(daemon)
    assert.ok((metrics.get('lazyctl_snapshotter_fetched_bytes_total') ?? 0) > totalFetched(now))
    assert.equal(metrics.get('lazyctl_snapshotter_fetched_bytes_total'), await blobBytesServed())
  })

  test('registry stopped: reads of chunks not yet local fail with EIO, the daemon stays up, and they work again when it returns', async (t) => {
    const before = await layerNow(daemon)
    const servedBefore = await blobBytesServed()
    await registry.halt()
    try {
      const started = performance.now()
      await assert.rejects(readFile(join(layer.mountpoint, 'data/two.bin')), (err: NodeJS.ErrnoException) => err.code === 'EIO')
      t.diagnostic(`EIO after ${Math.round(performance.now() - started)} ms with the registry stopped`)
      // Local chunks are still served, and the daemon still answers.
      await assertFilesCorrect(layer.mountpoint, ['app/prioritized.bin', 'data/one.bin'])
      const during = await layerNow(daemon)
      assert.ok((during.readErrors ?? 0) > 0, 'status counts the EIO reads')
    } finally {
      await registry.resume()
    }
    await assertFilesCorrect(layer.mountpoint, ['data/two.bin', 'data/three.bin'])
    const now = await layerNow(daemon)
    assert.equal(totalFetched(now) - totalFetched(before), (await blobBytesServed()) - servedBefore, 'still in agreement with the registry after the outage')
    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text())
    assert.ok((metrics.get('lazyctl_snapshotter_fetch_errors_total') ?? 0) > 0)
    assert.ok((metrics.get('lazyctl_snapshotter_read_errors_total') ?? 0) > 0)
  })
})

describe('background fetch', () => {
  let daemon: SnapshotterDaemon

  before(async () => {
    daemon = await startSnapshotterDaemon({config: '[background_fetch]\nenable = true\nstart_delay_sec = 0\nrate_bytes_per_sec = 0\n'})
  })
  after(async () => {
    await daemon?.stop()
  })

  test('makes a small layer 100% local without fetching a byte twice, and the layer then reads with the registry gone', async (t) => {
    const before = await blobBytesServed()
    const layer = await prepareLazily(daemon)
    await waitUntilReady(daemon.process, 'background fetch done', async () => (await layerNow(daemon)).backgroundFetch === 'done', 60_000)
    const done = await layerNow(daemon)
    assert.equal(done.percentLocal, 100)
    assert.equal(done.chunksLocal, done.chunksTotal)
    assert.equal(totalFetched(done), (await blobBytesServed()) - before, 'status agrees with the registry')
    assert.ok((done.bytesFetched ?? 0) <= fixture.result.blobSize, `chunk bytes fetched ${done.bytesFetched} ≤ blob ${fixture.result.blobSize}`)
    t.diagnostic(`blob ${fixture.result.blobSize} B; chunk bytes fetched ${done.bytesFetched} in ${done.rangeReads} range reads; footer+TOC ${done.metadataBytesFetched} B; registry sent ${(await blobBytesServed()) - before} B`)
    await registry.halt()
    try {
      await assertFilesCorrect(layer.mountpoint)
    } finally {
      await registry.resume()
    }
    assert.equal((await layerNow(daemon)).rangeReads, done.rangeReads, 'reads after the background fetch were all local')
  })
})

describe('expired registry tokens', () => {
  let tokenRegistry: RegistryRig
  let daemon: SnapshotterDaemon
  let ref: string

  before(async () => {
    // Tokens that expire after a second; anonymous pulls of the repository, so the daemon needs no credentials.
    tokenRegistry = await startRegistry({auth: 'token', tokenServer: {expiresInSeconds: 1, anonymousPull: [REPOSITORY]}})
    ref = `${tokenRegistry.host}/${REPOSITORY}:v1`
    const client = new RegistryClient({credentials: new CredentialStore([staticLocator(tokenRegistry.host, {username: tokenRegistry.username!, password: tokenRegistry.password!})])})
    try {
      await client.pushBlob(parseReference(ref), {digest: fixture.result.blobDigest as Digest, size: fixture.result.blobSize}, () => createReadStream(fixture.blob))
    } finally {
      await client.close()
    }
    daemon = await startSnapshotterDaemon({config: '[background_fetch]\nenable = false\n'})
  })
  after(async () => {
    await daemon?.stop()
    await tokenRegistry?.stop()
  })

  test('a range read after the token expired gets a new token and the right bytes', async () => {
    const layer = await prepareLazily(daemon, ref)
    const issued = tokenRegistry.tokenServer!.tokensIssued
    assert.ok(issued > 0)
    // A token issued now expires with the daemon's: wait until the registry refuses it.
    const probe = await anonymousToken(tokenRegistry)
    const blobUrl = `${tokenRegistry.url}/v2/${REPOSITORY}/blobs/${fixture.result.blobDigest}`
    assert.equal((await fetch(blobUrl, {method: 'HEAD', headers: {authorization: `Bearer ${probe}`}})).status, 200)
    await waitUntilReady(tokenRegistry.process, 'the registry refusing expired tokens', async () => {
      return (await fetch(blobUrl, {method: 'HEAD', headers: {authorization: `Bearer ${probe}`}})).status === 401
    }, 120_000)
    await assertFilesCorrect(layer.mountpoint, ['data/two.bin'])
    const now = await layerNow(daemon)
    assert.equal(now.readErrors, 0)
    assert.ok(tokenRegistry.tokenServer!.tokensIssued > issued + 1, 'the daemon fetched a new token (the probe took one)')
  })
})

/** An anonymous pull token for REPOSITORY, from the realm the registry's challenge names. */
async function anonymousToken(rig: RegistryRig): Promise<string> {
  const challenge = (await fetch(`${rig.url}/v2/`)).headers.get('www-authenticate') ?? ''
  const param = (name: string): string => new RegExp(`${name}="([^"]*)"`).exec(challenge)?.[1] ?? ''
  const url = new URL(param('realm'))
  url.searchParams.set('service', param('service'))
  url.searchParams.set('scope', `repository:${REPOSITORY}:pull`)
  const body = (await (await fetch(url)).json()) as {token: string}
  return body.token
}

describe('cache bound', () => {
  let daemon: SnapshotterDaemon
  const maxBytes = CHUNK * 3

  before(async () => {
    daemon = await startSnapshotterDaemon({config: `[background_fetch]\nenable = true\nstart_delay_sec = 0\n[prefetch]\nenable = false\n[cache]\nmax_bytes = ${maxBytes}\n`})
  })
  after(async () => {
    await daemon?.stop()
  })

  test('the chunk cache stays under max_bytes while every file still reads correctly; background fetch does not churn it', async () => {
    const layer = await prepareLazily(daemon)
    const skipped = await daemon.waitForLog('the background fetch decision', (l) => String(l.msg).startsWith('background fetch'))
    assert.equal(skipped.msg, 'background fetch skipped: the layer does not fit in the bounded cache')
    await assertFilesCorrect(layer.mountpoint)
    const cacheDir = join(daemon.root, 'cache', 'chunks')
    // A read returns once its chunk is verified; storing it (and evicting for it) ends a little
    // later. Settled: the daemon's count of bytes on disk is what the directory holds.
    await waitUntilReady(daemon.process, 'the chunk cache settling', async () => (await querySnapshotterStatus(daemon.socket)).cache?.bytesOnDisk === bytesUnder(cacheDir))
    const onDisk = bytesUnder(cacheDir)
    assert.ok(onDisk <= maxBytes, `cache holds ${onDisk} bytes ≤ ${maxBytes}`)
    const status = await querySnapshotterStatus(daemon.socket)
    assert.ok(status.cache, 'status reports the cache')
    assert.equal(status.cache.maxBytes, maxBytes)
    assert.ok(status.cache.bytesOnDisk <= maxBytes)
    assert.ok(status.cache.evictions > 0, 'chunks were evicted to stay under the bound')
  })
})
