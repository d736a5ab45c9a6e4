// lazyctl's snapshotter as containerd's `stargz` proxy plugin, with the rig's real containerd,
// registry, runc and FUSE: plain layers (imported, and pulled with remote labels that fall back),
// and eStargz layers mounted lazily.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {join} from 'node:path'
import {runCli} from '../rig/cli.js'
import {startContainerd, unmountUnder, type ContainerdRig} from '../rig/containerd.js'
import {busyboxImage, pushImage, writeOciArchive, type WrittenImage} from '../rig/images.js'
import {requireCommand, waitUntilReady} from '../rig/process.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {ctrFor, ctrRun} from '../rig/ctr.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from './daemon.js'
import {SnapshotsClient, grpcCode} from './snapshots-client.js'
import * as grpc from '@grpc/grpc-js'

let containerd: ContainerdRig
let registry: RegistryRig
let daemon: SnapshotterDaemon
let workDir: string
let archive: string
let markedLayerDigest: string

before(async () => {
  requireCommand('ctr-remote', 'stargz-snapshotter')
  workDir = rigTempDir('snapshotter-ctr')
  registry = await startRegistry()
  // The snapshotter first: containerd dials its proxy plugins at start and backs off after a failure.
  daemon = await startSnapshotterDaemon()
  containerd = await startContainerd({snapshotterSocket: daemon.socket})
  await waitUntilContainerdReachesSnapshotter()
  archive = join(workDir, 'busybox.tar')
  await writeOciArchive(archive, busyboxImage({tag: 'plain'}))
})
after(async () => {
  await containerd?.stop()
  await daemon?.stop()
  await registry?.stop()
  for (const dir of [daemon?.dir, workDir]) {
    if (!dir) continue
    unmountUnder(dir)
    removeDir(dir)
  }
})


/**
 * ctr / ctr-remote against the rig, without blocking this process: the services log through pipes
 * this process drains, and a synchronous exec would let a busy service (a registry at debug level
 * answering our range reads) block on a full pipe until the command times out.
 */
const ctr = ctrFor(() => containerd)

/** containerd reconnects to a proxy plugin with a backoff of up to 3 s; wait until a call goes through. */
async function waitUntilContainerdReachesSnapshotter(): Promise<void> {
  await waitUntilReady(containerd.process, 'containerd reaching the snapshotter', async () => {
    await ctr(['snapshots', '--snapshotter', 'stargz', 'ls'])
    return true
  })
}

let containerCount = 0
function run(image: string, args: string[]): Promise<string> {
  return ctrRun(ctr, workDir, image, `snap-${process.pid}-${++containerCount}`, args, {snapshotter: 'stargz'})
}

/** Lazy mounts the daemon serves: FUSE mounts under its snapshots dir, as the kernel lists them. */
function fuseMountsUnder(dir: string): string[] {
  return execFileSync('findmnt', ['-rn', '-o', 'TARGET,FSTYPE'], {encoding: 'utf8'})
    .split('\n')
    .map((line) => line.split(' '))
    .filter(([target, fstype]) => target?.startsWith(`${dir}/`) && fstype?.startsWith('fuse'))
    .map(([target]) => target!)
}

describe('plain layers', () => {
  test('an imported busybox image unpacks into the snapshotter and runs', async () => {
    await ctr(['images', 'import', '--snapshotter', 'stargz', '--index-name', 'rig/busybox:plain', archive])
    const out = await run('rig/busybox:plain', ['sh', '-c', 'echo hello from lazyctl; ls /bin/busybox'])
    assert.match(out, /hello from lazyctl/)
    assert.match(out, /\/bin\/busybox/)
    // The layer is a committed snapshot in lazyctl's metadata, named by containerd's key scheme.
    const names = await ctr(['snapshots', '--snapshotter', 'stargz', 'ls'])
    assert.match(names, /sha256:[0-9a-f]{64}\s+Committed/)
  })

  test('a container writes into its own upper dir, not into the image layer', async () => {
    const out = await run('rig/busybox:plain', ['sh', '-c', 'echo scratch > /tmp/x && cat /tmp/x && ls /tmp'])
    assert.match(out, /scratch/)
    const again = await run('rig/busybox:plain', ['ls', '/tmp'])
    assert.doesNotMatch(again, /x/)
  })

  test('a remote-labelled pull of a plain gzip layer falls back to a download and logs the reason', async () => {
    // A layer of its own on top of busybox, so containerd has to unpack it (the base is already there).
    const marker = `fallback-${process.pid}`
    const markedArchive = join(workDir, 'busybox-marked.tar')
    const marked = (await writeOciArchive(markedArchive, busyboxImage({tag: 'marked', layers: [{files: [{path: 'marker.txt', content: marker}]}]}))) as WrittenImage
    await pushImage(markedArchive, 'busybox:marked', registry, {sourceTag: 'marked'})
    const ref = `${registry.host}/busybox:marked`
    await ctr(['image', 'rpull', '--plain-http', '--snapshotter', 'stargz', ref], 'ctr-remote')
    const line = await daemon.waitForLog('the fallback line', (l) => l.level === 'warn' && l['remote-snapshot-prepared'] === false)
    assert.match(String(line.reason), /toc\.digest/, 'the reason names the missing TOC digest')
    assert.match(String(line.msg), /falling back/)
    assert.match(String(line.target), /^sha256:[0-9a-f]{64}$/)
    const out = await run(ref, ['cat', '/marker.txt'])
    assert.equal(out.trim(), marker)
    const status = await querySnapshotterStatus(daemon.socket)
    const fallback = status.recentRemoteAttempts.find((a) => !a.remote && a.target === line.target)
    assert.ok(fallback, 'status lists the fallback')
    assert.match(fallback.reason ?? '', /toc\.digest/)
    // The registry served the whole blob of the marked layer: containerd downloaded it.
    const markedLayer = marked.layers[1]!
    markedLayerDigest = markedLayer.digest
    assert.equal(await registry.bytesServed({digest: markedLayer.digest, method: 'GET'}), markedLayer.size)
  })
})

