import {test} from 'node:test'
import assert from 'node:assert/strict'
import {createHmac, randomBytes} from 'node:crypto'
import {knownHostsName, verifyHostKey} from '../../src/node/known-hosts.js'

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type)
  const b = Buffer.from(body)
  const out = Buffer.alloc(8 + t.length + b.length)
  out.writeUInt32BE(t.length, 0)
  t.copy(out, 4)
  out.writeUInt32BE(b.length, 4 + t.length)
  b.copy(out, 8 + t.length)
  return out
}

const key = blob('ssh-ed25519', 'the-real-key-bytes-000000000000')
const other = blob('ssh-ed25519', 'another-key-bytes-0000000000000')
const line = (hosts: string, k = key) => `${hosts} ssh-ed25519 ${k.toString('base64')}`

function hashed(name: string): string {
  const salt = randomBytes(20)
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`
}

test('matches plain names, [host]:port for other ports, and comma lists', () => {
  assert.equal(verifyHostKey(line('node1,10.0.0.5'), '10.0.0.5', 22, key).kind, 'known')
  assert.equal(verifyHostKey(line('[127.0.0.1]:2222'), '127.0.0.1', 2222, key).kind, 'known')
  assert.equal(verifyHostKey(line('127.0.0.1'), '127.0.0.1', 2222, key).kind, 'unknown')
  assert.equal(knownHostsName('h', 22), 'h')
})

test('matches hashed entries, as ssh-keygen -H writes them', () => {
  assert.equal(verifyHostKey(line(hashed('[127.0.0.1]:2222')), '127.0.0.1', 2222, key).kind, 'known')
  assert.equal(verifyHostKey(line(hashed('[127.0.0.1]:2223')), '127.0.0.1', 2222, key).kind, 'unknown')
})

test('wildcards match and negations exclude', () => {
  assert.equal(verifyHostKey(line('*.eks.internal,!bad.eks.internal'), 'ip-10-0-0-5.eks.internal', 22, key).kind, 'known')
  assert.equal(verifyHostKey(line('*.eks.internal,!bad.eks.internal'), 'bad.eks.internal', 22, key).kind, 'unknown')
  assert.equal(verifyHostKey(line('10.0.0.?'), '10.0.0.7', 22, key).kind, 'known')
})

test('a different key of the same type for a known host is reported as changed, with its line', () => {
  const v = verifyHostKey(`# comment\n${line('node1', other)}`, 'node1', 22, key)
  assert.deepEqual(v, {kind: 'changed', line: 2})
})

test('a key marked @revoked is refused even if also listed as valid', () => {
  const v = verifyHostKey(`${line('node1')}\n@revoked ${line('*')}`, 'node1', 22, key)
  assert.equal(v.kind, 'revoked')
})

test('a host known only with a key of another type is not a new host: reported with that type and line', () => {
  const rsa = `node1 ssh-rsa ${blob('ssh-rsa', 'an-rsa-key-on-file-00000000000').toString('base64')}`
  assert.deepEqual(verifyHostKey(`# comment\n${rsa}`, 'node1', 22, key), {kind: 'other-type', line: 2, knownType: 'ssh-rsa'})
  // The same key listed too: known; another host's entries do not count.
  assert.equal(verifyHostKey(`${rsa}\n${line('node1')}`, 'node1', 22, key).kind, 'known')
  assert.equal(verifyHostKey(rsa, 'node2', 22, key).kind, 'unknown')
})
