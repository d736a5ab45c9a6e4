// Global flags before the command, as nerdctl, ctr and docker take them: moved after the command's
// name (before its arguments), dropped where the command has no such flag, and anything else
// before the command left to oclif. The unit cases run on the real manifest; the CLI cases on a
// real containerd.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {hoistGlobalFlags} from '../../src/cli/global-flags.js'
import {cliManifest} from '../../src/cli/manifest.js'
import {runCli} from '../rig/cli.js'
import {startRunWorld, type RunWorld} from '../run/fixture.js'

describe('hoisting global flags (oclif.manifest.json)', () => {
  const hoist = (argv: string[]) => hoistGlobalFlags(argv, cliManifest().commands)

  test('moves -a/-n/--namespace=…/-nNS after the command words, before the arguments', () => {
    assert.deepEqual(hoist(['-a', '/run/c.sock', '-n', 'k8s.io', 'ps']), ['ps', '--address', '/run/c.sock', '--namespace', 'k8s.io'])
    assert.deepEqual(hoist(['--namespace=k8s.io', 'run', '--rm', 'img', 'echo', '-n', 'x']), ['run', '--namespace=k8s.io', '--rm', 'img', 'echo', '-n', 'x'])
    assert.deepEqual(hoist(['-nk8s.io', 'snapshotter', 'status']), ['snapshotter', 'status'], 'snapshotter status has no --namespace: dropped')
    assert.deepEqual(hoist(['--snapshotter-socket', '/s.sock', 'snapshotter', 'status']), ['snapshotter', 'status', '--snapshotter-socket', '/s.sock'])
  })

  test('leaves lines alone that do not start with global flags or name no command', () => {
    for (const argv of [['ps', '-n', 'x'], ['--help'], ['-n', 'x', '--help', 'ps'], ['-n', 'x', 'no-such-command'], ['-n']]) assert.deepEqual(hoist(argv), argv)
  })
})

describe('global flags before the command, end to end', () => {
  let world: RunWorld
  let image: string
  before(async () => {
    world = await startRunWorld()
    image = await world.pushBusybox('global:v1')
  })
  after(async () => {
    await world?.stop()
  })

  const cli = (args: string[]) => runCli(args, {env: world.cliEnv})

  test('`lazyctl -a SOCK -n NS run …` (the lean path) and `lazyctl -a SOCK -n NS ps` work as with the flags after the command', async () => {
    const {address, namespace} = world.containerd
    const ran = await cli(['-a', address, '-n', namespace, 'run', '--name', 'hoisted', '--network', 'none', image, 'echo', 'hi', '-n'])
    assert.equal(ran.status, 0, ran.stderr)
    assert.equal(ran.stdout, 'hi -n\n')
    const first = await cli(['-a', address, '-n', namespace, 'ps', '-a'])
    const after = await cli(['ps', '-a', '--address', address, '-n', namespace])
    assert.equal(first.status, 0, first.stderr)
    assert.equal(first.stdout, after.stdout)
    assert.match(first.stdout, /hoisted/)
    const other = await cli(['-a', address, '-n', 'another-namespace', 'ps', '-a'])
    assert.doesNotMatch(other.stdout, /hoisted/, 'the namespace given first is the one used')
    assert.equal((await cli(['-a', address, '-n', namespace, 'rm', 'hoisted'])).status, 0)
  })
})
