// A node's snapshotter dies (SIGKILL: OOM killer, node agent upgrade) and comes back: an image run
// before runs again, lazily, from the same containerd records, in every namespace that had it,
// also when the daemon died with a background fetch of the layer in flight.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {runCli} from '../rig/cli.js'
import {startContainerd, unmountUnder, type ContainerdRig} from '../rig/containerd.js'
import {busyboxImage, pushImage, writeOciArchive} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {startRangeIgnoringProxy} from '../rig/range-ignoring-proxy.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from '../snapshotter/daemon.js'

// Background fetch at once and unthrottled: it is in flight when the daemon is killed.
const CONFIG = '[background_fetch]\nstart_delay_sec = 0\nrate_bytes_per_sec = 0\n'

let dir: string
let registry: RegistryRig
let daemon: SnapshotterDaemon
let containerd: ContainerdRig
let image: string

before(async () => {
  dir = rigTempDir('restart-rerun')
  registry = await startRegistry()
  daemon = await startSnapshotterDaemon({config: CONFIG})
  containerd = await startContainerd({snapshotterSocket: daemon.socket})
  const archive = join(dir, 'app.tar')
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'hello', content: 'hello again\n'}, {path: 'pad', random: {size: 24 << 20, seed: 'restart'}}], compressionLevel: 0}]}))
  await pushImage(archive, 'app:plain', registry)
  const converted = await runCli(['convert', '-q', `docker://${registry.host}/app:plain`, `docker://${registry.host}/app:esgz`])
  assert.equal(converted.status, 0, converted.stderr)
  image = `${registry.host}/app:esgz`
})
after(async () => {
  await containerd?.stop()
  await daemon?.stop()
  await registry?.stop()
  // The restarted daemon was given the first one's dir, so its stop() leaves the dir to us.
  for (const d of [daemon?.dir, dir]) {
    if (!d) continue
    unmountUnder(d)
    removeDir(d)
  }
})

const run = (namespace: string) =>
  runCli(['run', '--rm', '--address', containerd.address, '--namespace', namespace, '--snapshotter', 'stargz', image, 'cat', '/hello'], {env: {LAZYCTL_DATA_ROOT: join(dir, 'data')}})

test('after a SIGKILL mid background fetch and a restart, the image runs again lazily in both namespaces that had it', async () => {
  for (const namespace of ['team-a', 'team-b']) {
    const first = await run(namespace)
    assert.equal(first.status, 0, first.stderr)
    assert.equal(first.stdout, 'hello again\n')
  }
  await daemon.waitForLog('a background fetch in flight', (l) => l.msg === 'background fetch started')
  await daemon.kill()
  daemon = await startSnapshotterDaemon({socket: daemon.socket, root: daemon.root, dir: daemon.dir, config: CONFIG})
  await daemon.waitForLog('the lazy layer remounted', (l) => l.msg === 'restored remote snapshot')

  for (const namespace of ['team-a', 'team-b']) {
    const again = await run(namespace)
    assert.equal(again.status, 0, `${namespace}: ${again.stderr}`)
    assert.equal(again.stdout, 'hello again\n')
    assert.doesNotMatch(again.stderr, /not lazy/, 'the layer is still served lazily, not downloaded')
  }
})

test('killed while a layer\'s prefetch was in flight, the daemon comes back and the image runs lazily', async () => {
  const archive = join(dir, 'prefetched.tar')
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'first.bin', random: {size: 4 << 20, seed: 'first'}}, {path: 'hello', content: 'prefetched\n'}], compressionLevel: 0}]}))
  await pushImage(archive, 'prefetched:plain', registry)
  const record = join(dir, 'record.jsonl')
  writeFileSync(record, '{"path": "/first.bin"}\n{"path": "/hello"}\n')
  const converted = await runCli(['convert', '-q', '--estargz-record-in', record, `docker://${registry.host}/prefetched:plain`, `docker://${registry.host}/prefetched:esgz`])
  assert.equal(converted.status, 0, converted.stderr)
  const proxy = await startRangeIgnoringProxy(registry.url, {keepRange: true})
  try {
    const prefetched = `${proxy.host}/prefetched:esgz`
    const run = () => runCli(['run', '--rm', '--address', containerd.address, '--namespace', 'team-a', '--snapshotter', 'stargz', prefetched, 'cat', '/hello'], {env: {LAZYCTL_DATA_ROOT: join(dir, 'data')}})
    // The prioritized files are read from the layer's start: hold those reads, then kill the daemon.
    const held = proxy.hangRangesBelow(64 << 10)
    const first = run()
    await held
    await daemon.kill()
    const failed = await first
    assert.notEqual(failed.status, 0, 'the run whose snapshotter died fails')
    await proxy.hangRangesBelow(undefined)
    daemon = await startSnapshotterDaemon({socket: daemon.socket, root: daemon.root, dir: daemon.dir, config: CONFIG})
    const again = await run()
    assert.equal(again.status, 0, again.stderr)
    assert.equal(again.stdout, 'prefetched\n')
    assert.doesNotMatch(again.stderr, /not lazy/)
  } finally {
    await proxy.stop()
  }
})

