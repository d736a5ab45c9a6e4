// Pods through containerd's CRI plugin, started with kubelet's calls, on lazyctl's snapshotter: a
// python3 image runs lazily (layers FUSE-mounted, never in containerd's content store, a fraction
// of its bytes from the registry); a non-eStargz image is pulled normally and its fallback shown.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {join} from 'node:path'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {runCli} from '../rig/cli.js'
import {plainHttpHostsDir, readCriLog, startCriContainerd, type CriRig} from '../rig/cri.js'
import {debootstrapRoot} from '../rig/debootstrap.js'
import {busyboxImage, inspectRaw, pushImage, writeOciArchive} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from '../snapshotter/daemon.js'

let dir: string
let registry: RegistryRig
let daemon: SnapshotterDaemon
let cri: CriRig

before(async () => {
  dir = rigTempDir('cri-pods')
  registry = await startRegistry()
  // Background fetch off: what the registry serves is then only what the pods read.
  daemon = await startSnapshotterDaemon({config: '[background_fetch]\nenable = false\n'})
  cri = await startCriContainerd({snapshotterSocket: daemon.socket, hostsDir: plainHttpHostsDir(dir, registry.host)})
})
after(async () => {
  await cri?.stop()
  await daemon?.stop()
  await registry?.stop()
  if (dir) removeDir(dir)
})

/** Layer digests of `repo:tag` in the rig registry. */
async function layersOf(repoTag: string): Promise<Array<{digest: string; size: number}>> {
  return (JSON.parse(await inspectRaw(repoTag, registry)) as {layers: Array<{digest: string; size: number}>}).layers
}

test('a python3 pod started with kubelet\'s calls runs lazily: right output in its CRI log, layers on FUSE, none in the content store, a fraction of the bytes served', async () => {
  const root = await debootstrapRoot({include: ['python3']})
  const archive = join(dir, 'python.tar')
  await writeOciArchive(archive, {layers: [{dir: root}], config: {Cmd: ['python3'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin']}})
  await pushImage(archive, 'python:plain', registry)
  const lazy = `${registry.host}/python:esgz`
  const converted = await runCli(['convert', '--quiet', `docker://${registry.host}/python:plain`, `docker://${lazy}`])
  assert.equal(converted.status, 0, converted.stderr)

  const pod = await cri.runtime.startPod({name: 'python', image: lazy, command: ['python3', '-c', 'import json; print(json.dumps({"answer": 6 * 7}))'], logDirectory: join(dir, 'pods', 'python')})
  const exited = await cri.runtime.waitForExit(pod.containerId)
  assert.equal(exited.exit_code, 0, `${exited.reason} ${exited.message}`)
  assert.deepEqual(readCriLog(pod.logPath).map((line) => `${line.stream} ${line.content}`), ['stdout {"answer": 42}'])

  const [layer] = await layersOf('python:esgz')
  const status = await querySnapshotterStatus(daemon.socket)
  assert.ok(status.layers.some((l) => l.layerDigest === layer!.digest), 'the python layer is served lazily (FUSE) by the snapshotter')
  const content = cri.ctr(['content', 'ls', '-q'])
  assert.doesNotMatch(content, new RegExp(layer!.digest), 'no layer blob of the image is in containerd\'s content store')
  const served = await registry.bytesServed({digest: layer!.digest, method: 'GET'})
  assert.ok(served < layer!.size / 2, `python3 -c needs a fraction of the ${layer!.size}-byte layer; the registry served ${served}`)
  await cri.runtime.removePod(pod.sandboxId)
})

test('a non-eStargz image through CRI is pulled normally, its pod runs, and the snapshotter says why it was not lazy', async () => {
  const archive = join(dir, 'plain.tar')
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'hello', content: 'plain layer\n'}]}]}))
  await pushImage(archive, 'plain:v1', registry)
  const image = `${registry.host}/plain:v1`
  const pod = await cri.runtime.startPod({name: 'plain', image, command: ['cat', '/hello'], logDirectory: join(dir, 'pods', 'plain')})
  const exited = await cri.runtime.waitForExit(pod.containerId)
  assert.equal(exited.exit_code, 0, `${exited.reason} ${exited.message}`)
  assert.deepEqual(readCriLog(pod.logPath).map((line) => line.content), ['plain layer'])

  const layers = await layersOf('plain:v1')
  const content = cri.ctr(['content', 'ls', '-q'])
  for (const {digest} of layers) assert.match(content, new RegExp(digest), `layer ${digest} was downloaded into the content store`)
  const status = await querySnapshotterStatus(daemon.socket)
  const attempts = status.recentRemoteAttempts.filter((a) => a.image === image)
  assert.ok(attempts.length > 0, `the snapshotter recorded why ${image}'s layers are not lazy: ${JSON.stringify(status.recentRemoteAttempts)}`)
  for (const attempt of attempts) {
    assert.equal(attempt.remote, false)
    assert.equal(attempt.namespace, 'k8s.io')
    assert.ok(layers.some((l) => l.digest === attempt.layer), `attempt names a layer of the image: ${attempt.layer}`)
    assert.match(attempt.reason ?? '', /not an eStargz layer/)
  }
  const shown = await runCli(['snapshotter', 'status', '--snapshotter-socket', daemon.socket])
  assert.equal(shown.status, 0, shown.stderr)
  assert.match(shown.stdout, new RegExp(`\\[k8s\\.io\\] layer [0-9a-f]{12} of ${image.replace(/[.:/]/g, '\\$&')}: .*not an eStargz layer`))
  await cri.runtime.removePod(pod.sandboxId)
})

