// containerd's certs.d layout and --insecure-registry, against real registries: a mirror named in
// hosts.toml serves pulls, TLS trust comes from the hosts dir, and --insecure-registry skips it.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {pushImage, writeOciLayout} from '../rig/images.js'
import {runCli} from '../rig/cli.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {registryEndpoints} from '../../src/registry/hosts.js'

describe('hosts.toml and TLS settings', () => {
  let upstream: RegistryRig
  let mirror: RegistryRig
  let secure: RegistryRig
  let work: string
  let layout: string

  before(async () => {
    ;[upstream, mirror, secure] = await Promise.all([startRegistry(), startRegistry(), startRegistry({tls: true})])
    work = rigTempDir('hosts')
    layout = join(work, 'layout')
    await writeOciLayout(layout, {tag: 'v1', layers: [{files: [{path: 'where', content: 'mirror\n'}]}]})
  })
  after(async () => {
    await Promise.all([upstream?.stop(), mirror?.stop(), secure?.stop()])
    if (work) removeDir(work)
  })

  test('parses server, mirrors in order, capabilities, CA files and headers', () => {
    const dir = join(work, 'parse')
    mkdirSync(join(dir, 'registry.example'), {recursive: true})
    writeFileSync(join(dir, 'registry.example', 'my-ca.pem'), 'PEM')
    writeFileSync(join(dir, 'registry.example', 'hosts.toml'), [
      'server = "https://registry.example"',
      '[host."https://m1.example"]',
      '  capabilities = ["pull", "resolve"]',
      '  ca = "my-ca.pem"',
      '[host."http://m2.example:5000/prefix"]',
      '  capabilities = ["pull"]',
      '  override_path = true',
      '  [host."http://m2.example:5000/prefix".header]',
      '    x-custom = "yes"',
    ].join('\n'))
    const eps = registryEndpoints('registry.example', {hostsDir: dir})
    assert.deepEqual(eps.map((e) => [e.origin, e.apiPath, e.capabilities, e.upstream]), [
      ['https://m1.example', '/v2', ['pull', 'resolve'], false],
      ['http://m2.example:5000', '/prefix', ['pull'], false],
      ['https://registry.example', '/v2', ['pull', 'resolve', 'push'], true],
    ])
    assert.deepEqual(eps[0]!.ca, ['PEM'])
    assert.deepEqual(eps[1]!.headers, {'x-custom': 'yes'})
    assert.deepEqual(registryEndpoints('docker.io', {hostsDir: dir}).map((e) => e.origin), ['https://registry-1.docker.io'])
  })

  test('pulls through a mirror named in hosts.toml when the upstream lacks the image', async () => {
    await pushImage(layout, 'lib/app:v1', mirror, {sourceTag: 'v1'})
    const hostsDir = join(work, 'certs.d')
    mkdirSync(join(hostsDir, upstream.host), {recursive: true})
    writeFileSync(join(hostsDir, upstream.host, 'hosts.toml'), `server = "http://${upstream.host}"\n[host."http://${mirror.host}"]\n  capabilities = ["pull", "resolve"]\n`)
    const out = join(work, 'pulled')
    const res = await runCli(['convert', '-q', '--hosts-dir', hostsDir, `docker://${upstream.host}/lib/app:v1`, `oci:${out}:v1`])
    assert.equal(res.status, 0, res.stderr)
    assert.ok((await mirror.requests()).some((r) => r.kind === 'manifest' && r.repository === 'lib/app' && r.status === 200))
    assert.ok(!(await upstream.requests()).some((r) => r.repository === 'lib/app'), 'the upstream was not asked')
  })

  test('--insecure-registry reaches a TLS registry whose CA is unknown; without it, a TLS error', async () => {
    const strict = await runCli(['push', `oci:${layout}:v1`, `docker://${secure.host}/app:v1`, '--hosts-dir', join(work, 'none')])
    assert.equal(strict.status, 28, strict.stderr)
    const res = await runCli(['push', '-q', `oci:${layout}:v1`, `docker://${secure.host}/app:v1`, '--hosts-dir', join(work, 'none'), '--insecure-registry', secure.host])
    assert.equal(res.status, 0, res.stderr)
  })

  test('--insecure-registry falls back to plain HTTP when the registry does not speak TLS', async () => {
    const res = await runCli(['push', '-q', `oci:${layout}:v1`, `docker://${upstream.host}/plain:v1`, '--hosts-dir', join(work, 'none'), '--insecure-registry', upstream.host])
    assert.equal(res.status, 0, res.stderr)
    assert.ok((await upstream.requests()).some((r) => r.kind === 'manifest' && r.method === 'PUT' && r.repository === 'plain' && r.status === 201))
  })
})
