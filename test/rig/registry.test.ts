import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {request as httpRequest, type IncomingHttpHeaders} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {startRegistry, type RegistryRig} from './registry.js'
import {inspectRaw, pushImage, writeOciLayout} from './images.js'

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

/** A raw HTTP(S) call, so these tests do not depend on lazyctl's own registry client. */
function call(url: string, options: {method?: string; headers?: Record<string, string>; body?: Buffer; ca?: string} = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const onResponse = (res: import('node:http').IncomingMessage): void => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks)}))
      res.on('error', reject)
    }
    const common = {method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false}
    const req = url.startsWith('https:') ? httpsRequest(url, {...common, ca: options.ca}, onResponse) : httpRequest(url, common, onResponse)
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Monolithic blob upload (POST then PUT ?digest=), returning the digest. */
async function uploadBlob(registry: RegistryRig, repository: string, data: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
  const start = await call(`${registry.url}/v2/${repository}/blobs/uploads/`, {method: 'POST', headers: {...headers, 'content-length': '0'}, ca: registry.ca?.caPem})
  assert.equal(start.status, 202, start.body.toString())
  const location = new URL(String(start.headers.location), registry.url)
  location.searchParams.set('digest', digest)
  const put = await call(location.toString(), {
    method: 'PUT',
    headers: {...headers, 'content-type': 'application/octet-stream', 'content-length': String(data.length)},
    body: data,
    ca: registry.ca?.caPem,
  })
  assert.equal(put.status, 201, put.body.toString())
  return digest
}

describe('plain HTTP registry', () => {
  let registry: RegistryRig
  before(async () => {
    registry = await startRegistry()
  })
  after(async () => {
    await registry?.stop()
  })

  test('answers the v2 base endpoint anonymously on a loopback port', async () => {
    assert.match(registry.host, /^127\.0\.0\.1:\d+$/)
    const reply = await call(`${registry.url}/v2/`)
    assert.equal(reply.status, 200)
    assert.equal(reply.headers['docker-distribution-api-version'], 'registry/2.0')
  })

  test('bytesServed counts exactly the bytes of a ranged blob read, from the registry log', async () => {
    const data = randomBytes(100_000)
    const digest = await uploadBlob(registry, 'rig/range', data)
    const before = await registry.bytesServed({digest})
    const ranged = await call(`${registry.url}/v2/rig/range/blobs/${digest}`, {headers: {range: 'bytes=1000-5999'}})
    assert.equal(ranged.status, 206)
    assert.equal(ranged.headers['content-range'], 'bytes 1000-5999/100000')
    assert.deepEqual(ranged.body, data.subarray(1000, 6000))
    assert.equal((await registry.bytesServed({digest})) - before, 5000)
    const rangedRead = (await registry.requests()).find((r) => r.reference === digest && r.ranged)
    assert.deepEqual(rangedRead?.range, {start: 1000, end: 5999})
    assert.equal(rangedRead?.written, 5000)
    const whole = await call(`${registry.url}/v2/rig/range/blobs/${digest}`)
    assert.deepEqual(whole.body, readFileSync(registry.blobFile(digest)))
    assert.equal(await registry.bytesServed({repository: 'rig/range', digest, method: 'GET'}), 105_000)
    assert.equal(await registry.bytesServed({repository: 'other/repo'}), 0)
  })

  test('bytesReceived counts the upload bytes of chunked and monolithic uploads, and nothing for a cross-repo mount', async () => {
    const data = randomBytes(70_000)
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
    const start = await call(`${registry.url}/v2/rig/up-a/blobs/uploads/`, {method: 'POST', headers: {'content-length': '0'}})
    const patch = await call(new URL(String(start.headers.location), registry.url).toString(), {
      method: 'PATCH', body: data.subarray(0, 30_000), headers: {'content-type': 'application/octet-stream', 'content-range': '0-29999'},
    })
    assert.equal(patch.status, 202)
    const finish = new URL(String(patch.headers.location), registry.url)
    finish.searchParams.set('digest', digest)
    const put = await call(finish.toString(), {method: 'PUT', body: data.subarray(30_000), headers: {'content-type': 'application/octet-stream'}})
    assert.equal(put.status, 201)
    assert.equal(await registry.bytesReceived({digest}), 70_000)
    const small = await uploadBlob(registry, 'rig/up-a', randomBytes(1234))
    assert.equal(await registry.bytesReceived({digest: small}), 1234)
    assert.equal(await registry.bytesReceived({repository: 'rig/up-a'}), 71_234)

    const mount = await call(`${registry.url}/v2/rig/up-b/blobs/uploads/?mount=${digest}&from=rig/up-a`, {method: 'POST', headers: {'content-length': '0'}})
    assert.equal(mount.status, 201)
    assert.equal(await registry.bytesReceived({repository: 'rig/up-b'}), 0)
    const head = await call(`${registry.url}/v2/rig/up-b/blobs/${digest}`, {method: 'HEAD'})
    assert.equal(head.status, 200)
  })

  test('requests() lists what the registry answered, with method, path and status', async () => {
    await call(`${registry.url}/v2/rig/missing/manifests/latest`, {method: 'HEAD'})
    const requests = await registry.requests()
    const miss = requests.find((r) => r.repository === 'rig/missing')
    assert.ok(miss, JSON.stringify(requests.slice(-3)))
    assert.equal(miss.method, 'HEAD')
    assert.equal(miss.kind, 'manifest')
    assert.equal(miss.reference, 'latest')
    assert.equal(miss.status, 404)
    assert.equal(miss.ranged, false)
  })

  test('halt() makes the registry unreachable and resume() brings it back on the same port with its content', async () => {
    const data = randomBytes(1000)
    const digest = await uploadBlob(registry, 'rig/halt', data)
    await registry.halt()
    await assert.rejects(call(`${registry.url}/v2/`), /ECONNREFUSED/)
    await registry.resume()
    const blob = await call(`${registry.url}/v2/rig/halt/blobs/${digest}`)
    assert.equal(blob.status, 200)
    assert.deepEqual(blob.body, data)
    assert.ok((await registry.requests()).some((r) => r.reference === digest && r.status === 200 && r.written === 1000))
  })
})

