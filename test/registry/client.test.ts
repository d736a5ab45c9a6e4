// The registry client against a real docker-registry 2.8: manifests with every Accept type,
// verified blob streams, range reads, uploads (monolithic, chunked, mount), tags, referrers.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createReadStream, readFileSync} from 'node:fs'
import {Readable} from 'node:stream'
import {RegistryClient} from '../../src/registry/client.js'
import {CredentialStore} from '../../src/registry/credentials.js'
import {parseReference} from '../../src/oci/reference.js'
import {sha256Digest, type Digest} from '../../src/oci/digest.js'
import {isLazyError} from '../../src/cli/errors.js'
import {MEDIA_TYPE_OCI_MANIFEST} from '../../src/oci/media-types.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {blobPath, writeOciLayout, type WrittenImage} from '../rig/images.js'
import {rigTempDir, removeDir} from '../rig/tmp.js'

describe('registry client (docker-registry 2.8, no auth)', () => {
  let registry: RegistryRig
  let client: RegistryClient
  let layout: string
  let image: WrittenImage

  before(async () => {
    registry = await startRegistry({auth: 'none'})
    client = new RegistryClient({credentials: new CredentialStore([]), hostsDir: '/nonexistent'})
    layout = rigTempDir('client-layout')
    image = await writeOciLayout(layout, {layers: [{files: [{path: 'big.bin', random: {size: 3 << 20, seed: 'a'}}, {path: 'etc/hello', content: 'hi\n'}]}]})
  })
  after(async () => {
    await client?.close()
    await registry?.stop()
    if (layout) removeDir(layout)
  })

  async function pushLayoutImage(repo: string, options: {chunkSize?: number; mountFrom?: string} = {}): Promise<Record<string, string>> {
    const ref = parseReference(`${registry.host}/${repo}:v1`)
    const results: Record<string, string> = {}
    for (const d of [...image.manifest.layers, image.manifest.config]) {
      results[d.digest] = await client.pushBlob(ref, {digest: d.digest as Digest, size: d.size}, () => createReadStream(blobPath(layout, d.digest)), options)
    }
    await client.putManifest(ref, readFileSync(blobPath(layout, image.manifestDigest)), MEDIA_TYPE_OCI_MANIFEST)
    return results
  }

  test('pushes blobs and an OCI manifest, then reads the manifest back by tag and by digest', async () => {
    const results = await pushLayoutImage('demo/one')
    assert.deepEqual(Object.values(results), ['uploaded', 'uploaded'])
    const ref = parseReference(`${registry.host}/demo/one:v1`)
    const byTag = await client.getManifest(ref)
    assert.equal(byTag.descriptor.digest, image.manifestDigest)
    assert.equal(byTag.descriptor.mediaType, MEDIA_TYPE_OCI_MANIFEST)
    assert.equal(byTag.parsed.kind, 'manifest')
    const resolved = await client.resolve(ref)
    assert.deepEqual(resolved, byTag.descriptor)
    const byDigest = await client.getManifest(parseReference(`${registry.host}/demo/one@${image.manifestDigest}`))
    assert.ok(byDigest.bytes.equals(byTag.bytes))
  })

  test('skips a blob the registry already has', async () => {
    const results = await pushLayoutImage('demo/one')
    assert.deepEqual(Object.values(results), ['exists', 'exists'])
  })

  test('mounts blobs from another repository of the same registry instead of uploading', async () => {
    const before = await registry.requests()
    const results = await pushLayoutImage('demo/mounted', {mountFrom: 'demo/one'})
    assert.deepEqual(Object.values(results), ['mounted', 'mounted'])
    const after = (await registry.requests()).slice(before.length)
    assert.equal(after.filter((r) => r.method === 'PUT' && r.kind === 'upload').length, 0, 'no blob upload finished')
  })

  test('uploads in chunks when asked, continuing from each new Location', async () => {
    const results = await pushLayoutImage('demo/chunked', {chunkSize: 1 << 20})
    assert.equal(results[image.layers[0]!.digest], 'uploaded')
    const reqs = await registry.requests()
    const patches = reqs.filter((r) => r.method === 'PATCH' && r.repository === 'demo/chunked')
    assert.ok(patches.length >= 3, `expected several PATCH requests, saw ${patches.length}`)
    const got = await client.readBlob(parseReference(`${registry.host}/demo/chunked:v1`), {digest: image.layers[0]!.digest as Digest, size: image.layers[0]!.size})
    assert.ok(got.equals(readFileSync(blobPath(layout, image.layers[0]!.digest))))
  })

  test('streams a blob verified against its digest and fails on a wrong digest', async () => {
    const ref = parseReference(`${registry.host}/demo/one:v1`)
    const layer = image.layers[0]!
    const data = await client.readBlob(ref, {digest: layer.digest as Digest, size: layer.size})
    assert.equal(sha256Digest(data), layer.digest)
    // Ask for the config's bytes but claim the layer's size: the verifier must refuse.
    const cfg = image.manifest.config
    await assert.rejects(client.readBlob(ref, {digest: cfg.digest as Digest, size: cfg.size + 1}), (e: unknown) => isLazyError(e, 'DIGEST_MISMATCH'))
  })

  test('reads byte ranges of a blob, singly and coalesced', async () => {
    const ref = parseReference(`${registry.host}/demo/one:v1`)
    const layer = image.layers[0]!
    const whole = readFileSync(blobPath(layout, layer.digest))
    const src = client.blobRangeSource(ref, layer.digest as Digest, layer.size)
    assert.ok((await src.readAt(100, 5000)).equals(whole.subarray(100, 5100)))
    assert.ok((await src.readAt(layer.size - 51, 51)).equals(whole.subarray(layer.size - 51)))
    const ranges = [{offset: 9000, length: 10}, {offset: 0, length: 10}, {offset: 20, length: 30}, {offset: 2_000_000, length: 100}]
    const before = (await registry.requests()).length
    const parts = await src.readRanges(ranges)
    ranges.forEach((r, i) => assert.ok(parts[i]!.equals(whole.subarray(r.offset, r.offset + r.length)), `range ${i}`))
    const used = (await registry.requests()).slice(before).filter((r) => r.kind === 'blob' && r.method === 'GET')
    assert.equal(used.length, 2, 'three nearby ranges coalesced into one request, the far one alone')
    await assert.rejects(src.readAt(layer.size - 10, 11), (e: unknown) => isLazyError(e, 'ESTARGZ_TRUNCATED'))
  })

  test('blobTail: size and last bytes in one suffix-range request; a short blob whole; a missing one undefined', async () => {
    const ref = parseReference(`${registry.host}/demo/one:v1`)
    const layer = image.layers[0]!
    const whole = readFileSync(blobPath(layout, layer.digest))
    const before = (await registry.requests()).length
    const found = await client.blobTail(ref, layer.digest as Digest, 4096)
    assert.equal(found?.size, layer.size)
    assert.ok(found.tail.equals(whole.subarray(layer.size - 4096)))
    const sent = (await registry.requests()).slice(before).filter((r) => r.kind === 'blob')
    assert.deepEqual(sent.map((r) => r.method), ['GET'], 'no HEAD before the read')
    const config = image.manifest.config
    const small = await client.blobTail(ref, config.digest as Digest, config.size + 1000)
    assert.equal(small?.size, config.size)
    assert.ok(small.tail.equals(readFileSync(blobPath(layout, config.digest))), 'a blob shorter than the tail comes whole')
    assert.equal(await client.blobTail(ref, sha256Digest('missing'), 4096), undefined)
  })

  test('answers an unknown tag with MANIFEST_UNKNOWN and an unknown blob with BLOB_UNKNOWN', async () => {
    const ref = parseReference(`${registry.host}/demo/one:nope`)
    await assert.rejects(client.getManifest(ref), (e: unknown) => isLazyError(e, 'MANIFEST_UNKNOWN'))
    const missing = sha256Digest('missing')
    await assert.rejects(client.readBlob(ref, {digest: missing, size: 7}), (e: unknown) => isLazyError(e, 'BLOB_UNKNOWN'))
    assert.equal(await client.blobSize(ref, missing), undefined)
  })

  test('lists tags and finds referrers through the tag-schema fallback', async () => {
    const ref = parseReference(`${registry.host}/demo/one:v1`)
    const cfgBytes = Buffer.from('{}')
    const cfg = {mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(cfgBytes), size: 2}
    await client.pushBlob(ref, cfg, () => Readable.from([cfgBytes]))
    const artifact = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      artifactType: 'application/vnd.example.sbom',
      config: cfg,
      layers: [cfg],
      subject: {mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: image.manifestDigest, size: image.descriptor.size},
    }))
    const artifactDigest = await client.putManifest(ref, artifact, MEDIA_TYPE_OCI_MANIFEST, sha256Digest(artifact))
    const refs = await client.referrers(ref, image.manifestDigest as Digest)
    assert.deepEqual(refs.map((r) => [r.digest, r.artifactType]), [[artifactDigest, 'application/vnd.example.sbom']])
    assert.deepEqual(await client.referrers(ref, image.manifestDigest as Digest, 'other/type'), [])
    const tags = await client.listTags(ref)
    assert.ok(tags.includes('v1'))
    assert.ok(tags.includes(`sha256-${image.manifestDigest.slice(7)}`))
  })

  test('refuses to push a blob whose bytes do not match its digest, leaving no blob behind', async () => {
    const ref = parseReference(`${registry.host}/demo/bad:v1`)
    const claimed = sha256Digest('the real content')
    await assert.rejects(client.pushBlob(ref, {digest: claimed, size: 16}, () => Readable.from([Buffer.from('forged content!!')])), (e: unknown) => isLazyError(e, 'DIGEST_MISMATCH'))
    assert.equal(await client.blobExists(ref, claimed), false)
  })
})