describe('eStargz layers', () => {
  test('an image converted by ctr-remote is pulled lazily: Prepare answers ALREADY_EXISTS, the layer is a FUSE mount, and it runs', async () => {
    // Convert in containerd's content store, then push to the rig registry and pull it back lazily.
    await ctr(['images', 'import', '--no-unpack', '--index-name', 'rig/busybox:src', archive])
    const esgzRef = `${registry.host}/busybox:esgz`
    await ctr(['image', 'convert', '--estargz', '--oci', 'rig/busybox:src', esgzRef], 'ctr-remote')
    await ctr(['images', 'push', '--plain-http', esgzRef])
    await ctr(['images', 'rm', esgzRef, 'rig/busybox:src'])

    const lazyRef = `${registry.host}/busybox:esgz`
    await ctr(['image', 'rpull', '--plain-http', '--snapshotter', 'stargz', lazyRef], 'ctr-remote')
    const prepared = await daemon.waitForLog('the remote snapshot line', (l) => l['remote-snapshot-prepared'] === true)
    assert.match(String(prepared.target), /^sha256:[0-9a-f]{64}$/)

    const status = await querySnapshotterStatus(daemon.socket)
    const remote = status.snapshots.filter((s) => s.remote)
    assert.equal(remote.length, 1)
    assert.equal(remote[0]!.mounted, true)
    assert.equal(remote[0]!.labels['containerd.io/snapshot/remote'], 'remote snapshot')
    assert.equal(remote[0]!.name, prepared.target)
    const mountpoint = join(daemon.root, 'snapshotter', 'snapshots', String(remote[0]!.id), 'fs')
    assert.deepEqual(fuseMountsUnder(join(daemon.root, 'snapshotter')), [mountpoint])
    assert.equal(status.layers.length, 1)
    assert.equal(status.layers[0]!.mountpoint, mountpoint)
    const human = await runCli(['snapshotter', 'status', '--snapshotter-socket', daemon.socket])
    assert.equal(human.status, 0, human.stderr)
    assert.match(human.stdout, new RegExp(`committed\\s+lazy\\s+${prepared.target}`))
    assert.match(human.stdout, new RegExp(`Lazy layers:\\n.*\\n\\s+${status.layers[0]!.layerDigest.slice(7, 19)}\\s`))

    const out = await run(lazyRef, ['sh', '-c', 'echo lazily && /bin/busybox sha256sum /bin/busybox'])
    assert.match(out, /lazily/)
    const expected = execFileSync('sha256sum', ['/bin/busybox'], {encoding: 'utf8'}).split(' ')[0]!
    assert.match(out, new RegExp(expected), 'the binary read through FUSE has the bytes of the source')
  })

  test('Prepare with a TOC digest that does not match the layer refuses the mount and falls back, saying why', async () => {
    const status = await querySnapshotterStatus(daemon.socket)
    const lazy = status.snapshots.find((s) => s.remote)!
    const labels = {...lazy.labels}
    delete labels['containerd.io/snapshot/remote']
    labels['containerd.io/snapshot.ref'] = `sha256:${'1'.repeat(64)}`
    labels['containerd.io/snapshot/stargz/toc.digest'] = `sha256:${'2'.repeat(64)}`
    const client = new SnapshotsClient(daemon.socket)
    try {
      const mounts = await client.prepare(`mismatch-${process.pid}`, '', labels)
      assert.equal(mounts[0]!.type, 'bind', 'a normal snapshot comes back for containerd to fill')
      const line = await daemon.waitForLog('the mismatch fallback', (l) => l.key === `mismatch-${process.pid}` && l['remote-snapshot-prepared'] === false)
      assert.match(String(line.reason), /TOC|digest/i)
      assert.equal((await grpcCode(client.stat(labels['containerd.io/snapshot.ref']!))).code, grpc.status.NOT_FOUND, 'nothing committed under the target')
      assert.equal(fuseMountsUnder(join(daemon.root, 'snapshotter')).length, 1, 'no second FUSE mount left behind')
      // No Remove: containerd's GC removes snapshots it has no record of (it walks List), maybe already.
    } finally {
      client.close()
    }
  })

  test('Prepare of a blob that is not eStargz, with a TOC digest label, falls back with the footer error', async () => {
    const client = new SnapshotsClient(daemon.socket)
    try {
      const key = `not-esgz-${process.pid}`
      const mounts = await client.prepare(key, '', {
        'containerd.io/snapshot.ref': `sha256:${'3'.repeat(64)}`,
        'containerd.io/snapshot/remote/stargz.reference': `${registry.host}/busybox:marked`,
        'containerd.io/snapshot/remote/stargz.digest': markedLayerDigest,
        'containerd.io/snapshot/stargz/toc.digest': `sha256:${'4'.repeat(64)}`,
      })
      assert.equal(mounts[0]!.type, 'bind')
      const line = await daemon.waitForLog('the footer fallback', (l) => l.key === key && l['remote-snapshot-prepared'] === false)
      assert.match(String(line.reason), /footer|eStargz|gzip/i)
    } finally {
      client.close()
    }
  })

  test('after a SIGKILL and a restart the lazy layer is mounted again and a new container runs', async () => {
    const before = await querySnapshotterStatus(daemon.socket)
    const lazy = before.snapshots.find((s) => s.remote)!
    const mountpoint = join(daemon.root, 'snapshotter', 'snapshots', String(lazy.id), 'fs')
    await daemon.kill()
    daemon = await startSnapshotterDaemon({socket: daemon.socket, root: daemon.root, dir: daemon.dir})
    await daemon.waitForLog('the restore line', (l) => l.msg === 'restored remote snapshot' && l.id === lazy.id)
    await waitUntilContainerdReachesSnapshotter()
    const after = await querySnapshotterStatus(daemon.socket)
    // Snapshots this file prepared straight on the socket have no containerd record: containerd's
    // garbage collector may remove them at any moment, also while the daemon restarts.
    const kept = (list: typeof before.snapshots) => list.filter((s) => !/^(mismatch|not-esgz)-/.test(s.name)).map((s) => [s.name, s.kind, s.parent])
    assert.deepEqual(kept(after.snapshots), kept(before.snapshots))
    assert.equal(after.snapshots.find((s) => s.remote)?.mounted, true)
    assert.deepEqual(fuseMountsUnder(join(daemon.root, 'snapshotter')), [mountpoint], 'one live FUSE mount, the stale one detached')
    const out = await run(`${registry.host}/busybox:esgz`, ['sh', '-c', 'echo after restart; ls /bin/busybox'])
    assert.match(out, /after restart/)
  })

  test('a lazy layer that cannot be remounted (registry gone) makes new snapshots on it Unavailable, not empty', async () => {
    const lazy = (await querySnapshotterStatus(daemon.socket)).snapshots.find((s) => s.remote)!
    await registry.stop()
    await daemon.kill()
    daemon = await startSnapshotterDaemon({socket: daemon.socket, root: daemon.root, dir: daemon.dir})
    const failed = await daemon.waitForLog('the restore failure', (l) => l.level === 'error' && l.id === lazy.id)
    assert.match(String(failed.msg), /failed to restore remote snapshot/)
    assert.match(String(failed.reason), /cannot reach registry|ECONNREFUSED/)
    const status = await querySnapshotterStatus(daemon.socket)
    assert.equal(status.snapshots.find((s) => s.id === lazy.id)?.mounted, false)
    const client = new SnapshotsClient(daemon.socket)
    try {
      const refused = await grpcCode(client.prepare(`on-dead-layer-${process.pid}`, lazy.name))
      assert.equal(refused.code, grpc.status.UNAVAILABLE)
      assert.match(refused.details, /unavailable/)
      assert.equal((await grpcCode(client.stat(`on-dead-layer-${process.pid}`))).code, grpc.status.NOT_FOUND, 'the refused snapshot is not kept')
    } finally {
      client.close()
    }
  })
})
