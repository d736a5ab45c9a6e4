import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {startContainerd, type ContainerdRig} from '../rig/containerd.js'
import {runCli} from '../rig/cli.js'
import {ERROR_CODES} from '../../src/cli/errors.js'

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {version: string}
let rig: ContainerdRig

before(async () => {
  rig = await startContainerd()
})
after(async () => {
  await rig?.stop()
})

test('version prints the client version and the version containerd reports over gRPC', async () => {
  const expected = rig.ctr(['version']).match(/Server:\s+Version:\s+(\S+)/)?.[1]
  assert.ok(expected, 'ctr version should report the server version')
  const res = await runCli(['version', '-a', rig.address])
  assert.equal(res.status, 0, res.stderr)
  assert.match(res.stdout, new RegExp(`Version:\\s+${pkg.version.replace(/\./g, '\\.')}`))
  assert.ok(res.stdout.includes(expected), `stdout should contain containerd's version ${expected}:\n${res.stdout}`)
})

test('version --format json carries both versions', async () => {
  const res = await runCli(['version', '--address', rig.address, '--format', 'json'])
  assert.equal(res.status, 0, res.stderr)
  const out = JSON.parse(res.stdout)
  assert.equal(out.client.version, pkg.version)
  assert.match(out.server.containerd.version, /^\d+\.\d+/)
})

test('CONTAINERD_ADDRESS selects the socket when no flag is given', async () => {
  const res = await runCli(['version'], {env: {CONTAINERD_ADDRESS: rig.address}})
  assert.equal(res.status, 0, res.stderr)
  assert.match(res.stdout, /containerd:/)
})

test('with a wrong socket, version prints the client version, then one error line, and fails', async () => {
  const res = await runCli(['version', '-a', '/nonexistent/containerd.sock'])
  assert.equal(res.status, ERROR_CODES.CONTAINERD_UNREACHABLE)
  assert.match(res.stdout, new RegExp(`Version:\\s+${pkg.version.replace(/\./g, '\\.')}`))
  const lines = res.stderr.trim().split('\n')
  assert.match(lines[0] ?? '', /^lazyctl: cannot reach containerd at \/nonexistent\/containerd\.sock/)
  assert.ok(lines.length <= 2, `expected one error line and at most a hint:\n${res.stderr}`)
})
