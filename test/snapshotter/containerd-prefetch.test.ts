// Prefetch and background fetch through containerd: an image converted by `lazyctl convert
// --estargz-record-in` and pushed to the rig registry, pulled lazily by `ctr-remote image rpull`
// into lazyctl's snapshotter, run with runc. The prioritized files must be local when the pull
// returns (containerd's Prepare calls waited for them), before the container's first read; for an
// image named by a hint first, they are fetched before any Prepare.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import type {MountedLayerStatus} from '../../src/snapshotter/remote-layer-mounter.js'
import {parseReference} from '../../src/oci/reference.js'
import {RegistryClient} from '../../src/registry/client.js'
import {hintLayersAhead, querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {runCli} from '../rig/cli.js'
import {startContainerd, unmountUnder, type ContainerdRig} from '../rig/containerd.js'
import {busyboxImage, randomStream, writeOciArchive} from '../rig/images.js'
import {requireCommand, waitUntilReady} from '../rig/process.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {ctrFor, ctrRun} from '../rig/ctr.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from './daemon.js'

const PRIORITIZED_SIZE = 3 << 20
const OTHER_SIZE = 6 << 20

let containerd: ContainerdRig | undefined
let registry: RegistryRig
let daemon: SnapshotterDaemon | undefined
let workDir: string
let ref: string

const ctr = ctrFor(() => containerd!)

async function sha256Of(size: number, seed: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of randomStream(size, seed)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Starts a snapshotter with `config` and a containerd wired to it. */
async function startStack(config: string): Promise<void> {
  daemon = await startSnapshotterDaemon({config})
  containerd = await startContainerd({snapshotterSocket: daemon.socket})
  await waitUntilReady(containerd.process, 'containerd reaching the snapshotter', async () => {
    await ctr(['snapshots', '--snapshotter', 'stargz', 'ls'])
    return true
  })
}

async function stopStack(): Promise<void> {
  await containerd?.stop()
  await daemon?.stop()
  containerd = undefined
  daemon = undefined
}

async function layers(): Promise<MountedLayerStatus[]> {
  return (await querySnapshotterStatus(daemon!.socket)).layers
}

before(async () => {
  requireCommand('ctr-remote', 'stargz-snapshotter')
  workDir = rigTempDir('snapshotter-prefetch')
  registry = await startRegistry()
  const archive = join(workDir, 'image.tar')
  await writeOciArchive(archive, busyboxImage({
    tag: 'v1',
    layers: [{files: [
      {path: 'data/prioritized.bin', random: {size: PRIORITIZED_SIZE, seed: 'prioritized'}},
      {path: 'data/other.bin', random: {size: OTHER_SIZE, seed: 'other'}},
    ]}],
  }))
  const record = join(workDir, 'record.json')
  writeFileSync(record, '{"path": "/bin/busybox"}\n{"path": "/data/prioritized.bin"}\n')
  const layout = join(workDir, 'esgz')
  const converted = await runCli(['convert', '-q', '--estargz-record-in', record, `oci-archive:${archive}`, `oci:${layout}:v1`])
  assert.equal(converted.status, 0, converted.stderr)
  ref = `${registry.host}/prefetch/demo:v1`
  const pushed = await runCli(['push', '-q', `oci:${layout}:v1`, `docker://${ref}`])
  assert.equal(pushed.status, 0, pushed.stderr)
})
after(async () => {
  await stopStack()
  await registry?.stop()
  if (workDir) {
    unmountUnder(workDir)
    removeDir(workDir)
  }
})

describe('through containerd', () => {
  after(stopStack)

  test('the prioritized files are local when the lazy pull returns: the container reads them without a range read', async () => {
    await startStack('[prefetch]\nenable = true\ntimeout_sec = 60\n[background_fetch]\nenable = false\n')
    await ctr(['image', 'rpull', '--plain-http', '--snapshotter', 'stargz', ref], 'ctr-remote')
    const pulled = await layers()
    assert.equal(pulled.length, 2, 'both layers are lazy')
    for (const layer of pulled) assert.equal(layer.prefetch, 'done', `prefetch of ${layer.layerDigest} done before the pull returned`)
    const data = pulled.find((l) => (l.chunksTotal ?? 0) > 0 && l.size > OTHER_SIZE)
    assert.ok(data, 'the data layer is mounted')
    assert.ok((data.chunksLocal ?? 0) > 0 && (data.chunksLocal ?? 0) < (data.chunksTotal ?? 0), `only the prioritized part is local (${data.chunksLocal}/${data.chunksTotal})`)
    // Every byte the registry sent for the layer is in status: chunks plus footer and TOC.
    assert.equal((data.bytesFetched ?? 0) + (data.metadataBytesFetched ?? 0), await registry.bytesServed({digest: data.layerDigest, method: 'GET'}))

    const out = await ctrRun(ctr, workDir, ref, `prefetch-${process.pid}`, ['sha256sum', '/data/prioritized.bin'], {snapshotter: 'stargz'})
    assert.equal(out.split(' ')[0], await sha256Of(PRIORITIZED_SIZE, 'prioritized'))
    const afterRun = (await layers()).find((l) => l.layerDigest === data.layerDigest)!
    assert.equal(afterRun.rangeReads, data.rangeReads, 'reading the prioritized file sent no range read')
    assert.ok((afterRun.bytesServed ?? 0) >= PRIORITIZED_SIZE)
  })

  test('an image named by a hint (as `lazyctl run` sends it first) has its prioritized range fetched before any Prepare; the pull then reads nothing of it again', async () => {
    await stopStack()
    await startStack('[prefetch]\nenable = true\ntimeout_sec = 60\n[background_fetch]\nenable = false\n')
    const client = new RegistryClient()
    let dataLayer: string
    try {
      const fetched = await client.getManifest(parseReference(ref))
      assert.equal(fetched.parsed.kind, 'manifest')
      const manifestLayers = fetched.parsed.kind === 'manifest' ? fetched.parsed.manifest.layers : []
      dataLayer = [...manifestLayers].sort((a, b) => b.size - a.size)[0]!.digest
    } finally {
      await client.close()
    }
    // The registry's count for the layer so far (the test above fetched from it too).
    const servedEarlier = await registry.bytesServed({digest: dataLayer, method: 'GET'})
    assert.equal(await hintLayersAhead(daemon!.socket, {image: ref}), 2, 'both eStargz layers are resolved ahead')
    const done = await daemon!.waitForLog('the data layer\'s prefetch ahead of its Prepare', (l) => l.msg === 'prefetch ahead of the Prepare finished' && l.layer === dataLayer)
    assert.ok(Number(done.chunks) > 0 && done.failed === 0, `the prioritized chunks were fetched (${JSON.stringify(done)})`)
    const servedBeforePull = await registry.bytesServed({digest: dataLayer, method: 'GET'})
    assert.equal((await layers()).length, 0, 'nothing is mounted yet')

    await ctr(['image', 'rpull', '--plain-http', '--snapshotter', 'stargz', ref], 'ctr-remote')
    const data = (await layers()).find((l) => l.layerDigest === dataLayer)
    assert.ok(data, 'the data layer is mounted')
    assert.equal(data.prefetch, 'done')
    assert.equal(await registry.bytesServed({digest: dataLayer, method: 'GET'}), servedBeforePull, 'the Prepare fetched nothing: TOC and prioritized range were read ahead')
    assert.equal((data.bytesFetched ?? 0) + (data.metadataBytesFetched ?? 0), servedBeforePull - servedEarlier, 'status counts the bytes fetched ahead as the layer\'s')
    const out = await ctrRun(ctr, workDir, ref, `ahead-${process.pid}`, ['sha256sum', '/data/prioritized.bin'], {snapshotter: 'stargz'})
    assert.equal(out.split(' ')[0], await sha256Of(PRIORITIZED_SIZE, 'prioritized'))
    assert.equal((await layers()).find((l) => l.layerDigest === dataLayer)!.rangeReads, data.rangeReads, 'reading the prioritized file sent no range read')
  })

  test('background fetch makes the whole image local; the registry then served each byte once', async () => {
    await stopStack()
    await startStack('[background_fetch]\nenable = true\nstart_delay_sec = 0\nrate_bytes_per_sec = 0\n')
    await ctr(['image', 'rpull', '--plain-http', '--snapshotter', 'stargz', ref], 'ctr-remote')
    await waitUntilReady(daemon!.process, 'background fetch done on every layer', async () => (await layers()).every((l) => l.backgroundFetch === 'done'), 120_000)
    for (const layer of await layers()) {
      assert.equal(layer.percentLocal, 100)
      assert.ok((layer.bytesFetched ?? 0) <= layer.size, `layer ${layer.layerDigest}: ${layer.bytesFetched} ≤ ${layer.size}`)
    }
    const human = await runCli(['snapshotter', 'status', '--snapshotter-socket', daemon!.socket])
    assert.match(human.stdout, /100%\s+done\s+done/)
    await registry.halt()
    try {
      const out = await ctrRun(ctr, workDir, ref, `offline-${process.pid}`, ['sha256sum', '/data/other.bin'], {snapshotter: 'stargz'})
      assert.equal(out.split(' ')[0], await sha256Of(OTHER_SIZE, 'other'), 'the layer reads with the registry gone')
    } finally {
      await registry.resume()
    }
  })
})
