import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash, randomBytes} from 'node:crypto'
import {request as httpRequest, type IncomingHttpHeaders} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {startRegistry, type RegistryRig} from './registry.js'

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
    const whole = await call(`${registry.url}/v2/rig/range/blobs/${digest}`)
    assert.equal(whole.body.length, 100_000)
    assert.equal(await registry.bytesServed({repository: 'rig/range', digest, method: 'GET'}), 105_000)
    assert.equal(await registry.bytesServed({repository: 'other/repo'}), 0)
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
  })
})
