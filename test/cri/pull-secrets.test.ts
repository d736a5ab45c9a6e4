// A private registry on the Kubernetes path, where the credentials exist only as a pod's pull
// secret: kubelet's image-service endpoint is lazyctl's snapshotter socket ([cri_keychain], as a
// node set up for stargz-snapshotter has it), PullImage's `auth` reaches the lazy reads, and
// survives a SIGKILL of the snapshotter: a new pod of the same image (no new PullImage) reads files
// never read before, lazily, with the same credentials. The snapshotter has no docker config.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {execFileSync} from 'node:child_process'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {runCli} from '../rig/cli.js'
import {CriClient, readCriLog, startCriContainerd, type CriRig} from '../rig/cri.js'
import {busyboxImage, inspectRaw, pushImage, writeOciArchive} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from '../snapshotter/daemon.js'

let dir: string
let registry: RegistryRig
let daemon: SnapshotterDaemon
let cri: CriRig
let kubelet: CriClient
let daemonConfig: string

const PAD = 6 << 20

before(async () => {
  dir = rigTempDir('cri-secrets')
  registry = await startRegistry({auth: 'htpasswd', tls: true})
  const containerdSocket = join(dir, 'containerd.sock')
  daemonConfig = [
    '[background_fetch]',
    'enable = false',
    '[registry]',
    `hosts_dir = ${JSON.stringify(registry.hostsDir)}`,
    '[cri_keychain]',
    'enable_keychain = true',
    `image_service_path = ${JSON.stringify(containerdSocket)}`,
  ].join('\n')
  // No docker config: the only credentials the snapshotter can have are the pod's pull secret.
  mkdirSync(join(dir, 'empty-docker'))
  daemon = await startSnapshotterDaemon({dir: join(dir, 'snapshotter'), config: daemonConfig, env: {DOCKER_CONFIG: join(dir, 'empty-docker')}})
  cri = await startCriContainerd({snapshotterSocket: daemon.socket, address: containerdSocket, hostsDir: registry.hostsDir!})
  // kubelet --container-runtime-endpoint=containerd --image-service-endpoint=the snapshotter
  kubelet = new CriClient(containerdSocket, daemon.socket)
})
after(async () => {
  kubelet?.close()
  await cri?.stop()
  await daemon?.stop()
  await registry?.stop()
  if (dir) removeDir(dir)
})

