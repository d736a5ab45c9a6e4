// How the client copes with what production registries do and the rig's registry does not:
// transient 503s and dropped connections (a fault-injecting proxy in front of the real
// registry) and blob redirects to another host, which must not receive the registry credentials.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import type {Server, ServerResponse} from 'node:http'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {basicAuthorization, startProxy} from '../rig/http-proxy.js'
import {blobPath, writeOciLayout, type WrittenImage} from '../rig/images.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {RegistryClient} from '../../src/registry/client.js'
import {CredentialStore, staticLocator} from '../../src/registry/credentials.js'
import {parseReference} from '../../src/oci/reference.js'
import {describeError} from '../../src/cli/errors.js'
import type {Digest} from '../../src/oci/digest.js'

describe('retries and redirects', () => {
  let registry: RegistryRig
  let work: string
  let image: WrittenImage
  const servers: Server[] = []

  before(async () => {
    registry = await startRegistry({auth: 'htpasswd'})
    work = rigTempDir('resilience')
    image = await writeOciLayout(join(work, 'layout'), {tag: 'v1', layers: [{files: [{path: 'f', random: {size: 1 << 20, seed: 'r'}}]}]})
    const client = new RegistryClient({credentials: new CredentialStore([staticLocator(registry.host, {username: registry.username!, password: registry.password!})])})
    const ref = parseReference(`${registry.host}/res/app:v1`)
    for (const d of [...image.manifest.layers, image.manifest.config]) {
      await client.pushBlob(ref, {digest: d.digest as Digest, size: d.size}, () => Readable.from([readFileSync(blobPath(join(work, 'layout'), d.digest))]))
    }
    await client.close()
  })
  after(async () => {
    for (const s of servers) s.close()
    await registry?.stop()
    if (work) removeDir(work)
  })

  const clientFor = (host: string) =>
    new RegistryClient({credentials: new CredentialStore([staticLocator(host, {username: registry.username!, password: registry.password!})]), retry: {attempts: 4, baseDelayMs: 10, maxDelayMs: 50}})

  test('retries a 503 and a dropped connection, then gets verified bytes', async () => {
    let blobGets = 0
    const proxy = await startProxy(registry.host, (req, res, forward) => {
      if (req.method === 'GET' && req.url?.includes('/blobs/')) {
        blobGets++
        if (blobGets === 1) {
          res.writeHead(503, {'retry-after': '0'}).end('busy')
          return
        }
        if (blobGets === 2) {
          req.socket.destroy()
          return
        }
      }
      forward()
    })
    servers.push(proxy.server)
    const client = clientFor(proxy.host)
    try {
      const layer = image.layers[0]!
      const ref = parseReference(`${proxy.host}/res/app:v1`)
      const bytes = await client.readBlob(ref, {digest: layer.digest as Digest, size: layer.size})
      assert.ok(bytes.equals(readFileSync(blobPath(join(work, 'layout'), layer.digest))))
      assert.ok(blobGets >= 3, `three attempts reached the proxy (${blobGets})`)
      const part = await client.blobRangeSource(ref, layer.digest as Digest, layer.size).readAt(1000, 100)
      assert.ok(part.equals(bytes.subarray(1000, 1100)))
    } finally {
      await client.close()
    }
  })

  test('a range read outlasts a registry that refuses connections for a moment (a restart)', async () => {
    const proxy = await startProxy(registry.host, (_req, _res, forward) => forward())
    servers.push(proxy.server)
    const port = (proxy.server.address() as {port: number}).port
    // Nothing listens at the address now: connections are refused.
    await new Promise<void>((resolve) => proxy.server.close(() => resolve()))
    const client = new RegistryClient({
      credentials: new CredentialStore([staticLocator(proxy.host, {username: registry.username!, password: registry.password!})]),
      retry: {attempts: 4, baseDelayMs: 200, maxDelayMs: 1000},
    })
    try {
      const layer = image.layers[0]!
      const ref = parseReference(`${proxy.host}/res/app:v1`)
      const refused: string[] = []
      const source = client.blobRangeSource(ref, layer.digest as Digest, layer.size, {
        onRetry: (_attempt, err) => {
          refused.push(describeError(err))
          // The registry is back on the same port before the next attempt.
          if (!proxy.server.listening) proxy.server.listen(port, '127.0.0.1')
        },
      })
      const part = await source.readAt(1000, 100)
      assert.ok(part.equals(readFileSync(blobPath(join(work, 'layout'), layer.digest)).subarray(1000, 1100)))
      assert.equal(refused.length, 1, refused.join('; '))
      assert.match(refused[0]!, /ECONNREFUSED|refused/i)
    } finally {
      await client.close()
    }
  })

  test('a range read gives up after the bounded retries when the registry stays away', async () => {
    const proxy = await startProxy(registry.host, (_req, _res, forward) => forward())
    await new Promise<void>((resolve) => proxy.server.close(() => resolve()))
    const client = clientFor(proxy.host)
    try {
      const layer = image.layers[0]!
      let retries = 0
      const source = client.blobRangeSource(parseReference(`${proxy.host}/res/app:v1`), layer.digest as Digest, layer.size, {onRetry: () => retries++})
      await assert.rejects(source.readAt(0, 10), (err: Error & {code?: string}) => err.code === 'REGISTRY_UNREACHABLE')
      assert.equal(retries, 3, 'four attempts in all')
    } finally {
      await client.close()
    }
  })

  test('a range read from a registry that accepts and never answers fails after the request timeout and the bounded retries, naming the registry', {timeout: 30_000}, async () => {
    let asked = 0
    const hung: ServerResponse[] = []
    // Blob reads are taken and never answered; everything else (auth) goes through.
    const proxy = await startProxy(registry.host, (req, res, forward) => {
      if (req.url?.includes('/blobs/sha256:')) {
        asked++
        hung.push(res)
        return
      }
      forward()
    })
    servers.push(proxy.server)
    const client = new RegistryClient({
      credentials: new CredentialStore([staticLocator(proxy.host, {username: registry.username!, password: registry.password!})]),
      retry: {attempts: 3, baseDelayMs: 50, maxDelayMs: 100},
      requestTimeoutMs: 400,
    })
    try {
      const layer = image.layers[0]!
      const source = client.blobRangeSource(parseReference(`${proxy.host}/res/app:v1`), layer.digest as Digest, layer.size)
      await assert.rejects(source.readAt(0, 10), (err: Error & {code?: string}) => {
        assert.equal(err.code, 'REGISTRY_UNREACHABLE')
        assert.match(err.message, new RegExp(`${proxy.host.replace(/[.]/g, '\\.')}: UND_ERR_HEADERS_TIMEOUT`))
        return true
      })
      assert.equal(asked, 3, 'the bounded retries of the client, not retries of retries')
    } finally {
      for (const res of hung) res.destroy()
      await client.close()
    }
  })

  test('follows a blob redirect to another host without sending it the Authorization header', async () => {
    const seen: Array<{auth: string | undefined; range: string | undefined}> = []
    // "Storage": serves blobs by digest straight from the registry with its own credentials.
    const storage = await startProxy(registry.host, (req, _res, forward) => {
      seen.push({auth: req.headers.authorization, range: req.headers.range})
      req.headers.authorization = basicAuthorization(registry.username!, registry.password!)
      forward()
    })
    servers.push(storage.server)
    const front = await startProxy(registry.host, (req, res, forward) => {
      if (req.method === 'GET' && req.url?.includes('/blobs/sha256:') && req.headers.authorization) {
        res.writeHead(307, {location: `http://${storage.host}${req.url}`}).end()
        return
      }
      forward()
    })
    servers.push(front.server)
    const client = clientFor(front.host)
    try {
      const layer = image.layers[0]!
      const ref = parseReference(`${front.host}/res/app:v1`)
      const whole = await client.readBlob(ref, {digest: layer.digest as Digest, size: layer.size})
      const src = client.blobRangeSource(ref, layer.digest as Digest, layer.size)
      const a = await src.readAt(10, 20)
      const b = await src.readAt(5000, 7)
      assert.ok(a.equals(whole.subarray(10, 30)) && b.equals(whole.subarray(5000, 5007)))
      assert.ok(seen.length >= 3, 'storage served the full read and both ranges')
      assert.deepEqual(seen.map((s) => s.auth), seen.map(() => undefined), 'no Authorization crossed hosts')
      assert.deepEqual(seen.slice(-2).map((s) => s.range), ['bytes=10-29', 'bytes=5000-5006'])
    } finally {
      await client.close()
    }
  })
})
