// containerd's Snapshots semantics through the real daemon's gRPC socket, as containerd calls it.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import * as grpc from '@grpc/grpc-js'
import {existsSync, readdirSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {runCli} from '../rig/cli.js'
import {unmountUnder} from '../rig/containerd.js'
import type {SnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {removeDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from './daemon.js'
import {SnapshotsClient, grpcCode} from './snapshots-client.js'

let daemon: SnapshotterDaemon
let client: SnapshotsClient

before(async () => {
  daemon = await startSnapshotterDaemon()
  client = new SnapshotsClient(daemon.socket)
})
after(async () => {
  client?.close()
  await daemon?.stop()
  if (daemon) {
    unmountUnder(daemon.dir)
    removeDir(daemon.dir)
  }
})

const snapshotsDir = (): string => join(daemon.root, 'snapshotter', 'snapshots')
const optionValue = (options: string[], name: string): string | undefined => options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1)

/** Prepares `key` on `parent`, writes `files` into its upper dir, commits it as `name`. */
async function layer(name: string, parent: string, files: Record<string, string> = {}): Promise<string> {
  const key = `${name}-active`
  const mounts = await client.prepare(key, parent)
  const upper = mounts[0]!.type === 'bind' ? mounts[0]!.source : optionValue(mounts[0]!.options, 'upperdir')!
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(upper, path, '..'), {recursive: true})
    writeFileSync(join(upper, path), content)
  }
  await client.commit(name, key)
  return upper
}

describe('mounts', () => {
  test('an active snapshot without a parent is a read-write rbind of its own fs dir', async () => {
    const mounts = await client.prepare('m-base')
    assert.equal(mounts.length, 1)
    assert.equal(mounts[0]!.type, 'bind')
    assert.deepEqual(mounts[0]!.options, ['rw', 'rbind'])
    assert.match(mounts[0]!.source, new RegExp(`^${snapshotsDir()}/\\d+/fs$`))
    assert.ok(existsSync(mounts[0]!.source), 'the fs dir exists')
    assert.ok(existsSync(join(mounts[0]!.source, '..', 'work')), 'an active snapshot has a work dir')
    assert.deepEqual(await client.mounts('m-base'), mounts)
  })

  test('a view of one committed layer is a read-only rbind of that layer', async () => {
    const upper = await layer('m-l1', '')
    const mounts = await client.view('m-view1', 'm-l1')
    assert.deepEqual(mounts.map((m) => ({type: m.type, source: m.source, options: m.options})), [{type: 'bind', source: upper, options: ['ro', 'rbind']}])
  })

  test('an active snapshot over two layers is an overlay: lowerdir closest parent first, its own upperdir and workdir', async () => {
    const lower1 = await layer('m-o1', '')
    const lower2 = await layer('m-o2', 'm-o1')
    const mounts = await client.prepare('m-o-active', 'm-o2')
    assert.equal(mounts.length, 1)
    assert.equal(mounts[0]!.type, 'overlay')
    assert.equal(mounts[0]!.source, 'overlay')
    assert.equal(optionValue(mounts[0]!.options, 'lowerdir'), `${lower2}:${lower1}`)
    const upper = optionValue(mounts[0]!.options, 'upperdir')!
    assert.equal(optionValue(mounts[0]!.options, 'workdir'), join(upper, '..', 'work'))
    assert.ok(![lower1, lower2].includes(upper))
    // A view over two layers is an overlay with no upper dir.
    const view = await client.view('m-o-view', 'm-o2')
    assert.equal(view[0]!.type, 'overlay')
    assert.equal(optionValue(view[0]!.options, 'upperdir'), undefined)
    assert.equal(optionValue(view[0]!.options, 'lowerdir'), `${lower2}:${lower1}`)
  })

  test('the overlay containerd mounts from the answer merges the layers', async () => {
    await layer('m-merge1', '', {'a.txt': 'from layer 1', 'shadowed.txt': 'old'})
    await layer('m-merge2', 'm-merge1', {'b.txt': 'from layer 2', 'shadowed.txt': 'new'})
    const mounts = await client.view('m-merge-view', 'm-merge2')
    const target = join(daemon.dir, 'merge-target')
    mkdirSync(target)
    const {execFileSync} = await import('node:child_process')
    execFileSync('mount', ['-t', mounts[0]!.type, mounts[0]!.source, target, '-o', mounts[0]!.options.join(',')])
    try {
      assert.deepEqual(readdirSync(target).sort(), ['a.txt', 'b.txt', 'shadowed.txt'])
      const {readFileSync} = await import('node:fs')
      assert.equal(readFileSync(join(target, 'shadowed.txt'), 'utf8'), 'new')
    } finally {
      execFileSync('umount', [target])
    }
  })
})

