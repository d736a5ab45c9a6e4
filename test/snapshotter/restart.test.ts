// The daemon's metadata across crashes and restarts, and its orderly stop.
import {after, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {once} from 'node:events'
import {unmountUnder} from '../rig/containerd.js'
import {removeDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from './daemon.js'
import {SnapshotsClient} from './snapshots-client.js'

const daemons: SnapshotterDaemon[] = []
after(async () => {
  // The last one first: the first one made the dir and removes it when it stops.
  for (const d of [...daemons].reverse()) await d.stop()
  const dir = daemons[0]?.dir
  if (dir) {
    unmountUnder(dir)
    removeDir(dir)
  }
})

test('snapshots survive a SIGKILL: after a restart List shows the same snapshots, kinds, parents, labels and times', async () => {
  const first = await startSnapshotterDaemon()
  daemons.push(first)
  let client = new SnapshotsClient(first.socket)
  await client.prepare('base-key', '', {'containerd.io/snapshot/a': '1'})
  await client.commit('base', 'base-key', {'containerd.io/snapshot/b': '2'})
  await client.prepare('top-key', 'base')
  await client.view('base-view', 'base')
  const mountsBefore = await client.mounts('top-key')
  const before = await client.list()
  client.close()
  assert.equal(before.length, 3)

  // A crash mid-way leaves an unrecorded directory behind; the next start removes it.
  const orphan = join(first.root, 'snapshotter', 'snapshots', 'new-crashed')
  await first.kill()
  mkdirSync(orphan)

  const second = await startSnapshotterDaemon({root: first.root, dir: first.dir, socket: first.socket})
  daemons.push(second)
  client = new SnapshotsClient(second.socket)
  try {
    assert.deepEqual(await client.list(), before)
    assert.deepEqual(await client.mounts('top-key'), mountsBefore, 'the same directories serve the same snapshots')
    assert.equal(existsSync(orphan), false)
    // And it keeps working: commit on top of what was recovered.
    await client.commit('top', 'top-key')
    assert.equal((await client.stat('top')).parent, 'base')
  } finally {
    client.close()
  }
})

test('SIGTERM stops serving, removes the socket and exits 0', async () => {
  const daemon = daemons[daemons.length - 1]!
  assert.ok(existsSync(daemon.socket))
  const exited = once(daemon.process.child, 'exit') as Promise<[number | null, string | null]>
  process.kill(daemon.process.child.pid!, 'SIGTERM')
  const [code, signal] = await exited
  assert.equal(signal, null)
  assert.equal(code, 0)
  assert.equal(existsSync(daemon.socket), false)
  assert.ok(daemon.logLines().some((l) => l.msg === 'stopped'))
  assert.equal(existsSync(join(daemon.root, 'snapshotter', 'daemon.pid')), false, 'the root lock is released')
})

test('with [remote] enable = false, a Prepare with remote labels is a normal snapshot and says so', async () => {
  const daemon = await startSnapshotterDaemon({config: '[remote]\nenable = false\n'})
  daemons.push(daemon)
  const client = new SnapshotsClient(daemon.socket)
  try {
    const mounts = await client.prepare('disabled-key', '', {
      'containerd.io/snapshot.ref': `sha256:${'8'.repeat(64)}`,
      'containerd.io/snapshot/remote/stargz.reference': '127.0.0.1:1/never/contacted:1',
      'containerd.io/snapshot/remote/stargz.digest': `sha256:${'5'.repeat(64)}`,
      'containerd.io/snapshot/stargz/toc.digest': `sha256:${'6'.repeat(64)}`,
    })
    assert.equal(mounts[0]!.type, 'bind')
    const line = await daemon.waitForLog('the disabled line', (l) => l.key === 'disabled-key')
    assert.equal(line.level, 'info')
    assert.match(String(line.msg), /remote snapshots disabled/)
    assert.equal(daemon.logLines().some((l) => l.level === 'warn'), false, 'no fallback warning: nothing was tried')
  } finally {
    client.close()
  }
})
