// A layer the lazy snapshotter cannot mount is never downloaded silently: `run` and `pull` say so
// in one line per image with the snapshotter's reason (a plain gzip layer; a registry behind a
// proxy that ignores Range, whose blobs then cross the wire once, not once per read); with --require-lazy (or the snapshotter's
// `[remote] require_lazy`) the pull fails with that reason and a distinct exit code instead, and
// nothing is downloaded. eStargz images stay lazy either way.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {statfsSync} from 'node:fs'
import {join} from 'node:path'
import {ERROR_CODES} from '../../src/cli/errors.js'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {fallbackReasonClass} from '../../src/snapshotter/fallback-reason.js'
import {convertImage} from '../../src/convert/convert.js'
import {MAX_CHUNK_SIZE} from '../../src/estargz/toc.js'
import {runCli} from '../rig/cli.js'
import {startContainerd, type ContainerdRig} from '../rig/containerd.js'
import {busyboxImage, inspectRaw, pushImage, writeOciArchive} from '../rig/images.js'
import {startRangeIgnoringProxy} from '../rig/range-ignoring-proxy.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from '../snapshotter/daemon.js'

let dir: string
let registry: RegistryRig
let daemon: SnapshotterDaemon
let containerd: ContainerdRig

before(async () => {
  dir = rigTempDir('fallback')
  registry = await startRegistry()
  daemon = await startSnapshotterDaemon({config: '[background_fetch]\nenable = false\n'})
  containerd = await startContainerd({snapshotterSocket: daemon.socket})
})
after(async () => {
  await containerd?.stop()
  await daemon?.stop()
  await registry?.stop()
  if (dir) removeDir(dir)
})

const cli = (rig: ContainerdRig, args: string[]) => runCli([args[0]!, '--address', rig.address, '--namespace', rig.namespace, ...args.slice(1)], {env: {LAZYCTL_DATA_ROOT: join(dir, 'data')}})

/** A plain gzip image with its own top layer (so no earlier pull has its chain). */
async function plainImage(tag: string): Promise<{image: string; layers: string[]}> {
  const archive = join(dir, `${tag}.tar`)
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'hello', content: `plain ${tag}\n`}]}]}))
  await pushImage(archive, `plain:${tag}`, registry)
  const layers = (JSON.parse(await inspectRaw(`plain:${tag}`, registry)) as {layers: Array<{digest: string}>}).layers.map((l) => l.digest)
  return {image: `${registry.host}/plain:${tag}`, layers}
}

test('run of a non-eStargz image says once, on stderr, which layer is not lazy and why, then downloads and runs it', async () => {
  const {image, layers} = await plainImage('notice')
  const res = await cli(containerd, ['run', '--rm', '--snapshotter', 'stargz', image, 'cat', '/hello'])
  assert.equal(res.status, 0, res.stderr)
  assert.equal(res.stdout, 'plain notice\n')
  const notices = res.stderr.split('\n').filter((line) => line.includes('not lazy'))
  assert.equal(notices.length, 1, `one notice for the image, not one per layer: ${res.stderr}`)
  assert.match(notices[0]!, new RegExp(`^lazyctl: layer (${layers.join('|')}) of ${image.replace(/[.]/g, '\\.')}: not lazy: .*not an eStargz layer.*; downloading it$`))
})