/** Pushes `archive` as REPO:plain and converts it with lazyctl to REPO:esgz; the image and its top layer. */
async function publish(archive: string, repo: string): Promise<{image: string; layer: {digest: string; size: number}}> {
  await pushImage(archive, `${repo}:plain`, registry)
  const cliDocker = join(dir, 'cli-docker')
  mkdirSync(cliDocker, {recursive: true})
  writeFileSync(join(cliDocker, 'config.json'), JSON.stringify({auths: {[registry.host]: {auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64')}}}))
  const image = `${registry.host}/${repo}:esgz`
  const converted = await runCli(['convert', '--quiet', '--hosts-dir', registry.hostsDir!, `docker://${registry.host}/${repo}:plain`, `docker://${image}`], {env: {DOCKER_CONFIG: cliDocker}})
  assert.equal(converted.status, 0, converted.stderr)
  const layer = (JSON.parse(await inspectRaw(`${repo}:esgz`, registry)) as {layers: Array<{digest: string; size: number}>}).layers.at(-1)!
  return {image, layer}
}

test('a pull secret sent to the snapshotter socket serves the lazy reads, and still does after a SIGKILL and restart', async () => {
  const archive = join(dir, 'private.tar')
  await writeOciArchive(archive, busyboxImage({
    layers: [{files: [
      {path: 'data', dir: true},
      {path: 'data/first.txt', content: 'read by the first pod\n'},
      {path: 'data/pad-a', random: {size: PAD, seed: 'a'}},
      {path: 'data/second.txt', content: 'read only after the restart\n'},
      {path: 'data/pad-b', random: {size: PAD, seed: 'b'}},
    ], compressionLevel: 0}],
  }))
  const {image, layer} = await publish(archive, 'private')

  const secret = {username: registry.username!, password: registry.password!, server_address: `https://${registry.host}`}
  const first = await kubelet.startPod({name: 'first', image, auth: secret, command: ['cat', '/data/first.txt'], logDirectory: join(dir, 'pods', 'first')})
  assert.equal((await kubelet.waitForExit(first.containerId)).exit_code, 0)
  assert.deepEqual(readCriLog(first.logPath).map((l) => l.content), ['read by the first pod'])
  const status = await querySnapshotterStatus(daemon.socket)
  assert.ok(status.layers.some((l) => l.layerDigest === layer.digest), 'the private layer is served lazily')
  assert.doesNotMatch(cri.ctr(['content', 'ls', '-q']), new RegExp(layer.digest), 'its blob is not in the content store')
  const servedBefore = await registry.bytesServed({digest: layer.digest, method: 'GET'})
  assert.ok(servedBefore < layer.size / 2, `the first pod needed little of the ${layer.size}-byte layer (served ${servedBefore})`)

  // The keychain is root-only on disk, and no log line carries the password.
  const keychainFile = join(daemon.root, 'cri', 'credentials.json')
  assert.equal(statSync(keychainFile).mode & 0o777, 0o600)
  assert.equal(statSync(join(daemon.root, 'cri')).mode & 0o777, 0o700)

  await daemon.kill()
  daemon = await startSnapshotterDaemon({dir: daemon.dir, root: daemon.root, socket: daemon.socket, config: daemonConfig, env: {DOCKER_CONFIG: join(dir, 'empty-docker')}})
  await cri.waitForSnapshotter()
  const second = await kubelet.startPod({name: 'second', image, noPull: true, command: ['cat', '/data/second.txt'], logDirectory: join(dir, 'pods', 'second')})
  const exited = await kubelet.waitForExit(second.containerId)
  assert.equal(exited.exit_code, 0, `${exited.reason} ${exited.message}`)
  assert.deepEqual(readCriLog(second.logPath).map((l) => l.content), ['read only after the restart'])
  const servedAfter = await registry.bytesServed({digest: layer.digest, method: 'GET'})
  assert.ok(servedAfter > servedBefore, 'the second pod read chunks never read before from the registry')
  assert.ok(servedAfter < layer.size / 2, `still lazily (served ${servedAfter} of ${layer.size})`)
  assert.doesNotMatch(cri.ctr(['content', 'ls', '-q']), new RegExp(layer.digest))

  const logs = readFileSync(join(daemon.dir, 'snapshotter-1.log'), 'utf8') + readFileSync(join(daemon.dir, 'snapshotter-2.log'), 'utf8')
  assert.ok(!logs.includes(registry.password!), 'no snapshotter log line carries the password')
  assert.ok(!logs.includes(Buffer.from(`${registry.username}:${registry.password}`).toString('base64')), 'nor its base64')
  await kubelet.removePod(first.sandboxId)
  await kubelet.removePod(second.sandboxId)
})

test('image calls on the snapshotter socket reach containerd: ImageStatus, ListImages and RemoveImage, which forgets the secret', async () => {
  const image = `${registry.host}/private:esgz`
  const status = await kubelet.imageStatus(image)
  assert.ok(status, 'containerd knows the image pulled through the proxy')
  assert.ok(status.repo_tags.includes(image))
  const listed = (await kubelet.image('ListImages', {})) as {images: Array<{repo_tags: string[]}>}
  assert.ok(listed.images.some((i) => i.repo_tags.includes(image)))
  await kubelet.removeImage(image)
  assert.equal(await kubelet.imageStatus(image), null)
  const keychain = JSON.parse(readFileSync(join(daemon.root, 'cri', 'credentials.json'), 'utf8')) as {images: Record<string, unknown>}
  assert.deepEqual(Object.keys(keychain.images), [], 'the removed image\'s secret is forgotten')
})

test('a proxy whose containerd cannot be reached says so in one line, naming the socket', async () => {
  const missing = join(dir, 'no-containerd.sock')
  const lonely = await startSnapshotterDaemon({config: `[cri_keychain]\nenable_keychain = true\nimage_service_path = ${JSON.stringify(missing)}\n`})
  const client = new CriClient(join(dir, 'unused.sock'), lonely.socket)
  try {
    await assert.rejects(client.imageStatus('busybox'), (err: Error & {code?: number}) => {
      assert.equal(err.code, 14, 'UNAVAILABLE')
      assert.match(err.message, new RegExp(`cannot reach containerd at ${missing.replace(/[.]/g, '\\.')}`))
      assert.doesNotMatch(err.message, /\n/)
      return true
    })
  } finally {
    client.close()
    await lonely.stop()
  }
})

test('a secret the registry stops accepting: reads fail with EIO and one log line says which layer and image and what to do; a new PullImage with the new secret heals the reads', async () => {
  const archive = join(dir, 'rotating.tar')
  await writeOciArchive(archive, busyboxImage({
    layers: [{files: [
      {path: 'data', dir: true},
      {path: 'data/first.txt', content: 'before the rotation\n'},
      {path: 'data/pad-a', random: {size: PAD, seed: 'ra'}},
      {path: 'data/second.txt', content: 'after the new secret\n'},
      {path: 'data/pad-b', random: {size: PAD, seed: 'rb'}},
    ], compressionLevel: 0}],
  }))
  const {image, layer} = await publish(archive, 'rotating')
  const oldSecret = {username: registry.username!, password: registry.password!}
  const first = await kubelet.startPod({name: 'before', image, auth: oldSecret, command: ['cat', '/data/first.txt'], logDirectory: join(dir, 'pods', 'before')})
  assert.equal((await kubelet.waitForExit(first.containerId)).exit_code, 0)

  // The registry's password changes (a rotated secret); the snapshotter still holds the old one.
  const newPassword = `${registry.password}-rotated`
  await registry.halt()
  writeFileSync(join(registry.dir, 'htpasswd'), execFileSync('htpasswd', ['-niB', '-C', '5', registry.username!], {input: newPassword, encoding: 'utf8'}))
  await registry.resume()

  for (const name of ['refused-1', 'refused-2']) {
    const pod = await kubelet.startPod({name, image, noPull: true, command: ['cat', '/data/second.txt'], logDirectory: join(dir, 'pods', name)})
    const exited = await kubelet.waitForExit(pod.containerId)
    assert.notEqual(exited.exit_code, 0)
    assert.match(readCriLog(pod.logPath).map((l) => l.content).join('\n'), /Input\/output error/)
  }
  const refusals = daemon.logLines().filter((line) => String(line.msg).startsWith('the registry refused a lazy read'))
  assert.equal(refusals.length, 1, 'said once, not per read')
  assert.equal(refusals[0]!.layer, layer.digest)
  assert.equal(refusals[0]!.image, image)
  assert.match(String(refusals[0]!.error), /rejected the credentials/)
  assert.match(String(refusals[0]!.hint), /\[cri_keychain\]/)
  assert.ok(!JSON.stringify(daemon.logLines()).includes(newPassword) && !JSON.stringify(daemon.logLines()).includes(registry.password!))

  // kubelet pulls again with the new secret (what a pod with the updated Secret does): reads work again.
  await kubelet.pullImage(image, {username: registry.username!, password: newPassword})
  const healed = await kubelet.startPod({name: 'healed', image, noPull: true, command: ['cat', '/data/second.txt'], logDirectory: join(dir, 'pods', 'healed')})
  const exited = await kubelet.waitForExit(healed.containerId)
  assert.equal(exited.exit_code, 0, `${exited.reason} ${exited.message}`)
  assert.deepEqual(readCriLog(healed.logPath).map((l) => l.content), ['after the new secret'])
})
