// The containerd client pieces against the rig's real containerd: content store streaming, digest
// refusal, the GC labels and lease of a pull, the containerd-store transport, remote labels.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'
import {join} from 'node:path'
import {ContainerdConnection} from '../../src/containerd/connection.js'
import {contentInfo, readContent, readContentBytes, writeContent, CONTENT_CHUNK_BYTES} from '../../src/containerd/content.js'
import {getImage} from '../../src/containerd/images.js'
import {snapshotterPlugin} from '../../src/containerd/introspection.js'
import {listLeases} from '../../src/containerd/leases.js'
import {pullImage, type ImageFetcher} from '../../src/containerd/pull.js'
import {remoteSnapshotLabels} from '../../src/containerd/remote-snapshot-labels.js'
import {statSnapshot} from '../../src/containerd/snapshots.js'
import type {Descriptor} from '../../src/oci/descriptor.js'
import type {Digest} from '../../src/oci/digest.js'
import {chainId} from '../../src/oci/chain-id.js'
import {parseReference} from '../../src/oci/reference.js'
import {fetcherFromSource} from '../../src/run/source-fetcher.js'
import {openImageSink, openImageSource} from '../../src/transport/factory.js'
import {RegistryClient} from '../../src/registry/client.js'
import {startContainerd, type ContainerdRig} from '../rig/containerd.js'
import {busyboxImage, writeOciArchive, type WrittenImage} from '../rig/images.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

let rig: ContainerdRig
let conn: ContainerdConnection
let dir: string
let archive: string
let written: WrittenImage

before(async () => {
  rig = await startContainerd()
  conn = new ContainerdConnection({address: rig.address, namespace: rig.namespace})
  dir = rigTempDir('containerd-client')
  archive = join(dir, 'busybox.tar')
  written = (await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'etc/extra', content: 'second layer\n'}]}]}))) as WrittenImage
})
after(async () => {
  conn?.close()
  await rig?.stop()
  if (dir) removeDir(dir)
})

