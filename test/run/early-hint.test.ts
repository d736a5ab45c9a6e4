// Which command lines name their image to the snapshotter before the CLI loads (src/run/early-hint.ts),
// parsed with the flag definitions of the committed oclif.manifest.json, as bin/run.js does.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {PACKAGE_ROOT} from '../../src/paths.js'
import {earlyHintFor} from '../../src/run/early-hint.js'

const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, {flags: Record<string, {type: string; char?: string}>}>}
const SOCKET = '/run/test-early-hint.sock'
// The socket from the environment, so the machine's /etc/lazyctl/config.toml plays no part.
const env = {LAZYCTL_SNAPSHOTTER_SOCKET: SOCKET, LAZYCTL_CONFIG: ''}
const hint = (argv: string[], extraEnv: Record<string, string> = {}) => earlyHintFor(argv, manifest.commands[argv[0]!]?.flags ?? {}, {...env, ...extraEnv})

test('run and pull name their image, found past flags and their values; what follows the image is the container\'s', () => {
  assert.deepEqual(hint(['run', '--rm', '-e', 'A=B', '--name', 'web', '-v', '/a:/b', 'reg.example/app:v1', 'sh', '--snapshotter', 'overlayfs']), {socket: SOCKET, request: {image: 'reg.example/app:v1'}})
  assert.deepEqual(hint(['run', '-it', '--net', 'none', '--env=X=1', 'app:v2']), {socket: SOCKET, request: {image: 'app:v2'}})
  assert.deepEqual(hint(['pull', 'reg.example/app:v1']), {socket: SOCKET, request: {image: 'reg.example/app:v1'}})
  assert.deepEqual(hint(['run', '--platform', 'linux/arm64', 'app']), {socket: SOCKET, request: {image: 'app', platform: 'linux/arm64'}})
})

test('no hint where no lazy pull can follow: a builtin snapshotter, --pull never, other commands, no image', () => {
  assert.equal(hint(['run', '--snapshotter', 'overlayfs', 'app', 'true']), undefined)
  assert.equal(hint(['run', '--snapshotter=native', 'app']), undefined)
  assert.equal(hint(['run', 'app'], {CONTAINERD_SNAPSHOTTER: 'overlayfs'}), undefined, 'the snapshotter from the environment')
  assert.equal(hint(['run', '--pull', 'never', 'app']), undefined)
  assert.equal(hint(['ps', '-a']), undefined)
  assert.equal(hint(['run', '--rm']), undefined)
  assert.equal(hint([]), undefined)
})