describe('registry rig teardown', () => {
  test('stop() ends the registry process and removes its dir', async () => {
    const registry = await startRegistry({auth: 'htpasswd', tls: true})
    const pid = registry.process.child.pid!
    await registry.stop()
    assert.throws(() => process.kill(pid, 0), /ESRCH/)
    assert.equal(existsSync(registry.dir), false)
  })
})

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
}

describe('htpasswd registry over TLS', () => {
  let registry: RegistryRig
  before(async () => {
    registry = await startRegistry({auth: 'htpasswd', tls: true, extraUsers: {second: 'second-pass'}})
  })
  after(async () => {
    await registry?.stop()
  })

  test('serves HTTPS with a certificate of the rig CA, and only to clients that trust it', async () => {
    assert.ok(registry.url.startsWith('https://'))
    assert.ok(registry.caFile && existsSync(registry.caFile))
    assert.ok(registry.certDir && existsSync(join(registry.certDir, 'ca.crt')))
    assert.equal(registry.certDir, join(registry.hostsDir!, registry.host))
    assert.match(readFileSync(join(registry.certDir, 'hosts.toml'), 'utf8'), new RegExp(`\\[host\\."${registry.url}"\\]`))
    await assert.rejects(call(`${registry.url}/v2/`), /self[- ]signed|unable to verify|certificate/i)
    const reply = await call(`${registry.url}/v2/`, {ca: registry.ca?.caPem})
    assert.equal(reply.status, 401)
  })

  test('refuses missing and wrong credentials with a Basic challenge, accepts the right ones', async () => {
    const ca = registry.ca?.caPem
    const anonymous = await call(`${registry.url}/v2/`, {ca})
    assert.equal(anonymous.status, 401)
    assert.match(String(anonymous.headers['www-authenticate']), /^Basic realm="lazyctl-rig"/)
    const wrong = await call(`${registry.url}/v2/`, {ca, headers: {authorization: basic(registry.username!, 'not-the-password')}})
    assert.equal(wrong.status, 401)
    const right = await call(`${registry.url}/v2/`, {ca, headers: {authorization: basic(registry.username!, registry.password!)}})
    assert.equal(right.status, 200)
    const second = await call(`${registry.url}/v2/`, {ca, headers: {authorization: basic('second', 'second-pass')}})
    assert.equal(second.status, 200)
  })

  test('skopeo pushes and inspects through the cert dir and credentials', async () => {
    const dir = join(registry.dir, 'layout')
    const written = await writeOciLayout(dir, {layers: [{files: [{path: 'secret', content: 'tls'}]}]})
    assert.equal(await pushImage(dir, 'rig/tls:v1', registry), written.manifestDigest)
    const raw = await inspectRaw('rig/tls:v1', registry)
    assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, written.manifestDigest)
    assert.doesNotMatch(registry.log(), new RegExp(registry.password!))
  })
})