describe('lifecycle and metadata', () => {
  test('commit moves the active snapshot to its name, keeps its parent, and replaces its labels', async () => {
    await layer('c-parent', '')
    await client.prepare('c-key', 'c-parent', {'containerd.io/snapshot/keep': 'no'})
    const active = await client.stat('c-key')
    assert.equal(active.kind, 'ACTIVE')
    assert.equal(active.parent, 'c-parent')
    assert.deepEqual(active.labels, {'containerd.io/snapshot/keep': 'no'})
    await client.commit('c-name', 'c-key', {'containerd.io/snapshot/committed': 'yes'})
    const committed = await client.stat('c-name')
    assert.equal(committed.kind, 'COMMITTED')
    assert.equal(committed.parent, 'c-parent')
    assert.deepEqual(committed.labels, {'containerd.io/snapshot/committed': 'yes'})
    assert.ok(Number(committed.created_at!.seconds) >= Number(active.created_at!.seconds))
    assert.equal((await grpcCode(client.stat('c-key'))).code, grpc.status.NOT_FOUND)
  })

  test('usage of an active snapshot measures its upper dir; a committed one keeps what was measured at commit', async () => {
    const mounts = await client.prepare('u-key')
    const upper = mounts[0]!.source
    writeFileSync(join(upper, 'big'), Buffer.alloc(256 * 1024, 1))
    mkdirSync(join(upper, 'dir'))
    const usage = await client.usage('u-key')
    assert.ok(usage.size >= 256 * 1024, `size ${usage.size} counts the 256 KiB file`)
    assert.equal(Number(usage.inodes), 3, 'the fs dir, the file and the dir')
    await client.commit('u-name', 'u-key')
    writeFileSync(join(upper, 'after-commit'), Buffer.alloc(512 * 1024, 1))
    const committed = await client.usage('u-name')
    assert.equal(Number(committed.size), Number(usage.size))
    assert.equal(Number(committed.inodes), 3)
  })

  test('update replaces all labels, or edits one by field path; other fields are refused', async () => {
    await layer('up-name', '')
    let info = await client.update('up-name', {a: '1', b: '2'}, [])
    assert.deepEqual(info.labels, {a: '1', b: '2'})
    info = await client.update('up-name', {b: '20', c: '3'}, ['labels.b'])
    assert.deepEqual(info.labels, {a: '1', b: '20'})
    info = await client.update('up-name', {}, ['labels.a'])
    assert.deepEqual(info.labels, {b: '20'})
    assert.deepEqual((await client.stat('up-name')).labels, {b: '20'})
    assert.equal((await grpcCode(client.update('up-name', {}, ['parent']))).code, grpc.status.INVALID_ARGUMENT)
    assert.equal((await grpcCode(client.update('up-missing', {}, []))).code, grpc.status.NOT_FOUND)
  })

  test('remove deletes the record and the directory', async () => {
    const mounts = await client.prepare('rm-key')
    const dir = join(mounts[0]!.source, '..')
    assert.ok(existsSync(dir))
    await client.remove('rm-key')
    assert.equal(existsSync(dir), false)
    assert.equal((await grpcCode(client.stat('rm-key'))).code, grpc.status.NOT_FOUND)
    assert.equal((await grpcCode(client.remove('rm-key'))).code, grpc.status.NOT_FOUND)
  })

  test('cleanup removes directories that no snapshot owns', async () => {
    const orphan = join(snapshotsDir(), '999999')
    mkdirSync(join(orphan, 'fs'), {recursive: true})
    const interrupted = join(snapshotsDir(), 'new-interrupted')
    mkdirSync(interrupted)
    const kept = (await client.prepare('cl-key'))[0]!.source
    await client.cleanup()
    assert.equal(existsSync(orphan), false)
    assert.equal(existsSync(interrupted), false)
    assert.ok(existsSync(kept), "a live snapshot's dir stays")
  })
})