test('two pods of one image at once; `lazyctl pull` in default shares the lazy layers with CRI\'s k8s.io; removing the image everywhere unmounts them', async () => {
  const archive = join(dir, 'shared.tar')
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'shared.txt', content: 'one layer, two namespaces\n'}, {path: 'pad', random: {size: 2 << 20, seed: 'shared'}}], compressionLevel: 0}]}))
  await pushImage(archive, 'shared:plain', registry)
  const image = `${registry.host}/shared:esgz`
  const converted = await runCli(['convert', '--quiet', `docker://${registry.host}/shared:plain`, `docker://${image}`])
  assert.equal(converted.status, 0, converted.stderr)
  const layers = await layersOf('shared:esgz')

  const script = 'cat /shared.txt; exec sleep 600'
  const pods = await Promise.all(['left', 'right'].map((name) => cri.runtime.startPod({name, image, command: ['sh', '-c', script], logDirectory: join(dir, 'pods', name)})))
  for (const pod of pods) {
    assert.equal((await cri.runtime.containerStatus(pod.containerId)).state, 'CONTAINER_RUNNING')
    const exec = await cri.runtime.execSync(pod.containerId, ['cat', '/shared.txt'])
    assert.equal(exec.stdout, 'one layer, two namespaces\n')
  }

  const pulled = await runCli(['pull', '--address', cri.containerd.address, '--namespace', 'default', '--snapshotter', 'stargz', image])
  assert.equal(pulled.status, 0, pulled.stderr)
  // Every layer is lazy and mounted once, for both namespaces.
  const mounted = (await querySnapshotterStatus(daemon.socket)).layers.filter((l) => layers.some((layer) => layer.digest === l.layerDigest))
  assert.deepEqual(mounted.map((l) => l.layerDigest).sort(), layers.map((l) => l.digest).sort())
  assert.ok(mounted.every((l) => l.imageRef === image))

  for (const pod of pods) await cri.runtime.removePod(pod.sandboxId)
  const removed = await runCli(['rmi', '--address', cri.containerd.address, '--namespace', 'default', image])
  assert.equal(removed.status, 0, removed.stderr)
  await cri.runtime.removeImage(image)
  const left = (await querySnapshotterStatus(daemon.socket)).layers.filter((l) => l.imageRef === image)
  assert.deepEqual(left.map((l) => l.layerDigest), [], 'no lazy layer of the removed image stays mounted')
})

test('a snapshotter in strict mode ([remote] require_lazy) fails a CRI PullImage of a non-eStargz image with its reason', async () => {
  const strict = await startSnapshotterDaemon({config: '[remote]\nrequire_lazy = true\n'})
  const strictCri = await startCriContainerd({snapshotterSocket: strict.socket, hostsDir: plainHttpHostsDir(dir, registry.host)})
  try {
    const archive = join(dir, 'strict.tar')
    await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'strict', content: 'never downloaded\n'}]}]}))
    await pushImage(archive, 'strict:v1', registry)
    await assert.rejects(strictCri.runtime.pullImage(`${registry.host}/strict:v1`), /not lazy \(\[remote\] require_lazy\): .*not an eStargz layer/)
    assert.equal(await strictCri.runtime.imageStatus(`${registry.host}/strict:v1`), null, 'no image left as if pulled')
  } finally {
    await strictCri.stop()
    await strict.stop()
  }
})
