// The lazy path is the default: `lazyctl run` with no --snapshotter, on a containerd configured
// with the `stargz` proxy plugin and nothing serving its socket, starts lazyctl's snapshotter
// itself (root and cache from LAZYCTL_CONFIG), runs the image lazily, and a second run reuses it
// (and names the image to it first thing).
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {runCli} from '../rig/cli.js'
import {startContainerd, unmountUnder, type ContainerdRig} from '../rig/containerd.js'
import {busyboxImage, inspectRaw, pushImage, writeOciArchive} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

let containerd: ContainerdRig
let registry: RegistryRig
let dir: string
let snapshotterRoot: string
let configFile: string
let lazyRef: string

function cli(args: string[]) {
  const [command, ...rest] = args
  return runCli([command!, '--address', containerd.address, '--namespace', containerd.namespace, ...rest], {
    // No CONTAINERD_SNAPSHOTTER: the default is under test.
    env: {LAZYCTL_DATA_ROOT: join(dir, 'data'), LAZYCTL_CONFIG: configFile, CONTAINERD_SNAPSHOTTER: ''},
  })
}

/** The daemon `run` started is detached from this test: find it by its root's pid lock. */
function killSpawnedSnapshotter(): void {
  const lock = join(snapshotterRoot, 'snapshotter', 'daemon.pid')
  if (!existsSync(lock)) return
  try {
    process.kill(Number(readFileSync(lock, 'utf8').trim()), 'SIGKILL')
  } catch {
    // already gone
  }
}

before(async () => {
  dir = rigTempDir('lazy-default')
  snapshotterRoot = join(dir, 'snapshotter-root')
  configFile = join(dir, 'config.toml')
  registry = await startRegistry()
  containerd = await startContainerd()
  // As `node setup` writes it: the socket containerd's proxy plugin dials.
  writeFileSync(configFile, `root = ${JSON.stringify(snapshotterRoot)}\nsocket = ${JSON.stringify(containerd.snapshotterSocket)}\n`)
  const archive = join(dir, 'busybox.tar')
  await writeOciArchive(archive, busyboxImage())
  await pushImage(archive, 'busybox:plain', registry)
  lazyRef = `${registry.host}/busybox:esgz`
  const converted = await runCli(['convert', '--quiet', `docker://${registry.host}/busybox:plain`, `docker://${lazyRef}`])
  assert.equal(converted.status, 0, converted.stderr)
})

after(async () => {
  await containerd?.stop()
  killSpawnedSnapshotter()
  if (dir) unmountUnder(dir)
  await registry?.stop()
  if (dir) removeDir(dir)
})

test('run with no --snapshotter starts the lazy snapshotter itself and runs the image lazily', async () => {
  const res = await cli(['run', '--rm', lazyRef, 'sh', '-c', 'echo lazily'])
  assert.equal(res.status, 0, res.stderr)
  assert.equal(res.stdout.trim(), 'lazily')

  const status = await querySnapshotterStatus(containerd.snapshotterSocket)
  assert.equal(status.root, snapshotterRoot, 'the spawned daemon took its root from LAZYCTL_CONFIG')
  const remote = status.snapshots.filter((s) => s.remote)
  assert.equal(remote.length, 1, 'the one eStargz layer is a remote (FUSE) snapshot')

  const manifest = JSON.parse(await inspectRaw('busybox:esgz', registry)) as {layers: Array<{digest: string; size: number}>}
  const layer = manifest.layers[0]!
  assert.doesNotMatch(containerd.ctr(['content', 'ls', '-q']), new RegExp(layer.digest.slice(7)), 'the layer blob was never downloaded into containerd')
  assert.ok((await registry.bytesServed({digest: layer.digest, method: 'GET'})) < layer.size, 'the registry served only parts of the layer')
})

test('a second run reuses the snapshotter that the first one started', async () => {
  const before = await querySnapshotterStatus(containerd.snapshotterSocket)
  const seen = (await registry.requests()).length
  const res = await cli(['run', '--rm', lazyRef, 'true'])
  assert.equal(res.status, 0, res.stderr)
  const after = await querySnapshotterStatus(containerd.snapshotterSocket)
  assert.equal(after.pid, before.pid)
  assert.equal(after.startedAt, before.startedAt)
  // The image is in containerd already, so the CLI asked the registry nothing: the manifest GET is
  // the running daemon's, named the image by bin/run.js before the CLI loaded (src/run/early-hint.ts).
  const requests = (await registry.requests()).slice(seen)
  assert.deepEqual(requests.filter((r) => r.kind === 'manifest').map((r) => `${r.method} ${r.reference}`), ['GET esgz'], 'the running snapshotter was told the image as run started')
})

test('after the snapshotter run started is SIGKILLed, the next run starts another (its predecessor perhaps an unreaped zombie) and runs the image again, lazily', async () => {
  const before = await querySnapshotterStatus(containerd.snapshotterSocket)
  killSpawnedSnapshotter()
  for (const namespace of [containerd.namespace, `${containerd.namespace}-second`]) {
    const res = await runCli(['run', '--rm', '--address', containerd.address, '--namespace', namespace, lazyRef, 'sh', '-c', 'echo again'], {
      env: {LAZYCTL_DATA_ROOT: join(dir, 'data'), LAZYCTL_CONFIG: configFile, CONTAINERD_SNAPSHOTTER: ''},
    })
    assert.equal(res.status, 0, `${namespace}: ${res.stderr}`)
    assert.equal(res.stdout, 'again\n')
    assert.doesNotMatch(res.stderr, /not lazy/)
  }
  const after = await querySnapshotterStatus(containerd.snapshotterSocket)
  assert.notEqual(after.pid, before.pid, 'a new daemon serves')
  assert.ok(after.snapshots.some((s) => s.remote && s.mounted), 'the lazy layer is mounted again')
})