describe('token-auth registry', () => {
  let registry: RegistryRig
  before(async () => {
    registry = await startRegistry({auth: 'token'})
  })
  after(async () => {
    await registry?.stop()
  })

  async function token(scope: string, credentials = basic(registry.username!, registry.password!)): Promise<{status: number; token?: string}> {
    const server = registry.tokenServer!
    const reply = await call(`${server.realm}?service=${encodeURIComponent(serviceOf(registry))}&scope=${encodeURIComponent(scope)}`, {headers: {authorization: credentials}})
    if (reply.status !== 200) return {status: reply.status}
    const body = JSON.parse(reply.body.toString()) as {token: string; access_token: string}
    assert.equal(body.token, body.access_token)
    return {status: 200, token: body.token}
  }

  test('refuses a request without a token with a Bearer challenge naming realm, service and scope', async () => {
    const reply = await call(`${registry.url}/v2/rig/token/manifests/latest`)
    assert.equal(reply.status, 401)
    const challenge = String(reply.headers['www-authenticate'])
    assert.match(challenge, /^Bearer /)
    assert.ok(challenge.includes(`realm="${registry.tokenServer!.realm}"`), challenge)
    assert.match(challenge, /service="[^"]+"/)
    assert.match(challenge, /scope="repository:rig\/token:pull"/)
  })

  test('accepts a request with a JWT from the test token endpoint', async () => {
    const before = registry.tokenServer!.tokensIssued
    const {status, token: jwt} = await token('repository:rig/token:pull,push')
    assert.equal(status, 200)
    assert.equal(registry.tokenServer!.tokensIssued, before + 1)
    const base = await call(`${registry.url}/v2/`, {headers: {authorization: `Bearer ${jwt}`}})
    assert.equal(base.status, 200)
    // A real access check: the pull,push token lets a blob upload start in its repository only.
    const upload = await call(`${registry.url}/v2/rig/token/blobs/uploads/`, {method: 'POST', headers: {authorization: `Bearer ${jwt}`, 'content-length': '0'}})
    assert.equal(upload.status, 202, upload.body.toString())
    const elsewhere = await call(`${registry.url}/v2/rig/other/blobs/uploads/`, {method: 'POST', headers: {authorization: `Bearer ${jwt}`, 'content-length': '0'}})
    assert.equal(elsewhere.status, 401)
  })

  test('rejects a token signed by a key outside the registry trust (a forged JWT)', async () => {
    const {token: jwt} = await token('repository:rig/token:pull')
    const [header, claims] = jwt!.split('.')
    const forged = `${header}.${claims}.${Buffer.from(randomBytes(64)).toString('base64url')}`
    const reply = await call(`${registry.url}/v2/`, {headers: {authorization: `Bearer ${forged}`}})
    assert.equal(reply.status, 401)
  })

  test('the token endpoint refuses wrong credentials and leaves denied actions out of the token', async () => {
    const wrong = await token('repository:rig/token:pull', basic(registry.username!, 'wrong'))
    assert.equal(wrong.status, 401)
    registry.tokenServer!.deny({repository: 'rig/token', action: 'push'})
    try {
      const {token: jwt} = await token('repository:rig/token:pull,push')
      const upload = await call(`${registry.url}/v2/rig/token/blobs/uploads/`, {method: 'POST', headers: {authorization: `Bearer ${jwt}`, 'content-length': '0'}})
      assert.equal(upload.status, 401)
      assert.deepEqual(registry.tokenServer!.issued.at(-1)?.granted, [{type: 'repository', name: 'rig/token', actions: ['pull']}])
    } finally {
      registry.tokenServer!.reset()
    }
  })

  test('skopeo pushes and pulls through the token flow', async () => {
    const dir = join(registry.dir, 'layout')
    const written = await writeOciLayout(dir, {layers: [{files: [{path: 't', content: 'token'}]}]})
    const before = registry.tokenServer!.tokensIssued
    assert.equal(await pushImage(dir, 'rig/skopeo:v1', registry), written.manifestDigest)
    assert.ok(registry.tokenServer!.tokensIssued > before)
    const raw = await inspectRaw('rig/skopeo:v1', registry)
    assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, written.manifestDigest)
    // The registry's log sees both sides of the Bearer flow: the 401 challenges and the authorized answers.
    // skopeo is challenged on /v2/, then asks for the repository scope up front.
    const requests = await registry.requests()
    assert.ok(requests.some((r) => r.kind === 'base' && r.status === 401 && r.userAgent.includes('skopeo')))
    assert.ok(requests.some((r) => r.repository === 'rig/skopeo' && r.kind === 'manifest' && r.method === 'GET' && r.status === 200 && r.written === raw.length))
  })
})