const sha256 = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}`

describe('content store', () => {
  test('a blob larger than one write chunk round-trips byte for byte, and reads come in chunks of at most 1 MiB', async () => {
    const data = randomBytes(3 * CONTENT_CHUNK_BYTES + 12345)
    const digest = sha256(data)
    // The source yields odd-sized pieces; the writer re-chunks them.
    const pieces = [data.subarray(0, 1000), data.subarray(1000, 2_500_000), data.subarray(2_500_000)]
    assert.equal(await writeContent(conn, {ref: `test-${digest}`, expected: digest, size: data.length}, () => Readable.from(pieces)), true)
    assert.equal((await contentInfo(conn, digest))?.size, data.length)
    const chunks: Buffer[] = []
    for await (const chunk of readContent(conn, digest)) chunks.push(chunk)
    assert.ok(chunks.every((c) => c.length <= CONTENT_CHUNK_BYTES))
    assert.ok(Buffer.concat(chunks).equals(data))
    assert.equal(await writeContent(conn, {ref: `test-${digest}`, expected: digest, size: data.length}, () => Readable.from(pieces)), false, 'already there')
  })

  test('refuses bytes that do not match the expected digest and leaves no ingest behind', async () => {
    const data = randomBytes(4096)
    const claimed = sha256(Buffer.from('something else'))
    await assert.rejects(
      writeContent(conn, {ref: 'test-mismatch', expected: claimed, size: data.length}, () => Readable.from([data])),
      (err: Error & {code?: string}) => err.code === 'DIGEST_MISMATCH',
    )
    assert.equal(await contentInfo(conn, claimed), undefined)
    const statuses = await conn.call('content', 'ListStatuses', {filters: []}, 'list ingests')
    assert.deepEqual(statuses.statuses.map((s) => s.ref), [])
  })

  test('readContentBytes refuses a blob over its limit instead of buffering it', async () => {
    const data = randomBytes(64 * 1024)
    const digest = sha256(data)
    await writeContent(conn, {ref: `test-${digest}`, expected: digest, size: data.length}, () => Readable.from([data]))
    await assert.rejects(readContentBytes(conn, digest, 1024), /larger than 1024 bytes/)
  })
})

describe('pull into containerd', () => {
  test('labels parents for the GC, unpacks every layer under its chain ID, and leaves no lease', async () => {
    const source = await openImageSource(`oci-archive:${archive}`, {registry: new RegistryClient()})
    const ref = parseReference('rig.test/client/busybox:v1')
    const result = await pullImage(conn, fetcherFromSource(source), ref, {snapshotter: 'overlayfs'})
    await source.close()
    assert.equal(result.image.name, 'rig.test/client/busybox:v1')
    assert.equal(result.image.target.digest, written.manifestDigest)
    const manifestLabels = (await contentInfo(conn, written.manifestDigest))!.labels
    assert.equal(manifestLabels['containerd.io/gc.ref.content.config'], written.configDigest)
    assert.equal(manifestLabels['containerd.io/gc.ref.content.l.0'], written.layers[0]!.digest)
    assert.equal(manifestLabels['containerd.io/gc.ref.content.l.1'], written.layers[1]!.digest)
    const top = chainId(written.layers.map((l) => l.diffId as Digest))!
    assert.equal((await contentInfo(conn, written.configDigest))!.labels['containerd.io/gc.ref.snapshot.overlayfs'], top)
    for (const layer of written.layers) {
      const labels = (await contentInfo(conn, layer.digest))!.labels
      assert.equal(labels['containerd.io/uncompressed'], layer.diffId)
      assert.equal(labels['containerd.io/distribution.source.rig.test'], 'client/busybox')
    }
    const snapshot = await statSnapshot(conn, 'overlayfs', top)
    assert.equal(snapshot?.kind, 'COMMITTED')
    assert.equal(snapshot?.parent, written.layers[0]!.diffId, 'layer 2 sits on layer 1 (whose chain ID is its diff ID)')
    assert.deepEqual(await listLeases(conn), [])
  })

  test('a manifest or config whose bytes do not match their digest fails the pull: nothing acts on it, no image, no lease', async () => {
    for (const tampered of ['manifest', 'config'] as const) {
      const source = await openImageSource(`oci-archive:${archive}`, {registry: new RegistryClient()})
      const honest = fetcherFromSource(source)
      const target = tampered === 'manifest' ? written.manifestDigest : written.configDigest
      // The archive's own bytes, one of them altered in place (same size): what a bad mirror serves.
      const fetcher: ImageFetcher = {
        resolve: (ref) => honest.resolve(ref),
        async fetch(ref, desc) {
          const stream = await honest.fetch(ref, desc)
          if (desc.digest !== target) return stream
          const bytes = Buffer.concat(await stream.toArray())
          bytes[bytes.length - 2] ^= 0x01
          return Readable.from([bytes])
        },
      }
      const ref = parseReference(`rig.test/client/tampered-${tampered}:v1`)
      let hinted = false
      await assert.rejects(
        pullImage(conn, fetcher, ref, {snapshotter: 'overlayfs', onManifest: () => (hinted = true)}),
        (err: Error & {code?: string}) => err.code === 'DIGEST_MISMATCH' && err.message.includes(tampered),
      )
      await source.close()
      assert.equal(hinted, tampered === 'config', 'a manifest is only acted on once its digest matches')
      assert.equal(await getImage(conn, ref.registry + '/' + ref.repository + ':v1'), undefined)
      assert.deepEqual(await listLeases(conn), [])
    }
  })
})

describe('containerd-store transport (bare names)', () => {
  test('writes an image into the store and reads the same manifest and blobs back', async () => {
    const ctx = {registry: new RegistryClient(), containerd: {address: rig.address, namespace: rig.namespace}}
    const from = await openImageSource(`oci-archive:${archive}`, ctx)
    const sink = await openImageSink('rig.test/transport/busybox:copy', ctx)
    const root = await from.root()
    assert.equal(root.parsed.kind, 'manifest')
    const manifest = root.parsed.kind === 'manifest' ? root.parsed.manifest : undefined
    for (const blob of [manifest!.config, ...manifest!.layers]) await sink.putBlob(blob, () => from.blob(blob))
    const committed = await sink.commit(root.descriptor, root.bytes)
    await from.close()
    assert.equal(committed.digest, written.manifestDigest)
    assert.equal((await getImage(conn, 'rig.test/transport/busybox:copy'))?.target.digest, written.manifestDigest)
    assert.deepEqual(await listLeases(conn), [], 'the sink released its lease')

    const back = await openImageSource('rig.test/transport/busybox:copy', ctx)
    const again = await back.root()
    assert.ok(again.bytes.equals(root.bytes))
    const layer = written.layers[1]!
    const chunks: Buffer[] = []
    for await (const c of await back.blob(layer as Descriptor)) chunks.push(c as Buffer)
    assert.equal(sha256(Buffer.concat(chunks)), layer.digest)
    await back.close()
    await ctx.registry.close()
  })

  test('a bare name that containerd does not have is IMAGE_NOT_FOUND', async () => {
    const ctx = {registry: new RegistryClient(), containerd: {address: rig.address, namespace: rig.namespace}}
    const src = await openImageSource('rig.test/none:here', ctx)
    await assert.rejects(src.root(), (err: Error & {code?: string}) => err.code === 'IMAGE_NOT_FOUND')
    await src.close()
    await ctx.registry.close()
  })
})

describe('introspection', () => {
  test("finds the rig's stargz proxy snapshotter with its socket, and no snapshotter that is not configured", async () => {
    const stargz = await snapshotterPlugin(conn, 'stargz')
    assert.equal(stargz?.exports.address, rig.snapshotterSocket)
    assert.equal((await snapshotterPlugin(conn, 'overlayfs'))?.initError, undefined)
    assert.equal(await snapshotterPlugin(conn, 'no-such'), undefined)
  })
})

describe('remote snapshot labels', () => {
  const layers: Descriptor[] = Array.from({length: 3}, (_, i) => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: `sha256:${String(i).repeat(64)}` as Digest,
    size: 100,
  }))
  const ctx = {imageRef: 'reg.test/app:v1', manifestDigest: `sha256:${'a'.repeat(64)}`, layers}

  test('a stargz snapshotter gets the CRI labels and the stargz extras, with this and the later layers', () => {
    const labels = remoteSnapshotLabels('stargz', ctx, 1)
    assert.equal(labels['containerd.io/snapshot/cri.image-ref'], 'reg.test/app:v1')
    assert.equal(labels['containerd.io/snapshot/cri.layer-digest'], layers[1]!.digest)
    assert.equal(labels['containerd.io/snapshot/cri.manifest-digest'], ctx.manifestDigest)
    assert.equal(labels['containerd.io/snapshot/cri.image-layers'], `${layers[1]!.digest},${layers[2]!.digest}`)
    assert.equal(labels['containerd.io/snapshot/remote/stargz.prefetch'], '10485760')
  })

  test('a normal snapshotter gets none, and another remote one only the CRI labels', () => {
    assert.deepEqual(remoteSnapshotLabels('overlayfs', ctx, 0), {})
    const soci = remoteSnapshotLabels('soci', ctx, 0)
    assert.ok(soci['containerd.io/snapshot/cri.layer-digest'])
    assert.equal(soci['containerd.io/snapshot/remote/stargz.prefetch'], undefined)
  })

  test('the image-layers label stops before key plus value would pass 4096 bytes', () => {
    const many: Descriptor[] = Array.from({length: 100}, (_, i) => ({mediaType: 'x', digest: `sha256:${i.toString(16).padStart(64, '0')}` as Digest, size: 1}))
    const labels = remoteSnapshotLabels('stargz', {...ctx, layers: many}, 0)
    const value = labels['containerd.io/snapshot/cri.image-layers']!
    assert.ok(Buffer.byteLength('containerd.io/snapshot/cri.image-layers') + Buffer.byteLength(value) <= 4096)
    assert.ok(value.split(',').length > 50 && value.split(',').length < 100)
    assert.equal(value.split(',')[0], many[0]!.digest)
  })
})
