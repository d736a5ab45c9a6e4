// Layers resolved ahead: the first Prepare of an image names the layers after it
// (`cri.image-layers`, as lazyctl's pull and containerd's CRI send it), and the daemon reads their
// footer and TOC before their own Prepare comes — proven from the registry's own log: the TOC
// read of the next layer is there before its Prepare, and its Prepare adds no registry request.
// A TOC resolved ahead is still checked against the Prepare's digest. `lazyctl run`/`pull` also
// hint the layers from the manifest (ResolveAhead on the status service) before any Prepare, and
// name the image alone as they start, before they have the manifest.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import * as grpc from '@grpc/grpc-js'
import {parseReference} from '../../src/oci/reference.js'
import type {Digest} from '../../src/oci/digest.js'
import {RegistryClient} from '../../src/registry/client.js'
import {sendResolveAhead} from '../../src/snapshotter/status-protocol.js'
import {hintLayersAhead, querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {buildEstargzFixture, type EstargzFixture} from '../lazyfs/estargz-fixture.js'
import {startRegistry, type RegistryRig, type RegistryRequest} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from './daemon.js'
import {SnapshotsClient, grpcCode} from './snapshots-client.js'

const REPOSITORY = 'lazy/ahead'
let registry: RegistryRig
let daemon: SnapshotterDaemon
let workDir: string
let imageRef: string
const layers: EstargzFixture[] = []
/** A layer of the same repository that no Prepare names: only a hint brings it up. */
let hinted: EstargzFixture
const hintedData = randomBytes(150_000)
const contents = [randomBytes(300_000), randomBytes(200_000), randomBytes(100_000)]

before(async () => {
  workDir = rigTempDir('pre-resolve')
  registry = await startRegistry()
  imageRef = `${registry.host}/${REPOSITORY}:v1`
  const client = new RegistryClient()
  try {
    for (const [i, data] of contents.entries()) {
      const fixture = await buildEstargzFixture(workDir, `layer-${i}`, [{path: `layer-${i}/data.bin`, kind: 'reg', mode: 0o644, data}], {chunkSize: 64 << 10})
      await client.pushBlob(parseReference(imageRef), {digest: fixture.result.blobDigest as Digest, size: fixture.result.blobSize}, () => createReadStream(fixture.blob))
      layers.push(fixture)
    }
    hinted = await buildEstargzFixture(workDir, 'hinted', [{path: 'hinted/data.bin', kind: 'reg', mode: 0o644, data: hintedData}], {chunkSize: 64 << 10})
    await client.pushBlob(parseReference(imageRef), {digest: hinted.result.blobDigest as Digest, size: hinted.result.blobSize}, () => createReadStream(hinted.blob))
  } finally {
    await client.close()
  }
  // No prefetch, no background fetch: every blob request in the registry's log is metadata or a test's read.
  daemon = await startSnapshotterDaemon({config: '[prefetch]\nenable = false\n[background_fetch]\nenable = false\n'})
})
after(async () => {
  await daemon?.stop()
  await registry?.stop()
  if (workDir) removeDir(workDir)
})

/** The labels lazyctl's pull puts on the Prepare of layer `i` (CRI's, with the layers from i on). */
function labelsFor(i: number, tocDigest = layers[i]!.result.tocDigest): Record<string, string> {
  return {
    'containerd.io/snapshot.ref': `sha256:${createHash('sha256').update(`ahead-target-${i}-${tocDigest}`).digest('hex')}`,
    'containerd.io/snapshot/cri.image-ref': imageRef,
    'containerd.io/snapshot/cri.layer-digest': layers[i]!.result.blobDigest,
    'containerd.io/snapshot/cri.image-layers': layers.slice(i).map((l) => l.result.blobDigest).join(','),
    'containerd.io/snapshot/stargz/toc.digest': tocDigest,
  }
}

async function blobRequests(i: number): Promise<RegistryRequest[]> {
  return (await registry.requests()).filter((r) => r.kind === 'blob' && r.reference === layers[i]!.result.blobDigest)
}

/** Whether a request read the TOC member of layer `i` (a ranged GET covering its start). */
function readsToc(r: RegistryRequest, i: number): boolean {
  const tocOffset = layers[i]!.result.tocOffset
  return r.method === 'GET' && r.range !== undefined && r.range.start <= tocOffset && r.range.end >= tocOffset
}

test("the next layers' TOCs are read before their Prepare, and their Prepare reads nothing again", async () => {
  const client = new SnapshotsClient(daemon.socket)
  try {
    const first = await grpcCode(client.prepare('extract-ahead-0', '', labelsFor(0)))
    assert.equal(first.code, grpc.status.ALREADY_EXISTS, `layer 0 is served lazily (${first.details})`)
    // The daemon's own account that layer 1 was resolved; then the registry's.
    await daemon.waitForLog('layer 1 pre-resolved', (l) => l.msg === 'layer pre-resolved' && l.layer === layers[1]!.result.blobDigest)
    const before = await blobRequests(1)
    assert.ok(before.some((r) => readsToc(r, 1)), `layer 1's TOC was read before its Prepare: ${JSON.stringify(before.map((r) => [r.method, r.range]))}`)

    const second = await grpcCode(client.prepare('extract-ahead-1', '', labelsFor(1)))
    assert.equal(second.code, grpc.status.ALREADY_EXISTS, `layer 1 is served lazily (${second.details})`)
    assert.deepEqual((await blobRequests(1)).map((r) => r.id), before.map((r) => r.id), "layer 1's Prepare sent no request of its own")
    await daemon.waitForLog('layer 1 taken from the resolved-ahead layers', (l) => l.msg === 'TOC was resolved ahead' && l.layer === layers[1]!.result.blobDigest)

    // And the layer serves its bytes (chunks fetched and verified as for any layer).
    const status = await querySnapshotterStatus(daemon.socket)
    const mounted = status.layers.find((l) => l.layerDigest === layers[1]!.result.blobDigest)
    assert.ok(mounted, 'status lists layer 1')
    assert.ok((await readFile(join(mounted.mountpoint, 'layer-1/data.bin'))).equals(contents[1]!))
    assert.ok((mounted.metadataBytesFetched ?? 0) > 0, 'the footer and TOC bytes read ahead count as the layer\'s')
  } finally {
    client.close()
  }
})

test('a TOC resolved ahead is still checked against the digest its Prepare names', async () => {
  await daemon.waitForLog('layer 2 pre-resolved', (l) => l.msg === 'layer pre-resolved' && l.layer === layers[2]!.result.blobDigest)
  const client = new SnapshotsClient(daemon.socket)
  try {
    const wrong = `sha256:${'7'.repeat(64)}`
    const key = 'extract-ahead-2-wrong'
    const mounts = await client.prepare(key, '', labelsFor(2, wrong))
    assert.equal(mounts[0]!.type, 'bind', 'a TOC that does not match falls back to a normal snapshot')
    const line = await daemon.waitForLog('the fallback line', (l) => l.key === key && l.level === 'warn')
    assert.match(String(line.reason), /TOC digest is sha256:[0-9a-f]{64}, expected sha256:7{64}/)
    await daemon.waitForLog('the mismatch of the resolved-ahead TOC', (l) => String(l.msg).startsWith('pre-resolved TOC does not match') && l.layer === layers[2]!.result.blobDigest)
  } finally {
    client.close()
  }
})

test('a hint from the pull (ResolveAhead) reads a layer\'s TOC before any Prepare; its Prepare then reads nothing again', async () => {
  const digest = hinted.result.blobDigest
  // Reads only (the push in before() sent a HEAD for this blob).
  const requests = async () => (await registry.requests()).filter((r) => r.kind === 'blob' && r.reference === digest && r.method === 'GET')
  assert.equal((await requests()).length, 0)
  assert.equal(await hintLayersAhead(daemon.socket, {image: imageRef, layers: [digest]}), 1)
  await daemon.waitForLog('the hinted layer pre-resolved', (l) => l.msg === 'layer pre-resolved' && l.layer === digest)
  const before = await requests()
  assert.ok(before.some((r) => r.method === 'GET' && r.range !== undefined && r.range.start <= hinted.result.tocOffset && r.range.end >= hinted.result.tocOffset), 'the TOC was read')
  assert.equal(await hintLayersAhead(daemon.socket, {image: imageRef, layers: [digest]}), 0, 'a second hint starts nothing')
  assert.equal(await hintLayersAhead(daemon.socket, {image: imageRef, layers: [layers[0]!.result.blobDigest]}), 0, 'a layer already served starts nothing')
  assert.equal(await hintLayersAhead(daemon.socket, {image: imageRef, layers: ['sha256:nope']}), 0, 'a malformed hint is refused')

  const client = new SnapshotsClient(daemon.socket)
  try {
    const labels = {
      'containerd.io/snapshot.ref': `sha256:${createHash('sha256').update('hinted-target').digest('hex')}`,
      'containerd.io/snapshot/remote/stargz.reference': imageRef,
      'containerd.io/snapshot/remote/stargz.digest': digest,
      'containerd.io/snapshot/stargz/toc.digest': hinted.result.tocDigest,
    }
    const prepared = await grpcCode(client.prepare('extract-hinted', '', labels))
    assert.equal(prepared.code, grpc.status.ALREADY_EXISTS, `the hinted layer is served lazily (${prepared.details})`)
    assert.deepEqual((await requests()).map((r) => r.id), before.map((r) => r.id), 'its Prepare sent no request of its own')
  } finally {
    client.close()
  }
})

test('a hint naming only the image (sent as `lazyctl run` starts) reads its manifest and resolves its eStargz layers, and nothing of the others', async () => {
  // A fresh layer no Prepare or hint has named, and a plain (not eStargz) one beside it.
  const lazyData = randomBytes(120_000)
  const lazy = await buildEstargzFixture(workDir, 'early', [{path: 'early/data.bin', kind: 'reg', mode: 0o644, data: lazyData}], {chunkSize: 64 << 10})
  const plain = randomBytes(4096)
  const plainDigest = `sha256:${createHash('sha256').update(plain).digest('hex')}` as Digest
  const config = Buffer.from(JSON.stringify({architecture: 'amd64', os: 'linux', rootfs: {type: 'layers', diff_ids: []}}))
  const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}` as Digest
  const ref = parseReference(`${registry.host}/${REPOSITORY}:early`)
  const client = new RegistryClient()
  try {
    await client.pushBlob(ref, {digest: lazy.result.blobDigest as Digest, size: lazy.result.blobSize}, () => createReadStream(lazy.blob))
    await client.pushBlob(ref, {digest: plainDigest, size: plain.length}, () => Readable.from([plain]))
    await client.pushBlob(ref, {digest: configDigest, size: config.length}, () => Readable.from([config]))
    const manifest = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length},
      layers: [
        {mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: plainDigest, size: plain.length},
        {mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: lazy.result.blobDigest, size: lazy.result.blobSize, annotations: {'containerd.io/snapshot/stargz/toc.digest': lazy.result.tocDigest}},
      ],
    }
    await client.putManifest(ref, Buffer.from(JSON.stringify(manifest)), manifest.mediaType)
  } finally {
    await client.close()
  }
  const image = `${registry.host}/${REPOSITORY}:early`
  const since = (await registry.requests()).length

  // What bin/run.js sends: gRPC written on HTTP/2, fire and forget.
  sendResolveAhead(daemon.socket, {image})
  await daemon.waitForLog('the eStargz layer pre-resolved', (l) => l.msg === 'layer pre-resolved' && l.layer === lazy.result.blobDigest)
  const seen = (await registry.requests()).slice(since)
  assert.ok(seen.some((r) => r.kind === 'manifest' && r.reference === 'early' && r.method === 'GET'), 'the daemon read the manifest itself')
  assert.ok(seen.some((r) => r.kind === 'blob' && r.reference === lazy.result.blobDigest && r.range !== undefined && r.range.start <= lazy.result.tocOffset), 'and the eStargz layer\'s TOC')
  assert.ok(!seen.some((r) => r.reference === plainDigest), 'the plain layer was not touched')
  assert.ok(!seen.some((r) => r.reference === configDigest), 'nor the config')

  assert.equal(await hintLayersAhead(daemon.socket, {image}), 0, 'a second hint for the image starts nothing')
  assert.equal(await hintLayersAhead(daemon.socket, {image, platform: 'not-a-platform'}), 0, 'a bad platform is refused')
  assert.equal(await hintLayersAhead(daemon.socket, {image: `${registry.host}/${REPOSITORY}:missing`}), 0, 'an image the registry does not have starts nothing')
})