/** The `service` the registry names in its Bearer challenge (read from its config). */
function serviceOf(registry: RegistryRig): string {
  const config = JSON.parse(readFileSync(registry.configFile, 'utf8')) as {auth: {token: {service: string}}}
  return config.auth.token.service
}

describe('token-auth registry over TLS', () => {
  let registry: RegistryRig
  before(async () => {
    registry = await startRegistry({auth: 'token', tls: true})
  })
  after(async () => {
    await registry?.stop()
  })

  test('the token endpoint is HTTPS under the same rig CA, and skopeo completes the flow through it', async () => {
    assert.match(registry.tokenServer!.realm, /^https:\/\/127\.0\.0\.1:\d+\/token$/)
    const challenge = await call(`${registry.url}/v2/`, {ca: registry.ca?.caPem})
    assert.equal(challenge.status, 401)
    const dir = join(registry.dir, 'layout')
    const written = await writeOciLayout(dir, {layers: [{files: [{path: 't', content: 'tls token'}]}]})
    assert.equal(await pushImage(dir, 'rig/tls-token:v1', registry), written.manifestDigest)
    assert.ok(registry.tokenServer!.issued.some((t) => t.username === registry.username && t.granted.some((g) => g.actions.includes('push'))))
  })

  test('the token endpoint also answers the OAuth2 password grant (POST)', async () => {
    const form = new URLSearchParams({
      grant_type: 'password', username: registry.username!, password: registry.password!, service: serviceOf(registry),
      scope: 'repository:rig/tls-token:pull', client_id: 'rig-test',
    })
    const reply = await call(registry.tokenServer!.realm, {
      method: 'POST', ca: registry.ca?.caPem, headers: {'content-type': 'application/x-www-form-urlencoded'}, body: Buffer.from(form.toString()),
    })
    assert.equal(reply.status, 200)
    const {access_token: jwt} = JSON.parse(reply.body.toString()) as {access_token: string}
    const manifest = await call(`${registry.url}/v2/rig/tls-token/manifests/v1`, {
      ca: registry.ca?.caPem,
      headers: {authorization: `Bearer ${jwt}`, accept: 'application/vnd.oci.image.manifest.v1+json'},
    })
    assert.equal(manifest.status, 200)
    assert.equal(registry.tokenServer!.issued.at(-1)?.via, 'POST')
  })
})
