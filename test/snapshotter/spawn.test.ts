// ensureSnapshotter as `lazyctl run` uses it: spawn when nothing answers, reuse when something does.
import {after, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as delay} from 'node:timers/promises'
import {isLazyError} from '../../src/cli/errors.js'
import {ensureSnapshotter} from '../../src/snapshotter/spawn.js'
import {probeSnapshotter, querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {unmountUnder} from '../rig/containerd.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

const dir = rigTempDir('snapshotter-spawn')
const spawnedPids: number[] = []

after(async () => {
  for (const pid of spawnedPids) await stopDetached(pid)
  unmountUnder(dir)
  removeDir(dir)
})

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** SIGTERM to the detached daemon's group, then wait for it to be gone (SIGKILL after 10 s). */
async function stopDetached(pid: number): Promise<void> {
  try {
    process.kill(-pid, 'SIGTERM')
  } catch {
    return
  }
  const deadline = Date.now() + 10_000
  // Not our child (detached, unref'd): polling the pid is the only exit signal we have.
  while (alive(pid) && Date.now() < deadline) await delay(50)
  if (alive(pid)) process.kill(-pid, 'SIGKILL')
}

test('spawns a detached snapshotter when nothing answers, and reuses it on the next call', async () => {
  const socket = join(dir, 'spawned.sock')
  const logFile = join(dir, 'logs', 'snapshotter.log')
  const config = join(dir, 'config.toml')
  writeFileSync(config, 'log_level = "debug"\n')
  assert.equal((await probeSnapshotter(socket)).state, 'absent')

  const first = await ensureSnapshotter({socket, root: join(dir, 'root'), config, logFile})
  assert.equal(first.spawned, true)
  assert.ok(first.pid && alive(first.pid))
  spawnedPids.push(first.pid)
  const status = await querySnapshotterStatus(socket)
  assert.equal(status.pid, first.pid)
  assert.equal(status.root, join(dir, 'root'))
  const serving = readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as {msg: string; socket?: string})
  assert.ok(serving.some((l) => l.msg === 'serving' && l.socket === socket), 'the daemon logs JSON to the file')

  const second = await ensureSnapshotter({socket, root: join(dir, 'root'), config, logFile})
  assert.equal(second.spawned, false)
  assert.equal((await querySnapshotterStatus(socket)).pid, first.pid, 'the same daemon serves')
})

test('onAnswering comes as soon as the daemon answers, before the readiness check passes', async () => {
  const socket = join(dir, 'answering.sock')
  const events: string[] = []
  let checks = 0
  let answeredStatus: Promise<unknown> | undefined
  const result = await ensureSnapshotter({
    socket,
    root: join(dir, 'answering-root'),
    logFile: join(dir, 'answering.log'),
    onAnswering: () => {
      events.push('answering')
      // The daemon's own RPCs work from here on (what ResolveAhead hints rely on).
      answeredStatus = querySnapshotterStatus(socket)
    },
    // Stands in for containerd's reachability probe: fails twice (as while containerd's dial backs off).
    readyCheck: async () => {
      events.push(`check ${++checks}`)
      return checks >= 3
    },
  })
  assert.ok(result.pid)
  spawnedPids.push(result.pid)
  assert.deepEqual(events, ['answering', 'check 1', 'check 2', 'check 3'])
  assert.equal(((await answeredStatus) as {pid: number}).pid, result.pid)
  // Already running: still told before the check.
  events.length = 0
  checks = 2
  const again = await ensureSnapshotter({socket, onAnswering: () => events.push('answering'), readyCheck: async () => (events.push('check'), true)})
  assert.equal(again.spawned, false)
  assert.deepEqual(events, ['answering', 'check'])
})

test('a snapshotter that cannot start is reported with its own error, not a timeout', async () => {
  const socket = join(dir, 'broken.sock')
  const config = join(dir, 'broken.toml')
  writeFileSync(config, 'log_level = "loud"\n')
  const err = await ensureSnapshotter({socket, root: join(dir, 'broken-root'), config, logFile: join(dir, 'broken.log'), timeoutMs: 20_000}).then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e,
  )
  assert.ok(isLazyError(err, 'SNAPSHOTTER_UNREACHABLE'))
  assert.match(err.message, /log_level must be debug, info, warn or error/)
  assert.match(err.hint ?? '', /broken\.log/)
})

test('a second daemon on the same root refuses to start', async () => {
  const root = join(dir, 'shared-root')
  const first = await ensureSnapshotter({socket: join(dir, 'a.sock'), root, logFile: join(dir, 'a.log')})
  assert.equal(first.spawned, true)
  spawnedPids.push(first.pid!)
  const err = await ensureSnapshotter({socket: join(dir, 'b.sock'), root, logFile: join(dir, 'b.log'), timeoutMs: 20_000}).then(
    () => assert.fail('expected a failure'),
    (e: unknown) => e,
  )
  assert.ok(isLazyError(err, 'SNAPSHOTTER_UNREACHABLE'))
  assert.match(err.message, new RegExp(`pid ${first.pid}\\) already uses this root`))
})
