// Authentication end to end with the real CLI: Basic over TLS (htpasswd, the rig's CA through a
// certs.d hosts dir) and Bearer tokens from the rig's token server.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {copyFileSync, existsSync, mkdirSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {writeOciArchive} from '../rig/images.js'
import {runCli} from '../rig/cli.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

function hostsDirFor(registry: RegistryRig, base: string): string {
  const dir = join(base, 'certs.d')
  mkdirSync(join(dir, registry.host), {recursive: true})
  copyFileSync(registry.caFile!, join(dir, registry.host, 'ca.crt'))
  return dir
}

async function smallArchive(dir: string): Promise<string> {
  const file = join(dir, 'img.tar')
  await writeOciArchive(file, {layers: [{files: [{path: 'hello.txt', content: 'hello\n'}]}, {files: [{path: 'data', random: {size: 300_000, seed: 'auth'}}]}]})
  return file
}

describe('Basic auth over TLS (htpasswd, rig CA)', () => {
  let registry: RegistryRig
  let work: string
  let hostsDir: string
  let archive: string
  let env: NodeJS.ProcessEnv

  before(async () => {
    registry = await startRegistry({auth: 'htpasswd', tls: true})
    work = rigTempDir('auth-basic')
    hostsDir = hostsDirFor(registry, work)
    archive = await smallArchive(work)
    env = {DOCKER_CONFIG: join(work, 'docker'), HOME: work}
  })
  after(async () => {
    await registry?.stop()
    if (work) removeDir(work)
  })

  const cli = (args: string[], input?: string) => runCli([...args, '--hosts-dir', hostsDir], {env, ...(input !== undefined ? {input} : {})})

  test('push fails with a login hint before login, wrong password is refused and nothing saved, push works after login', async () => {
    const before = await cli(['push', `oci-archive:${archive}`, `docker://${registry.host}/basic/app:v1`])
    assert.equal(before.status, 22, before.stderr)
    assert.match(before.stderr, new RegExp(`^lazyctl: ${registry.host} requires authentication`, 'm'))
    assert.match(before.stderr, new RegExp(`^hint: log in first: lazyctl login ${registry.host}$`, 'm'))

    const wrong = await cli(['login', '-u', registry.username!, '--password-stdin', registry.host], 'not-the-password\n')
    assert.equal(wrong.status, 23, wrong.stderr)
    assert.match(wrong.stderr, /rejected the credentials/)
    assert.ok(!wrong.stderr.includes('not-the-password') && !wrong.stdout.includes('not-the-password'), 'no secret echoed')
    assert.equal(existsSync(join(work, 'docker', 'config.json')), false, 'nothing saved')

    const ok = await cli(['login', '-u', registry.username!, '--password-stdin', registry.host], `${registry.password}\n`)
    assert.equal(ok.status, 0, ok.stderr)
    const configFile = join(work, 'docker', 'config.json')
    assert.equal(statSync(configFile).mode & 0o777, 0o600)
    const config = JSON.parse(readFileSync(configFile, 'utf8')) as {auths: Record<string, {auth: string}>}
    assert.equal(Buffer.from(config.auths[registry.host]!.auth, 'base64').toString(), `${registry.username}:${registry.password}`)
    assert.ok(!ok.stdout.includes(registry.password!) && !ok.stderr.includes(registry.password!))

    const push = await cli(['push', '-q', `oci-archive:${archive}`, `docker://${registry.host}/basic/app:v1`])
    assert.equal(push.status, 0, push.stderr)
    assert.match(push.stdout.trim(), /^sha256:[0-9a-f]{64}$/)

    const out = await runCli(['logout', registry.host], {env})
    assert.equal(out.status, 0, out.stderr)
    assert.deepEqual((JSON.parse(readFileSync(configFile, 'utf8')) as {auths: object}).auths, {})
    const again = await cli(['push', `oci-archive:${archive}`, `docker://${registry.host}/basic/app:v2`])
    assert.equal(again.status, 22, again.stderr)
  })

  test('a stored wrong password gives AUTH_FAILED without printing it', async () => {
    const secret = 'stale-password-123'
    const dir = join(work, 'stale')
    mkdirSync(dir, {recursive: true})
    const {writeFileSync} = await import('node:fs')
    writeFileSync(join(dir, 'config.json'), JSON.stringify({auths: {[registry.host]: {auth: Buffer.from(`${registry.username}:${secret}`).toString('base64')}}}))
    const res = await runCli(['push', `oci-archive:${archive}`, `docker://${registry.host}/basic/app:v3`, '--hosts-dir', hostsDir], {env: {DOCKER_CONFIG: dir, HOME: work}})
    assert.equal(res.status, 23, res.stderr)
    assert.ok(!(res.stderr + res.stdout).includes(secret))
    assert.ok(!(res.stderr + res.stdout).includes(Buffer.from(`${registry.username}:${secret}`).toString('base64')))
  })

  test('an untrusted CA is a TLS error with a hint, not a fallback to plain HTTP', async () => {
    const res = await runCli(['push', `oci-archive:${archive}`, `docker://${registry.host}/basic/app:v1`, '--hosts-dir', join(work, 'empty-hosts')], {env})
    assert.equal(res.status, 28, res.stderr)
    assert.match(res.stderr, /^lazyctl: 127\.0\.0\.1:\d+ speaks HTTPS/m)
    assert.match(res.stderr, /^hint: .*ca\.crt/m)
  })
})