test('behind a proxy that ignores Range, an eStargz image falls back to one full download with the reason said, and still runs', async () => {
  const archive = join(dir, 'proxied.tar')
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'hello', content: 'through a proxy\n'}, {path: 'pad', random: {size: 4 << 20, seed: 'proxied'}}], compressionLevel: 0}]}))
  await pushImage(archive, 'proxied:plain', registry)
  const converted = await runCli(['convert', '--quiet', `docker://${registry.host}/proxied:plain`, `docker://${registry.host}/proxied:esgz`])
  assert.equal(converted.status, 0, converted.stderr)
  const layers = (JSON.parse(await inspectRaw('proxied:esgz', registry)) as {layers: Array<{digest: string; size: number}>}).layers
  const proxy = await startRangeIgnoringProxy(registry.url)
  try {
    const image = `${proxy.host}/proxied:esgz`
    const res = await cli(containerd, ['run', '--rm', '--snapshotter', 'stargz', image, 'cat', '/hello'])
    assert.equal(res.status, 0, res.stderr)
    assert.equal(res.stdout, 'through a proxy\n')
    assert.ok(proxy.rangeRequests() > 0, 'the snapshotter asked for ranges')
    assert.match(res.stderr, /^lazyctl: layer sha256:[0-9a-f]{64} of .*proxied:esgz: not lazy: .*ignores HTTP Range requests.*; downloading it$/m)
    // The full download once, plus what the one range request answered with 200 carried before the
    // snapshotter hung up (the registry is then marked as ignoring Range and not asked again):
    // at most one more layer, never a blob per chunk read as before.
    const blobBytes = layers.reduce((sum, l) => sum + l.size, 0)
    const largest = Math.max(...layers.map((l) => l.size))
    assert.ok(proxy.bytesSent() <= blobBytes + largest, `the blobs crossed the proxy about once: ${proxy.bytesSent()} bytes for ${blobBytes}`)
    const status = await querySnapshotterStatus(daemon.socket)
    const attempt = status.recentRemoteAttempts.find((a) => a.image === image && !a.remote)
    assert.match(attempt?.reason ?? '', /ignores HTTP Range requests/)
  } finally {
    await proxy.stop()
  }
})

test('a layer with a chunk past the lazy bound is refused by the snapshotter with the reason, downloaded once instead, and runs', async () => {
  const archive = join(dir, 'big-chunk.tar')
  const bigChunk = MAX_CHUNK_SIZE + (1 << 20)
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'hello', content: 'one big chunk\n'}, {path: 'zeros', content: Buffer.alloc(bigChunk)}]}]}))
  await pushImage(archive, 'bigchunk:plain', registry)
  // The CLI caps --estargz-chunk-size at the bound; the writer's API still writes such a layer (as
  // another tool could).
  await convertImage(`docker://${registry.host}/bigchunk:plain`, `docker://${registry.host}/bigchunk:esgz`, {chunkSize: bigChunk, compressionLevel: 1})
  const image = `${registry.host}/bigchunk:esgz`
  const res = await cli(containerd, ['run', '--rm', '--snapshotter', 'stargz', image, 'cat', '/hello'])
  assert.equal(res.status, 0, res.stderr)
  assert.equal(res.stdout, 'one big chunk\n')
  assert.match(res.stderr, /^lazyctl: layer sha256:[0-9a-f]{64} of .*bigchunk:esgz: not lazy: .*a chunk of 68157440 bytes .*more than the 67108864-byte limit; downloading it$/m)
  const status = await querySnapshotterStatus(daemon.socket)
  const attempt = status.recentRemoteAttempts.find((a) => a.image === image && !a.remote)
  assert.match(attempt?.reason ?? '', /more than the 67108864-byte limit/)
  assert.equal(fallbackReasonClass(attempt!.reason!), 'over_limit')
})

test('without [cache] max_bytes, the chunk cache is bounded by half the size of its filesystem', async () => {
  const status = await querySnapshotterStatus(daemon.socket)
  const fs = statfsSync(daemon.root)
  assert.equal(status.cache?.maxBytes, Math.floor((fs.blocks * fs.bsize) / 2))
})

