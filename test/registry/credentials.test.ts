// Where credentials come from: config.json auths (docker's encoding), credHelpers and credsStore
// through a real docker-credential-* program speaking the helper protocol, and login/logout
// storing through it.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {writeOciLayout} from '../rig/images.js'
import {runCli} from '../rig/cli.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {CredentialStore, dockerConfigLocators, envAuthConfigLocator} from '../../src/registry/credentials.js'

/** A credential helper as docker-credential-helpers defines it, storing one JSON file per server. */
function writeHelper(binDir: string, storeDir: string): void {
  mkdirSync(binDir, {recursive: true})
  mkdirSync(storeDir, {recursive: true})
  const script = `#!/bin/sh
set -e
key() { printf '%s' "$1" | sha256sum | cut -c1-16; }
case "$1" in
  get)
    url=$(cat)
    f="${storeDir}/$(key "$url").json"
    if [ -f "$f" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    json=$(cat)
    url=$(printf '%s' "$json" | sed -n 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/p')
    printf '%s' "$json" > "${storeDir}/$(key "$url").json" ;;
  erase)
    url=$(cat)
    f="${storeDir}/$(key "$url").json"
    if [ -f "$f" ]; then rm "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  *) exit 2 ;;
esac
`
  writeFileSync(join(binDir, 'docker-credential-rigstore'), script)
  chmodSync(join(binDir, 'docker-credential-rigstore'), 0o755)
}

describe('credential sources', () => {
  let work: string
  let bin: string
  let store: string
  let registry: RegistryRig
  let layout: string

  before(async () => {
    work = rigTempDir('creds')
    bin = join(work, 'bin')
    store = join(work, 'store')
    writeHelper(bin, store)
    process.env.PATH = `${bin}:${process.env.PATH}`
    registry = await startRegistry({auth: 'htpasswd'})
    layout = join(work, 'layout')
    await writeOciLayout(layout, {tag: 'v1', layers: [{files: [{path: 'x', content: 'x'}]}]})
  })
  after(async () => {
    await registry?.stop()
    if (work) removeDir(work)
  })

  test('reads auths (password with colons, Docker Hub key) and prefers credHelpers over auths', async () => {
    const dir = join(work, 'cfg1')
    mkdirSync(dir)
    const enc = (s: string): string => Buffer.from(s).toString('base64')
    writeFileSync(join(dir, 'config.json'), JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': {auth: enc('hubuser:pa:ss:word')},
        'helped.example': {auth: enc('stale:stale')},
        'https://token.example': {identitytoken: 'refresh-123'},
      },
      credHelpers: {'helped.example': 'rigstore'},
    }))
    writeFileSync(join(store, 'ignored'), '')
    const creds = new CredentialStore(dockerConfigLocators(join(dir, 'config.json')))
    assert.deepEqual(await creds.get('docker.io'), {username: 'hubuser', password: 'pa:ss:word'})
    assert.deepEqual(await creds.get('token.example'), {identityToken: 'refresh-123'})
    // The helper has nothing for helped.example yet: "not found" means no credential, and auths is next.
    assert.deepEqual(await creds.get('helped.example'), {username: 'stale', password: 'stale'})
    assert.equal(await creds.get('unknown.example'), undefined)
  })

  test('login stores through credsStore, pushes use it, logout erases it', async () => {
    const dir = join(work, 'cfg2')
    mkdirSync(dir)
    writeFileSync(join(dir, 'config.json'), JSON.stringify({credsStore: 'rigstore', currentContext: 'keep-me'}))
    const env = {DOCKER_CONFIG: dir, PATH: process.env.PATH!, HOME: work}
    const login = await runCli(['login', '-u', registry.username!, '--password-stdin', registry.host], {env, input: registry.password!})
    assert.equal(login.status, 0, login.stderr)
    assert.match(login.stdout, /docker-credential-rigstore/)
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as {auths: Record<string, object>; currentContext: string}
    assert.deepEqual(config.auths, {[registry.host]: {}}, 'no secret in config.json')
    assert.equal(config.currentContext, 'keep-me', 'other settings kept')
    const stored = readdirSync(store).filter((f) => f.endsWith('.json')).map((f) => readFileSync(join(store, f), 'utf8'))
    assert.ok(stored.some((s) => s.includes(registry.password!)), 'the helper holds the secret')

    const push = await runCli(['push', '-q', `oci:${layout}:v1`, `docker://${registry.host}/helped:v1`], {env})
    assert.equal(push.status, 0, push.stderr)

    const logout = await runCli(['logout', registry.host], {env})
    assert.equal(logout.status, 0, logout.stderr)
    assert.ok(!readdirSync(store).some((f) => f.endsWith('.json') && readFileSync(join(store, f), 'utf8').includes(registry.password!)))
    const denied = await runCli(['push', `oci:${layout}:v1`, `docker://${registry.host}/helped:v2`], {env})
    assert.equal(denied.status, 22, denied.stderr)
    assert.ok(existsSync(join(dir, 'config.json')))
  })
})

test('a malformed DOCKER_AUTH_CONFIG is refused without quoting any of it', async () => {
  const secret = Buffer.from('robot:Sup3rS3cret').toString('base64')
  const locator = envAuthConfigLocator({DOCKER_AUTH_CONFIG: `{"auths": {"reg.example": {"auth": "${secret}" }`})
  await assert.rejects(locator.find('reg.example'), (err: Error) => {
    assert.match(err.message, /^DOCKER_AUTH_CONFIG is not valid JSON/)
    assert.ok(!err.message.includes(secret.slice(0, 8)) && !err.message.includes('auths'), err.message)
    return true
  })
})