describe('errors as containerd maps them', () => {
  test('preparing an existing key is ALREADY_EXISTS', async () => {
    await client.prepare('e-dup')
    assert.equal((await grpcCode(client.prepare('e-dup'))).code, grpc.status.ALREADY_EXISTS)
    assert.equal((await grpcCode(client.view('e-dup'))).code, grpc.status.ALREADY_EXISTS)
  })

  test('a missing parent is NOT_FOUND and creates nothing', async () => {
    const before = readdirSync(snapshotsDir()).length
    assert.equal((await grpcCode(client.prepare('e-orphan', 'e-no-such-parent'))).code, grpc.status.NOT_FOUND)
    assert.equal((await grpcCode(client.stat('e-orphan'))).code, grpc.status.NOT_FOUND)
    assert.equal(readdirSync(snapshotsDir()).length, before, 'no directory left behind')
  })

  test('a parent that is not committed is FAILED_PRECONDITION', async () => {
    await client.prepare('e-active-parent')
    assert.equal((await grpcCode(client.prepare('e-child', 'e-active-parent'))).code, grpc.status.FAILED_PRECONDITION)
  })

  test('removing a snapshot with children is FAILED_PRECONDITION; removing the child first works', async () => {
    await layer('e-p', '')
    await client.prepare('e-c', 'e-p')
    const refused = await grpcCode(client.remove('e-p'))
    assert.equal(refused.code, grpc.status.FAILED_PRECONDITION)
    assert.equal((await client.stat('e-p')).kind, 'COMMITTED', 'the parent is still there')
    await client.remove('e-c')
    await client.remove('e-p')
    assert.equal((await grpcCode(client.stat('e-p'))).code, grpc.status.NOT_FOUND)
  })

  test('committing a view or an existing name, and Mounts of a committed snapshot, are refused', async () => {
    await layer('e-base', '')
    await client.view('e-view', 'e-base')
    assert.equal((await grpcCode(client.commit('e-view-c', 'e-view'))).code, grpc.status.FAILED_PRECONDITION)
    await client.prepare('e-act')
    assert.equal((await grpcCode(client.commit('e-base', 'e-act'))).code, grpc.status.ALREADY_EXISTS)
    assert.equal((await grpcCode(client.commit('e-new', 'e-no-key'))).code, grpc.status.NOT_FOUND)
    assert.equal((await grpcCode(client.mounts('e-base'))).code, grpc.status.FAILED_PRECONDITION)
    assert.equal((await grpcCode(client.mounts('e-missing'))).code, grpc.status.NOT_FOUND)
    assert.equal((await grpcCode(client.usage('e-missing'))).code, grpc.status.NOT_FOUND)
  })
})

describe('remote-snapshot requests', () => {
  const remoteLabels = (target: string): Record<string, string> => ({
    'containerd.io/snapshot.ref': target,
    'containerd.io/snapshot/remote/stargz.reference': '127.0.0.1:1/never/contacted:1',
    'containerd.io/snapshot/remote/stargz.digest': `sha256:${'5'.repeat(64)}`,
    'containerd.io/snapshot/stargz/toc.digest': `sha256:${'6'.repeat(64)}`,
  })

  test('a target that already exists on the same parent answers ALREADY_EXISTS at once and leaves no active snapshot', async () => {
    await layer('rt-parent', '')
    await client.prepare('rt-k', 'rt-parent')
    await client.commit('sha256:rt-target', 'rt-k')
    const dirsBefore = readdirSync(snapshotsDir()).length
    const answer = await grpcCode(client.prepare('extract-1 sha256:rt-target', 'rt-parent', remoteLabels('sha256:rt-target')))
    assert.equal(answer.code, grpc.status.ALREADY_EXISTS)
    assert.match(answer.details, /target snapshot "sha256:rt-target": already exists/)
    assert.equal((await grpcCode(client.stat('extract-1 sha256:rt-target'))).code, grpc.status.NOT_FOUND)
    assert.equal(readdirSync(snapshotsDir()).length, dirsBefore)
  })

  test('an unreachable registry falls back to a normal active snapshot and logs the reason', async () => {
    const key = 'extract-2 sha256:rt-unreachable'
    const mounts = await client.prepare(key, '', remoteLabels('sha256:rt-unreachable'))
    assert.equal(mounts[0]!.type, 'bind')
    assert.equal((await client.stat(key)).kind, 'ACTIVE')
    const line = await daemon.waitForLog('the fallback line', (l) => l.key === key && l.level === 'warn')
    assert.equal(line['remote-snapshot-prepared'], false)
    assert.match(String(line.reason), /127\.0\.0\.1:1|connect|ECONNREFUSED|unreachable/i)
  })
})

