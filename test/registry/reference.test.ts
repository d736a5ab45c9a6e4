import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {formatReference, parseReference} from '../../src/oci/reference.js'
import {isLazyError} from '../../src/cli/errors.js'
import {parseChallenges} from '../../src/registry/auth.js'
import {chainIds} from '../../src/oci/chain-id.js'
import {sha256Digest} from '../../src/oci/digest.js'
import {parsePlatform, platformMatches} from '../../src/oci/platform.js'

describe('image references', () => {
  test('normalises Docker Hub short names like docker does', () => {
    assert.equal(formatReference(parseReference('busybox')), 'docker.io/library/busybox:latest')
    assert.equal(formatReference(parseReference('user/app:1')), 'docker.io/user/app:1')
    assert.equal(formatReference(parseReference('index.docker.io/library/alpine')), 'docker.io/library/alpine:latest')
  })

  test('keeps host, port, tag and digest', () => {
    const d = sha256Digest('x')
    const ref = parseReference(`127.0.0.1:5000/a/b:v1@${d}`)
    assert.deepEqual(ref, {registry: '127.0.0.1:5000', repository: 'a/b', tag: 'v1', digest: d})
    assert.equal(parseReference(`localhost/x@${d}`).tag, undefined)
  })

  test('refuses bad syntax with INVALID_REFERENCE naming the part', () => {
    for (const bad of ['', 'UPPER/case', 'host:5000/repo:bad:tag', 'repo@sha256:short', 'a//b', 'repo:-tag', 'a b']) {
      assert.throws(() => parseReference(bad), (e: unknown) => isLazyError(e, 'INVALID_REFERENCE'), bad)
    }
  })
})

describe('auth challenges', () => {
  test('parses Bearer params with quoted commas and colons in scope', () => {
    const [c] = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')
    assert.deepEqual(c, {scheme: 'bearer', params: {realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push'}})
    assert.deepEqual(parseChallenges('Basic realm="basic-realm"'), [{scheme: 'basic', params: {realm: 'basic-realm'}}])
  })
})

describe('chain IDs and platforms', () => {
  test('chain IDs follow the image spec recursion', () => {
    const a = sha256Digest('a')
    const b = sha256Digest('b')
    assert.deepEqual(chainIds([a, b]), [a, sha256Digest(`${a} ${b}`)])
  })

  test('platform matching normalises arch aliases and arm64/v8', () => {
    assert.ok(platformMatches(parsePlatform('linux/amd64'), {os: 'linux', architecture: 'x86_64'}))
    assert.ok(platformMatches(parsePlatform('linux/arm64/v8'), {os: 'linux', architecture: 'arm64'}))
    assert.ok(!platformMatches(parsePlatform('linux/arm/v7'), {os: 'linux', architecture: 'arm', variant: 'v6'}))
  })
})
