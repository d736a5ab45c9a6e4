// Realistic images run lazily through containerd and lazyctl's snapshotter: a Debian python3
// image (every file read through the lazy mount has the source's bytes) and a multi-layer image
// with whiteouts and an opaque dir (the merged tree is the one overlayfs shows for plain layers).
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {createReadStream, lstatSync, readdirSync} from 'node:fs'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {runCli} from '../rig/cli.js'
import {startContainerd, type ContainerdRig} from '../rig/containerd.js'
import {debootstrapRoot} from '../rig/debootstrap.js'
import {busyboxImage, inspectRaw, pushImage, writeOciArchive} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from '../snapshotter/daemon.js'

let containerd: ContainerdRig
let registry: RegistryRig
let daemon: SnapshotterDaemon
let dir: string
let debianRoot: string

function cli(args: string[]) {
  const [command, ...rest] = args
  return runCli([command!, '--address', containerd.address, '--namespace', containerd.namespace, ...rest], {env: {LAZYCTL_DATA_ROOT: join(dir, 'data')}})
}

/** Pushes `archive` as REPO:plain and converts it to REPO:esgz with lazyctl; returns both references. */
async function publish(archive: string, repo: string): Promise<{plain: string; lazy: string}> {
  await pushImage(archive, `${repo}:plain`, registry)
  const plain = `${registry.host}/${repo}:plain`
  const lazy = `${registry.host}/${repo}:esgz`
  const converted = await runCli(['convert', '--quiet', `docker://${plain}`, `docker://${lazy}`])
  assert.equal(converted.status, 0, converted.stderr)
  return {plain, lazy}
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  await pipeline(createReadStream(path), hash)
  return hash.digest('hex')
}

function regularFiles(root: string, rel = ''): string[] {
  return readdirSync(join(root, rel)).flatMap((name) => {
    const path = join(rel, name)
    const st = lstatSync(join(root, path))
    if (st.isDirectory()) return regularFiles(root, path)
    return st.isFile() ? [path] : []
  })
}

before(async () => {
  dir = rigTempDir('lazy-images')
  debianRoot = await debootstrapRoot({include: ['python3']})
  registry = await startRegistry()
  // Background fetch off: what the registry serves is then only what the containers read.
  daemon = await startSnapshotterDaemon({config: '[background_fetch]\nenable = false\n'})
  containerd = await startContainerd({snapshotterSocket: daemon.socket})
})
after(async () => {
  await containerd?.stop()
  await daemon?.stop()
  await registry?.stop()
  if (dir) removeDir(dir)
})

test('a Debian python3 image runs python3 lazily, and every file read through the lazy mount has the source bytes', async () => {
  const archive = join(dir, 'python.tar')
  await writeOciArchive(archive, {layers: [{dir: debianRoot}], config: {Cmd: ['python3'], Env: ['PATH=/usr/local/bin:/usr/bin:/bin']}})
  const {lazy} = await publish(archive, 'python')

  const res = await cli(['run', '--rm', '--snapshotter', 'stargz', lazy, 'python3', '-c', 'import json; print(json.dumps({"answer": 6 * 7}))'])
  assert.equal(res.status, 0, res.stderr)
  assert.equal(res.stdout.trim(), '{"answer": 42}')

  const layer = (JSON.parse(await inspectRaw('python:esgz', registry)) as {layers: Array<{digest: string; size: number}>}).layers[0]!
  const served = await registry.bytesServed({digest: layer.digest, method: 'GET'})
  assert.ok(served < layer.size / 2, `python3 -c should need a fraction of the ${layer.size}-byte layer, the registry served ${served}`)

  const status = await querySnapshotterStatus(daemon.socket)
  const mounted = status.layers.find((l) => l.layerDigest === layer.digest)
  assert.ok(mounted, 'the python layer is a lazy (FUSE) layer of the snapshotter')
  const files = regularFiles(debianRoot)
  assert.ok(files.length > 1000, `a Debian root has thousands of files, found ${files.length}`)
  const mismatched: string[] = []
  for (const file of files) {
    if ((await sha256File(join(mounted.mountpoint, file))) !== (await sha256File(join(debianRoot, file)))) mismatched.push(file)
  }
  assert.deepEqual(mismatched, [], 'files whose bytes differ through the lazy mount')
})

test('whiteouts and opaque dirs of eStargz layers merge lazily exactly as overlayfs merges the plain layers', async () => {
  const archive = join(dir, 'layers.tar')
  await writeOciArchive(archive, busyboxImage({
    layers: [
      {files: [{path: 'data', dir: true}, {path: 'data/keep', content: 'kept\n'}, {path: 'data/gone', content: 'deleted above\n'}, {path: 'opq', dir: true}, {path: 'opq/old', content: 'hidden by opaque\n'}, {path: 'opq/sub', dir: true}, {path: 'opq/sub/deep', content: 'hidden too\n'}]},
      {files: [{path: 'data/gone', whiteout: true}, {path: 'opq', opaque: true}, {path: 'opq/new', content: 'new\n'}, {path: 'data/added', content: 'added\n'}]},
    ],
  }))
  const {plain, lazy} = await publish(archive, 'layers')
  const listing = 'find /data /opq | sort; cat /data/keep /data/added /opq/new'
  const full = await cli(['run', '--rm', '--snapshotter', 'overlayfs', plain, 'sh', '-c', listing])
  assert.equal(full.status, 0, full.stderr)
  assert.equal(full.stdout, ['/data', '/data/added', '/data/keep', '/opq', '/opq/new', 'kept', 'added', 'new', ''].join('\n'))
  const lazily = await cli(['run', '--rm', '--snapshotter', 'stargz', lazy, 'sh', '-c', listing])
  assert.equal(lazily.status, 0, lazily.stderr)
  assert.equal(lazily.stdout, full.stdout)

  const status = await querySnapshotterStatus(daemon.socket)
  const manifest = JSON.parse(await inspectRaw('layers:esgz', registry)) as {layers: Array<{digest: string}>}
  for (const {digest} of manifest.layers) {
    assert.ok(status.layers.some((l) => l.layerDigest === digest), `layer ${digest} is served lazily`)
  }
})