describe('list', () => {
  test('streams every snapshot with its kind and parent', async () => {
    await layer('l-a', '')
    await client.prepare('l-b', 'l-a')
    await client.view('l-v', 'l-a')
    const all = await client.list()
    const byName = new Map(all.map((info) => [info.name, info]))
    assert.equal(byName.get('l-a')?.kind, 'COMMITTED')
    assert.equal(byName.get('l-b')?.kind, 'ACTIVE')
    assert.equal(byName.get('l-b')?.parent, 'l-a')
    assert.equal(byName.get('l-v')?.kind, 'VIEW')
  })

  test("honours containerd's filters, including the lookup containerd makes after a remote ALREADY_EXISTS", async () => {
    await layer('f-p', '')
    await client.prepare('f-k', 'f-p')
    await client.commit('f-target', 'f-k', {'containerd.io/snapshot.ref': 'sha256:abc', 'containerd.io/snapshot/x': 'y'})
    const lookup = await client.list(['labels."containerd.io/snapshot.ref"==sha256:abc,parent=="f-p"'])
    assert.deepEqual(lookup.map((i) => i.name), ['f-target'])
    assert.deepEqual((await client.list(['labels."containerd.io/snapshot.ref"==sha256:abc,parent=="other"'])).map((i) => i.name), [])
    const committedNames = (await client.list(['kind==committed'])).map((i) => i.name)
    assert.ok(committedNames.includes('f-target') && committedNames.includes('f-p'))
    assert.ok(!(await client.list(['kind==active'])).some((i) => i.kind !== 'ACTIVE'))
    // Separate filters are alternatives; a regex matches names.
    assert.deepEqual((await client.list(['name==f-p', 'name==f-target'])).map((i) => i.name).sort(), ['f-p', 'f-target'])
    assert.deepEqual((await client.list(['name~=^f-t'])).map((i) => i.name), ['f-target'])
    assert.equal((await grpcCode(client.list(['name==']))).code, grpc.status.INVALID_ARGUMENT, 'a selector without a value is a bad filter')
  })
})

describe('lazyctl snapshotter status', () => {
  test('shows that the daemon answers and the snapshots it holds, as a table and as JSON', async () => {
    await layer('st-layer', '')
    const human = await runCli(['snapshotter', 'status', '--snapshotter-socket', daemon.socket])
    assert.equal(human.status, 0, human.stderr)
    assert.match(human.stdout, new RegExp(`answering at ${daemon.socket}`))
    assert.match(human.stdout, /^\d+\s+committed\s+local\s+st-layer\s+-$/m)
    const json = await runCli(['snapshotter', 'status', '--format', 'json'], {env: {LAZYCTL_SNAPSHOTTER_SOCKET: daemon.socket}})
    assert.equal(json.status, 0, json.stderr)
    const status = JSON.parse(json.stdout) as SnapshotterStatus
    const listed = await client.list()
    assert.deepEqual(status.snapshots.map((s) => s.name).sort(), listed.map((i) => i.name).sort())
    assert.equal(status.socket, daemon.socket)
  })

  test('says when no snapshotter answers, with its own exit status', async () => {
    const socket = join(daemon.dir, 'nobody-here.sock')
    const result = await runCli(['snapshotter', 'status', '--snapshotter-socket', socket])
    assert.equal(result.status, 40)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, new RegExp(`^lazyctl: no snapshotter answers at ${socket}: no such socket \\(socket from --snapshotter-socket\\)\\nhint: `))
    const viaEnv = await runCli(['snapshotter', 'status'], {env: {LAZYCTL_SNAPSHOTTER_SOCKET: socket}})
    assert.equal(viaEnv.status, 40)
    assert.match(viaEnv.stderr, /\(socket from LAZYCTL_SNAPSHOTTER_SOCKET\)/)
  })
})