describe('Bearer token auth (rig token server)', () => {
  let registry: RegistryRig
  let work: string
  let archive: string
  let env: NodeJS.ProcessEnv

  before(async () => {
    registry = await startRegistry({auth: 'token', tls: false})
    work = rigTempDir('auth-token')
    archive = await smallArchive(work)
    env = {DOCKER_CONFIG: join(work, 'docker'), HOME: work}
  })
  after(async () => {
    await registry?.stop()
    if (work) removeDir(work)
  })

  test('login, push, pull and mount through the token endpoint, one token per scope set reused across requests', async () => {
    const token = registry.tokenServer!
    const denied = await runCli(['push', `oci-archive:${archive}`, `docker://${registry.host}/tok/app:v1`], {env})
    assert.equal(denied.status, 22, denied.stderr)

    const wrong = await runCli(['login', '-u', registry.username!, '-p', 'nope', registry.host], {env})
    assert.equal(wrong.status, 23, wrong.stderr)
    const login = await runCli(['login', '-u', registry.username!, '--password-stdin', registry.host], {env, input: registry.password!})
    assert.equal(login.status, 0, login.stderr)

    let issued = token.tokensIssued
    let mark = (await registry.requests()).length
    const push = await runCli(['push', '-q', `oci-archive:${archive}`, `docker://${registry.host}/tok/app:v1`], {env})
    assert.equal(push.status, 0, push.stderr)
    const pushRequests = (await registry.requests()).slice(mark).filter((r) => r.status !== 401)
    assert.ok(pushRequests.length >= 8, `push made ${pushRequests.length} authorised requests`)
    assert.equal(token.tokensIssued - issued, 1, 'one token served the whole push')

    issued = token.tokensIssued
    mark = (await registry.requests()).length
    const pulled = join(work, 'pulled')
    const pull = await runCli(['convert', '-q', `docker://${registry.host}/tok/app:v1`, `oci:${pulled}:v1`], {env})
    assert.equal(pull.status, 0, pull.stderr)
    assert.equal(token.tokensIssued - issued, 1, 'one token served the whole pull')
    assert.ok((await registry.requests()).slice(mark).filter((r) => r.kind === 'blob' && r.status === 200).length >= 3)

    issued = token.tokensIssued
    mark = (await registry.requests()).length
    const copy = await runCli(['push', `docker://${registry.host}/tok/app:v1`, `docker://${registry.host}/tok/copy:v1`], {env})
    assert.equal(copy.status, 0, copy.stderr)
    const mounts = (await registry.requests()).slice(mark).filter((r) => r.kind === 'upload' && r.method === 'POST' && r.status === 201)
    assert.equal(mounts.length, 3, 'two layers and the config mounted with a token covering both repositories')
    assert.ok(token.tokensIssued - issued <= 3, `tokens for source pull, destination push and the mount: ${token.tokensIssued - issued}`)
    assert.equal(push.stdout.trim(), copy.stdout.trim().split('\n').at(-1))
  })
})
