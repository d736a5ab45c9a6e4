// stop, kill and wait on a real containerd: the stop signal, then SIGKILL after -t; the exit code
// kept on the record (ps, wait); a signal of the user's choosing; clear errors for a container that
// is not running or a signal that does not exist.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {ERROR_CODES} from '../../src/cli/errors.js'
import {netnsNameFor} from '../../src/network/attach.js'
import {errorLines, startRunWorld, type RunWorld} from './fixture.js'

let world: RunWorld
let image: string

before(async () => {
  world = await startRunWorld()
  image = await world.pushBusybox('lifecycle:v1')
  const pulled = await world.cli(['pull', image])
  assert.equal(pulled.status, 0, pulled.stderr)
})
after(async () => {
  await world?.stop()
})

/** Starts a detached container and waits until it has printed `ready` (its signal handler is set). */
async function startReady(name: string, script: string): Promise<string> {
  const started = await world.cli(['run', '-d', '--name', name, image, 'sh', '-c', `${script}; echo ready; while :; do sleep 0.1; done`])
  assert.equal(started.status, 0, started.stderr)
  for (;;) {
    const logs = await world.cli(['logs', name])
    if (logs.stdout.includes('ready')) return started.stdout.trim()
  }
}

describe('stop, kill, wait', () => {
  test('stop sends the stop signal: a container that handles it exits with its own code, recorded for ps and wait; its network is given back', async () => {
    const id = await startReady('graceful', 'trap "exit 7" TERM')
    assert.ok(existsSync(`/run/netns/${netnsNameFor(id)}`), 'on the bridge while it runs')
    const stopped = await world.cli(['stop', '-t', '30', 'graceful'])
    assert.equal(stopped.status, 0, stopped.stderr)
    assert.equal((await world.cli(['wait', 'graceful'])).stdout, '7\n')
    assert.match((await world.cli(['ps', '-a'])).stdout, /Exited \(7\)\s+graceful/)
    assert.equal(existsSync(`/run/netns/${netnsNameFor(id)}`), false)
    assert.equal((await world.cli(['stop', 'graceful'])).status, 0, 'stopping a stopped container is not an error')
    assert.equal((await world.cli(['rm', 'graceful'])).status, 0)
  })

  test('stop kills (137) a container that ignores the signal once -t has passed', async () => {
    // PID 1 without a handler ignores SIGTERM.
    const started = await world.cli(['run', '-d', '--name', 'stubborn', image, 'sleep', '600'])
    assert.equal(started.status, 0, started.stderr)
    const stopped = await world.cli(['stop', '-t', '1', 'stubborn'])
    assert.equal(stopped.status, 0, stopped.stderr)
    assert.equal((await world.cli(['wait', 'stubborn'])).stdout, '137\n')
    assert.equal((await world.cli(['rm', 'stubborn'])).status, 0)
  })

  test('kill -s sends the signal named; wait returns the exit code it led to', async () => {
    await startReady('signalled', 'trap "exit 9" USR1')
    const waiting = world.cli(['wait', 'signalled'])
    const killed = await world.cli(['kill', '-s', 'USR1', 'signalled'])
    assert.equal(killed.status, 0, killed.stderr)
    assert.equal((await waiting).stdout, '9\n')
    const again = await world.cli(['kill', 'signalled'])
    assert.equal(again.status, ERROR_CODES.CONTAINER_NOT_RUNNING, again.stderr)
    assert.equal(errorLines(again.stderr).length, 1, again.stderr)
    assert.match(again.stderr, /container signalled is not running/)
    assert.equal((await world.cli(['rm', 'signalled'])).status, 0)
  })

  test('run -d --rm: the container is removed (record, rootfs, state, network) once it exits', async () => {
    const started = await world.cli(['run', '-d', '--rm', '--name', 'auto-removed', image, 'sh', '-c', 'echo bye'])
    assert.equal(started.status, 0, started.stderr)
    const id = started.stdout.trim()
    // Removal runs in the background after the exit; the test's timeout bounds the wait.
    while ((await world.cli(['ps', '-a', '-q'])).stdout.includes(id.slice(0, 12))) await new Promise((resolve) => setImmediate(resolve))
    assert.equal(existsSync(`/run/netns/${netnsNameFor(id)}`), false)
    assert.equal(world.containerd.ctr(['snapshots', '--snapshotter', 'overlayfs', 'ls']).includes(id), false, 'its rootfs snapshot is gone')
  })

  test('rm of several containers removes every one it can and reports the one it cannot', async () => {
    const started = await world.cli(['run', '-d', '--name', 'removable', image, 'sleep', '600'])
    assert.equal(started.status, 0, started.stderr)
    const res = await world.cli(['rm', '-f', 'no-such-container', 'removable'])
    assert.equal(res.status, ERROR_CODES.CONTAINER_NOT_FOUND, res.stderr)
    assert.equal(res.stdout, 'removable\n')
    assert.doesNotMatch((await world.cli(['ps', '-a'])).stdout, /removable/)
  })

  test('a signal that does not exist and a container that does not exist are refused', async () => {
    const bad = await world.cli(['kill', '-s', 'SIGBANANA', 'whatever'])
    assert.equal(bad.status, ERROR_CODES.USAGE, bad.stderr)
    assert.match(bad.stderr, /invalid signal "SIGBANANA"/)
    const missing = await world.cli(['stop', 'no-such-container'])
    assert.equal(missing.status, ERROR_CODES.CONTAINER_NOT_FOUND, missing.stderr)
  })
})
