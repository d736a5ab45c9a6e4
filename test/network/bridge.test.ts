// The bridge network, with Debian's real CNI plugins, real network namespaces and iptables: a
// published port answers HTTP on the host, containers reach each other by address, a taken or
// malformed port is refused with nothing left, and after rm no namespace, veth, iptables rule or
// IP allocation of the container remains.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, readdirSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {join} from 'node:path'
import {ERROR_CODES} from '../../src/cli/errors.js'
import {BRIDGE_INTERFACE, IPAM_DIR} from '../../src/network/bridge.js'
import {netnsNameFor} from '../../src/network/attach.js'
import {allContainerStateDirs} from '../../src/run/state.js'
import {requireCommand} from '../rig/process.js'
import {freePort} from '../rig/ports.js'
import {errorLines, startRunWorld, type RunWorld} from '../run/fixture.js'

let world: RunWorld
let image: string

before(async () => {
  requireCommand('iptables', 'iptables')
  world = await startRunWorld()
  image = await world.pushBusybox('web:v1', {layers: [{files: [{path: 'www/index.html', content: 'served from the bridge\n'}]}]})
  const pulled = await world.cli(['pull', image])
  assert.equal(pulled.status, 0, pulled.stderr)
})
after(async () => {
  await world?.stop()
})

/** What a container's network leaves on the host, by container ID (or its first 12 characters). */
function traces(id: string): {netns: boolean; iptables: string[]; ipam: string[]} {
  const netns = readdirSync('/run/netns').some((name) => name.startsWith(netnsNameFor(id).slice(0, 'lazyctl-'.length + 12)))
  const iptables = execFileSync('iptables-save', {encoding: 'utf8'}).split('\n').filter((line) => line.includes(id))
  const dir = join(IPAM_DIR, 'bridge')
  const ipam = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d/.test(f) && execFileSync('cat', [join(dir, f)], {encoding: 'utf8'}).includes(id)) : []
  return {netns, iptables, ipam}
}

/** The host end of the container's veth pair: on the bridge, with the index its eth0 names as peer. */
function hostVethOf(id: string): string {
  const peer = /eth0@if(\d+)/.exec(execFileSync('ip', ['-n', netnsNameFor(id), '-o', 'link', 'show', 'eth0'], {encoding: 'utf8'}))![1]!
  const line = vethsOnBridge().find((l) => l.startsWith(`${peer}: `))
  assert.ok(line, `the container's veth (index ${peer}) is on ${BRIDGE_INTERFACE}`)
  return /^\d+: ([^@:]+)/.exec(line)![1]!
}

function vethsOnBridge(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show', 'master', BRIDGE_INTERFACE], {encoding: 'utf8'}).split('\n').filter(Boolean)
}

/** The container's IPv4 address, as its namespace shows it. */
function addressOf(id: string): string {
  const out = execFileSync('ip', ['-n', netnsNameFor(id), '-4', '-o', 'addr', 'show', 'eth0'], {encoding: 'utf8'})
  return /inet (\d+\.\d+\.\d+\.\d+)\//.exec(out)![1]!
}

/** Polls until the URL answers (the server starts after `run -d` returns); the test's timeout bounds it. */
async function fetchWhenUp(url: string): Promise<string> {
  for (;;) {
    try {
      const res = await fetch(url)
      return await res.text()
    } catch {
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
}

describe('bridge network', () => {
  test('a published port answers on the host; another container reaches the server by its address; rm -f leaves nothing', {timeout: 60_000}, async () => {
    const hostPort = await freePort()
    const web = await world.cli(['run', '-d', '--name', 'web', '-p', `127.0.0.1:${hostPort}:8080`, image, 'httpd', '-f', '-p', '8080', '-h', '/www'])
    assert.equal(web.status, 0, web.stderr)
    const id = web.stdout.trim()
    assert.equal(await fetchWhenUp(`http://127.0.0.1:${hostPort}/index.html`), 'served from the bridge\n')

    const ip = addressOf(id)
    assert.match(ip, /^10\.4\.1\.\d+$/)
    const client = await world.cli(['run', '--rm', image, 'wget', '-q', '-O', '-', `http://${ip}:8080/index.html`])
    assert.equal(client.status, 0, client.stderr)
    assert.equal(client.stdout, 'served from the bridge\n')
    const hosts = await world.cli(['run', '--rm', image, 'sh', '-c', 'grep "$(hostname)" /etc/hosts'])
    assert.match(hosts.stdout, /^10\.4\.1\.\d+\t[0-9a-f]{12}$/m, 'its hostname names its bridge address')

    const veth = hostVethOf(id)
    const removed = await world.cli(['rm', '-f', 'web'])
    assert.equal(removed.status, 0, removed.stderr)
    assert.deepEqual(traces(id), {netns: false, iptables: [], ipam: []})
    assert.ok(!vethsOnBridge().some((l) => l.includes(` ${veth}@`)), `${veth} is gone`)
  })

  test('a host port something listens on is refused (PORT_IN_USE), with no container or namespace left', async () => {
    const server: Server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const taken = (server.address() as {port: number}).port
    try {
      const res = await world.cli(['run', '--rm', '-p', `127.0.0.1:${taken}:80`, image, 'true'])
      assert.equal(res.status, ERROR_CODES.PORT_IN_USE, res.stderr)
      assert.equal(errorLines(res.stderr).length, 1, res.stderr)
      assert.match(res.stderr, new RegExp(`cannot publish 127\\.0\\.0\\.1:${taken}/tcp: the port is already in use`))
      assert.equal((await world.cli(['ps', '-a', '-q'])).stdout.trim(), '')
      assert.deepEqual(allContainerStateDirs(world.dataRoot), [], 'no state (and so no network attachment) of the refused run is left')
    } finally {
      server.close()
    }
  })

  test('a port another lazyctl container publishes is refused too; a foreground run gives its address back when it exits', async () => {
    const hostPort = await freePort()
    const first = await world.cli(['run', '-d', '--name', 'holder', '-p', `${hostPort}:8080`, image, 'httpd', '-f', '-p', '8080', '-h', '/www'])
    assert.equal(first.status, 0, first.stderr)
    const second = await world.cli(['run', '--rm', '-p', `${hostPort}:9090`, image, 'true'])
    assert.equal(second.status, ERROR_CODES.PORT_IN_USE, second.stderr)
    assert.match(second.stderr, /publishes it already/)
    assert.equal((await world.cli(['rm', '-f', 'holder'])).status, 0)

    const kept = await world.cli(['run', '--name', 'kept', image, 'true'])
    assert.equal(kept.status, 0, kept.stderr)
    const id = (await world.cli(['ps', '-a', '-q'])).stdout.trim()
    assert.match(id, /^[0-9a-f]{12}$/)
    assert.deepEqual(traces(id), {netns: false, iptables: [], ipam: []}, 'an exited container holds no address')
    assert.equal((await world.cli(['rm', 'kept'])).status, 0)
  })
})
