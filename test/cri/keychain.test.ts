// The CRI keychain: PullImage's AuthConfig read as containerd's CRI plugin reads it, kept per
// image in a root-only file that a new keychain (a restarted snapshotter) reads back.
import {after, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {credentialFromAuthConfig, CriKeychain} from '../../src/cri/keychain.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

const dir = rigTempDir('cri-keychain')
after(() => removeDir(dir))

test('an AuthConfig gives username+password first, then the identity token, then the decoded auth; none for another server', () => {
  const host = 'registry.example:5000'
  assert.deepEqual(credentialFromAuthConfig({username: 'u', password: 'p', identity_token: 't'}, host), {username: 'u', password: 'p'})
  assert.deepEqual(credentialFromAuthConfig({identity_token: 't', auth: Buffer.from('a:b').toString('base64')}, host), {identityToken: 't'})
  assert.deepEqual(credentialFromAuthConfig({auth: Buffer.from('user:pa:ss').toString('base64')}, host), {username: 'user', password: 'pa:ss'})
  assert.deepEqual(credentialFromAuthConfig({username: 'u', password: 'p', server_address: `https://${host}/v1/`}, host), {username: 'u', password: 'p'})
  assert.deepEqual(credentialFromAuthConfig({username: 'u', password: 'p', server_address: host}, host), {username: 'u', password: 'p'})
  assert.equal(credentialFromAuthConfig({username: 'u', password: 'p', server_address: 'https://other.example'}, host), undefined)
  assert.equal(credentialFromAuthConfig({registry_token: 'x'}, host), undefined)
  assert.equal(credentialFromAuthConfig(null, host), undefined)
})

test('credentials are kept per image in a 0600 file a new keychain reads back; forgetting an image drops them', () => {
  const file = join(dir, 'cri', 'credentials.json')
  const changed: string[] = []
  const keychain = new CriKeychain({file})
  keychain.onChange = (registry) => changed.push(registry)
  assert.equal(keychain.record('registry.example:5000/team/app:v1', {username: 'bot', password: 'S3cret'})?.registry, 'registry.example:5000')
  // A secret the pull then failed with is taken back; the one that worked stays.
  keychain.record('registry.example:5000/team/app:v1', {username: 'bot', password: 'wrong'})!.undo()
  assert.equal(keychain.record('sha256:' + 'a'.repeat(64), {username: 'x', password: 'y'}), undefined, 'an image ID names no registry')
  assert.equal(keychain.record('busybox', {username: 'hub', password: 'hubpass'})?.registry, 'docker.io')
  assert.deepEqual(changed, ['registry.example:5000', 'registry.example:5000', 'registry.example:5000', 'docker.io'])
  assert.equal(statSync(file).mode & 0o777, 0o600)
  assert.equal(statSync(join(dir, 'cri')).mode & 0o777, 0o700)

  const restarted = new CriKeychain({file})
  assert.deepEqual(restarted.find('registry.example:5000'), {username: 'bot', password: 'S3cret'})
  assert.deepEqual(restarted.find('docker.io'), {username: 'hub', password: 'hubpass'})
  assert.equal(restarted.find('elsewhere.example'), undefined)
  restarted.forget('docker.io/library/busybox:latest')
  assert.equal(restarted.find('docker.io'), undefined)
  assert.equal(new CriKeychain({file}).size, 1)
})

test('a damaged keychain file is reported (without its content) and the keychain starts empty', () => {
  const file = join(dir, 'damaged.json')
  writeFileSync(file, '{"version": 1, "images": ', {mode: 0o600})
  const errors: string[] = []
  const keychain = new CriKeychain({file, onError: (message) => errors.push(message)})
  assert.equal(keychain.size, 0)
  assert.equal(errors.length, 1)
  assert.match(errors[0]!, /damaged\.json is not a lazyctl CRI keychain/)
  keychain.record('registry.example/app', {username: 'u', password: 'p'})
  assert.equal(keychain.size, 1)
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).version, 1, 'the next record rewrites it whole')
})