test('a registry that stops answering: the lazy read fails with EIO after the request timeout and retries, and Prepare of an image on a healthy registry answers meanwhile', {timeout: 120_000}, async () => {
  const hungDaemon = await startSnapshotterDaemon({config: '[background_fetch]\nenable = false\n[prefetch]\nenable = false\n[registry]\nrequest_timeout_sec = 1\n'})
  const hungContainerd = await startContainerd({snapshotterSocket: hungDaemon.socket})
  const proxy = await startRangeIgnoringProxy(registry.url, {keepRange: true})
  try {
    const archive = join(dir, 'hung.tar')
    await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'hello', content: 'answered\n'}, {path: 'pad', random: {size: 8 << 20, seed: 'hung'}}], compressionLevel: 0}]}))
    await pushImage(archive, 'hung:plain', registry)
    const converted = await runCli(['convert', '--quiet', `docker://${registry.host}/hung:plain`, `docker://${registry.host}/hung:esgz`])
    assert.equal(converted.status, 0, converted.stderr)
    const image = `${proxy.host}/hung:esgz`
    const first = await cli(hungContainerd, ['run', '--snapshotter', 'stargz', '--name', 'hung-1', image, 'cat', '/hello'])
    assert.equal(first.status, 0, first.stderr)

    proxy.hangBlobs(true)
    let readDone = false
    const hungRead = cli(hungContainerd, ['run', '--rm', '--snapshotter', 'stargz', image, 'sha256sum', '/pad']).finally(() => {
      readDone = true
    })
    // Meanwhile, another image from the healthy registry is prepared lazily.
    const other = await plainImage('healthy')
    const otherLazy = `${registry.host}/plain:healthy-esgz`
    assert.equal((await runCli(['convert', '--quiet', `docker://${other.image}`, `docker://${otherLazy}`])).status, 0)
    const pulled = await cli(hungContainerd, ['pull', '--snapshotter', 'stargz', otherLazy])
    assert.equal(pulled.status, 0, pulled.stderr)
    assert.equal(readDone, false, 'the healthy pull did not wait for the hung read')

    const read = await hungRead
    assert.notEqual(read.status, 0)
    assert.match(read.stderr, /Input\/output error/)
    const failures = hungDaemon.logLines().filter((line) => line.msg === 'range read failed')
    assert.ok(failures.length > 0)
    assert.match(String(failures[0]!.error), new RegExp(`${proxy.host.replace(/[.]/g, '\\.')}: UND_ERR_HEADERS_TIMEOUT`))
  } finally {
    proxy.hangBlobs(false)
    await proxy.stop()
    await hungContainerd.stop()
    await hungDaemon.stop()
  }
})

test('pull --require-lazy of a non-eStargz image fails with the reason and NOT_LAZY, downloading nothing; an eStargz image passes', async () => {
  const {image, layers} = await plainImage('strict')
  const earlier = (await registry.requests()).length
  const res = await cli(containerd, ['pull', '--require-lazy', '--snapshotter', 'stargz', image])
  assert.equal(res.status, ERROR_CODES.NOT_LAZY, res.stderr)
  assert.match(res.stderr, new RegExp(`^lazyctl: layer (${layers.join('|')}) of ${image.replace(/[.]/g, '\\.')} is not lazy: .*not an eStargz layer`, 'm'))
  const since = (await registry.requests()).slice(earlier)
  assert.ok(since.some((r) => r.kind === 'manifest'), 'the manifest was read')
  const blobBytes = since.filter((r) => r.kind === 'blob' && layers.includes(r.reference ?? '')).reduce((sum, r) => sum + r.written, 0)
  assert.equal(blobBytes, 0, 'no layer blob was downloaded')
  assert.doesNotMatch((await cli(containerd, ['images'])).stdout, /plain:strict/, 'no image record is left as if pulled')

  const lazy = `${registry.host}/plain:strict-esgz`
  const converted = await runCli(['convert', '--quiet', `docker://${image}`, `docker://${lazy}`])
  assert.equal(converted.status, 0, converted.stderr)
  const run = await cli(containerd, ['run', '--rm', '--require-lazy', '--snapshotter', 'stargz', lazy, 'cat', '/hello'])
  assert.equal(run.status, 0, run.stderr)
  assert.equal(run.stdout, 'plain strict\n')
  assert.doesNotMatch(run.stderr, /not lazy/)
})

test('a snapshotter with [remote] require_lazy fails the pull of a non-eStargz image with its reason', async () => {
  const strict = await startSnapshotterDaemon({config: '[remote]\nrequire_lazy = true\n[background_fetch]\nenable = false\n'})
  const strictContainerd = await startContainerd({snapshotterSocket: strict.socket})
  try {
    const {image} = await plainImage('daemon-strict')
    const res = await cli(strictContainerd, ['pull', '--snapshotter', 'stargz', image])
    assert.equal(res.status, ERROR_CODES.NOT_LAZY, res.stderr)
    assert.match(res.stderr, /^lazyctl: layer sha256:[0-9a-f]{64} on stargz: not lazy \(\[remote\] require_lazy\): .*not an eStargz layer/m)
    assert.equal(res.stderr.trim().split('\n').filter((line) => line.startsWith('lazyctl:')).length, 1)
  } finally {
    await strictContainerd.stop()
    await strict.stop()
  }
})
