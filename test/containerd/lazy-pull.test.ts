// The remote-snapshot path end to end: lazyctl pull/run with --snapshotter stargz against lazyctl's
// snapshotter as containerd's proxy plugin. The eStargz layer must be mounted, not downloaded.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {join} from 'node:path'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {runCli} from '../rig/cli.js'
import {startContainerd, type ContainerdRig} from '../rig/containerd.js'
import {busyboxImage, pushImage, writeOciArchive} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from '../snapshotter/daemon.js'

let containerd: ContainerdRig
let registry: RegistryRig
let daemon: SnapshotterDaemon
let dir: string
let lazyRef: string

const cli = (args: string[]) => {
  const [command, ...rest] = args
  return runCli([command!, '--address', containerd.address, '--namespace', containerd.namespace, ...rest], {env: {LAZYCTL_DATA_ROOT: join(dir, 'data')}})
}

before(async () => {
  dir = rigTempDir('lazy-pull')
  registry = await startRegistry()
  // The snapshotter before containerd: containerd dials its proxy plugins at start.
  daemon = await startSnapshotterDaemon()
  containerd = await startContainerd({snapshotterSocket: daemon.socket})
  const archive = join(dir, 'busybox.tar')
  await writeOciArchive(archive, busyboxImage())
  await pushImage(archive, 'busybox:plain', registry)
  lazyRef = `${registry.host}/busybox:esgz`
  const converted = await runCli(['convert', `docker://${registry.host}/busybox:plain`, `docker://${lazyRef}`])
  assert.equal(converted.status, 0, converted.stderr)
})
after(async () => {
  await containerd?.stop()
  await daemon?.stop()
  await registry?.stop()
  if (dir) removeDir(dir)
})

test('pull --snapshotter stargz mounts the eStargz layer remotely: no layer blob in containerd, the CRI labels reach the snapshotter', async () => {
  const pulled = await cli(['pull', '--snapshotter', 'stargz', lazyRef])
  assert.equal(pulled.status, 0, pulled.stderr)
  assert.match(pulled.stderr, /1 of 1 layers mounted remotely by stargz/)

  const layer = imageManifest().layers[0]!
  assert.doesNotMatch(containerd.ctr(['content', 'ls', '-q']), new RegExp(layer.digest.slice(7)), 'the layer blob was never written to the content store')
  assert.ok((await registry.bytesServed({digest: layer.digest, method: 'GET'})) < layer.size, 'the registry served only parts of the layer')

  const status = await querySnapshotterStatus(daemon.socket)
  const remote = status.snapshots.filter((s) => s.remote)
  assert.equal(remote.length, 1)
  assert.equal(remote[0]!.labels['containerd.io/snapshot/cri.image-ref'], lazyRef)
  assert.equal(remote[0]!.labels['containerd.io/snapshot/cri.layer-digest'], layer.digest)
  assert.equal(remote[0]!.labels['containerd.io/snapshot/cri.image-layers'], layer.digest)
  assert.equal(remote[0]!.labels['containerd.io/snapshot/remote/stargz.prefetch'], String(10 << 20))
  assert.match(remote[0]!.labels['containerd.io/snapshot/stargz/toc.digest'] ?? '', /^sha256:[0-9a-f]{64}$/, 'the TOC digest annotation is inherited as a label')
})

test('run --snapshotter stargz runs a container on the lazily mounted layer', async () => {
  const res = await cli(['run', '--rm', '--snapshotter', 'stargz', '--pull', 'never', lazyRef, 'sh', '-c', 'echo lazily; /bin/busybox true && echo read'])
  assert.equal(res.status, 0, res.stderr)
  assert.equal(res.stdout, 'lazily\nread\n')
})

test('pulling the same image again finds its layer in place (Stat of the chain ID)', async () => {
  const again = await cli(['pull', '--snapshotter', 'stargz', lazyRef])
  assert.equal(again.status, 0, again.stderr)
  assert.match(again.stderr, /layer 1\/1 exists/)
  assert.doesNotMatch(again.stderr, /fetching layer/)
})

/** The pulled image's manifest, read back from containerd's content store with ctr. */
function imageManifest(): {layers: Array<{digest: string; size: number}>} {
  const line = containerd.ctr(['images', 'ls']).split('\n').find((l) => l.startsWith(`${lazyRef} `))!
  let json = JSON.parse(containerd.ctr(['content', 'get', line.split(/\s+/).find((f) => f.startsWith('sha256:'))!])) as {
    layers?: Array<{digest: string; size: number}>
    manifests?: Array<{digest: string}>
  }
  if (json.manifests) json = JSON.parse(containerd.ctr(['content', 'get', json.manifests[0]!.digest]))
  return {layers: json.layers!}
}

test('a bare name is containerd\'s image store: convert writes there, images lists it, push reads it back out', async () => {
  const converted = await cli(['convert', `docker://${registry.host}/busybox:plain`, 'rig.test/local/busybox:esgz'])
  assert.equal(converted.status, 0, converted.stderr)
  const images = JSON.parse((await cli(['images', '--format', 'json'])).stdout) as Array<{name: string; digest: string}>
  const local = images.find((i) => i.name === 'rig.test/local/busybox:esgz')
  assert.ok(local, JSON.stringify(images))
  assert.equal(containerd.ctr(['leases', 'ls', '-q']).trim(), '', 'the store sink released its lease')
  const pushed = await cli(['push', 'rig.test/local/busybox:esgz', `docker://${registry.host}/busybox:from-store`])
  assert.equal(pushed.status, 0, pushed.stderr)
  const remote = (await registry.requests()).filter((r) => r.kind === 'manifest' && r.method === 'PUT' && r.repository === 'busybox')
  assert.ok(remote.some((r) => r.reference === 'from-store'), 'the registry received the manifest')
  assert.equal((await cli(['rmi', 'rig.test/local/busybox:esgz'])).status, 0)
})
