// Credentials stay with the host that asked for them (containerd's CVE-2020-15157 class): an upload
// Location or a tag page on another host, a mirror answering 401, a token realm over plain HTTP, and
// an insecure registry's TLS skip, each against real docker-registry instances behind small proxies
// that play the other host.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'
import {join} from 'node:path'
import {Readable} from 'node:stream'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {basicAuthorization, startProxy, type HttpProxy} from '../rig/http-proxy.js'
import {blobPath, writeOciLayout, type WrittenImage} from '../rig/images.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {RegistryClient, type RegistryClientOptions} from '../../src/registry/client.js'
import {CredentialStore, staticLocator, type CredentialLocator} from '../../src/registry/credentials.js'
import {checkRedirect} from '../../src/registry/http.js'
import {parseReference} from '../../src/oci/reference.js'
import {MEDIA_TYPE_OCI_MANIFEST} from '../../src/oci/media-types.js'
import {isLazyError} from '../../src/cli/errors.js'
import type {Digest} from '../../src/oci/digest.js'

const MIRROR_USER = {username: 'mirror-user', password: 'MirrorPass-1'}

describe('credentials stay with the host that asked for them', () => {
  let registry: RegistryRig
  let mirror: RegistryRig
  let work: string
  let layout: string
  let image: WrittenImage
  const proxies: HttpProxy[] = []
  const clients: RegistryClient[] = []

  before(async () => {
    registry = await startRegistry({auth: 'htpasswd', username: 'upstream-user', password: 'UpstreamPass-1'})
    mirror = await startRegistry({auth: 'htpasswd', ...MIRROR_USER})
    work = rigTempDir('credential-scope')
    layout = join(work, 'layout')
    image = await writeOciLayout(layout, {tag: 'v1', layers: [{files: [{path: 'f', random: {size: 200_000, seed: 'scope'}}]}]})
  })
  after(async () => {
    for (const c of clients) await c.close()
    for (const p of proxies) await p.stop()
    await registry?.stop()
    await mirror?.stop()
    if (work) removeDir(work)
  })

  const upstreamAuth = () => basicAuthorization(registry.username!, registry.password!)

  function clientWith(locators: CredentialLocator[], options: RegistryClientOptions = {}): RegistryClient {
    const client = new RegistryClient({credentials: new CredentialStore(locators), hostsDir: join(work, 'no-hosts'), ...options})
    clients.push(client)
    return client
  }

  async function proxy(...args: Parameters<typeof startProxy>): Promise<HttpProxy> {
    const p = await startProxy(...args)
    proxies.push(p)
    return p
  }

  /** "Storage" on another host: records what the client sent it, then forwards with its own credentials. */
  async function otherHost(target: RegistryRig): Promise<{proxy: HttpProxy; seen: Array<{method: string; auth?: string; secret?: string}>}> {
    const seen: Array<{method: string; auth?: string; secret?: string}> = []
    const p = await proxy(target.host, (req, _res, forward) => {
      seen.push({method: req.method!, ...(req.headers.authorization ? {auth: req.headers.authorization} : {}), ...(req.headers['x-registry-secret'] ? {secret: String(req.headers['x-registry-secret'])} : {})})
      req.headers.authorization = basicAuthorization(target.username!, target.password!)
      forward()
    })
    return {proxy: p, seen}
  }

  function hostsDir(name: string, host: string, toml: string): string {
    const dir = join(work, name)
    mkdirSync(join(dir, host), {recursive: true})
    writeFileSync(join(dir, host, 'hosts.toml'), toml)
    return dir
  }

  async function pushImage(client: RegistryClient, refText: string, tags: string[] = []): Promise<void> {
    const ref = parseReference(refText)
    for (const d of [...image.manifest.layers, image.manifest.config]) {
      await client.pushBlob(ref, {digest: d.digest as Digest, size: d.size}, () => Readable.from([readFileSync(blobPath(layout, d.digest))]))
    }
    const bytes = readFileSync(blobPath(layout, image.manifestDigest))
    await client.putManifest(ref, bytes, MEDIA_TYPE_OCI_MANIFEST)
    for (const tag of tags) await client.putManifest(ref, bytes, MEDIA_TYPE_OCI_MANIFEST, tag)
  }

  test('an upload Location on another host gets neither Authorization nor hosts.toml headers; the push completes', async () => {
    const storage = await otherHost(registry)
    const front = await proxy(registry.host, (req, _res, forward) =>
      forward((_status, headers) => {
        if (typeof headers.location === 'string' && req.url?.includes('/blobs/uploads/')) headers.location = headers.location.replace(`http://${registry.host}`, `http://${storage.proxy.host}`)
      }),
    )
    const dir = hostsDir('hosts-upload', front.host, `server = "http://${front.host}"\n[header]\n  x-registry-secret = "hdr-secret-1"\n`)
    const client = clientWith([staticLocator(front.host, {username: registry.username!, password: registry.password!})], {hostsDir: dir})

    await pushImage(client, `${front.host}/scope/upload:v1`)

    const puts = storage.seen.filter((s) => s.method === 'PUT')
    assert.equal(puts.length, 2, 'layer and config were uploaded to the other host')
    assert.deepEqual(storage.seen.filter((s) => s.auth || s.secret), [], 'no credential or hosts.toml header reached the other host')
    const pulled = await clientWith([staticLocator(registry.host, {username: registry.username!, password: registry.password!})]).getManifest(parseReference(`${registry.host}/scope/upload:v1`))
    assert.equal(pulled.descriptor.digest, image.manifestDigest)
  })

  test('a tag list page on another host (Link: next) is read without the registry credentials', async () => {
    await pushImage(clientWith([staticLocator(registry.host, {username: registry.username!, password: registry.password!})]), `${registry.host}/scope/tags:v1`, ['v2', 'v3'])
    // docker-registry 2.8 does not paginate tags: the proxies serve its list one tag per page,
    // the first page from the registry's host, every next page from the other host.
    const seenByStorage: Array<string | undefined> = []
    let storageHost = ''
    const pageOfTags = async (req: IncomingMessage, res: ServerResponse, authorization: string | undefined): Promise<void> => {
      const answer = await fetch(`${registry.url}${req.url!.split('?')[0]}`, {headers: authorization ? {authorization} : {}})
      if (answer.status !== 200) {
        res.writeHead(answer.status, Object.fromEntries(answer.headers)).end(await answer.text())
        return
      }
      const {name, tags} = (await answer.json()) as {name: string; tags: string[]}
      const last = new URL(req.url!, 'http://x').searchParams.get('last')
      const rest = tags.sort().filter((t) => last === null || t > last)
      const headers: Record<string, string> = {'content-type': 'application/json'}
      if (rest.length > 1) headers.link = `<http://${storageHost}/v2/${name}/tags/list?n=1&last=${rest[0]}>; rel="next"`
      res.writeHead(200, headers).end(JSON.stringify({name, tags: rest.slice(0, 1)}))
    }
    const storage = await proxy(registry.host, (req, res) => {
      seenByStorage.push(req.headers.authorization)
      void pageOfTags(req, res, upstreamAuth())
    })
    storageHost = storage.host
    const front = await proxy(registry.host, (req, res, forward) => (req.url?.includes('/tags/list') ? void pageOfTags(req, res, req.headers.authorization) : forward()))
    const client = clientWith([staticLocator(front.host, {username: registry.username!, password: registry.password!})])

    const tags = await client.listTags(parseReference(`${front.host}/scope/tags:v1`))

    assert.deepEqual(tags, ['v1', 'v2', 'v3'])
    assert.equal(seenByStorage.length, 2, 'pages two and three came from the other host')
    assert.deepEqual(seenByStorage.filter((a) => a !== undefined), [], 'no Authorization reached the other host')
  })

  test("a mirror answering 401 gets its own credentials, looked up by the mirror's host, never the upstream's", async () => {
    await pushImage(clientWith([staticLocator(registry.host, {username: registry.username!, password: registry.password!})]), `${registry.host}/scope/mirrored:v1`)
    await pushImage(clientWith([staticLocator(mirror.host, MIRROR_USER)]), `${mirror.host}/scope/mirrored:v1`)
    const seenByMirror: Array<string | undefined> = []
    const mirrorFront = await proxy(mirror.host, (req, _res, forward) => {
      seenByMirror.push(req.headers.authorization)
      forward()
    })
    const dir = hostsDir('hosts-mirror', registry.host, `server = "http://${registry.host}"\n[host."http://${mirrorFront.host}"]\n  capabilities = ["pull", "resolve"]\n`)
    const ref = parseReference(`${registry.host}/scope/mirrored:v1`)
    const layer = image.manifest.layers[0]!
    const upstreamCreds = staticLocator(registry.host, {username: registry.username!, password: registry.password!})

    const withMirrorCreds = clientWith([upstreamCreds, staticLocator(mirrorFront.host, MIRROR_USER)], {hostsDir: dir})
    const mark = (await registry.requests()).length
    assert.equal((await withMirrorCreds.getManifest(ref)).descriptor.digest, image.manifestDigest)
    assert.equal((await withMirrorCreds.readBlob(ref, {digest: layer.digest as Digest, size: layer.size})).length, layer.size)
    const mirrorAuth = basicAuthorization(MIRROR_USER.username, MIRROR_USER.password)
    assert.ok(seenByMirror.includes(mirrorAuth), 'the mirror got its own credentials')
    assert.ok(!seenByMirror.includes(upstreamAuth()), 'the mirror never got the upstream credentials')
    assert.deepEqual((await registry.requests()).slice(mark).filter((r) => r.repository === 'scope/mirrored'), [], 'the mirror served the pull')

    // Without credentials of its own, the mirror is asked anonymously and the pull falls back upstream.
    seenByMirror.length = 0
    const upstreamOnly = clientWith([upstreamCreds], {hostsDir: dir})
    assert.equal((await upstreamOnly.getManifest(ref)).descriptor.digest, image.manifestDigest)
    assert.ok(seenByMirror.length > 0, 'the mirror was tried first')
    assert.deepEqual(seenByMirror.filter((a) => a !== undefined), [], 'and was sent no credentials')
  })

  test('a token realm over plain HTTP on a remote host is not sent credentials unless that host is insecure by configuration', async () => {
    const challenger = createServer((_req, res) => {
      res.writeHead(401, {'www-authenticate': 'Bearer realm="http://auth.registry.invalid/token",service="scope"', 'content-type': 'application/json'}).end('{"errors":[]}')
    })
    await new Promise<void>((resolve) => challenger.listen(0, '127.0.0.1', resolve))
    try {
      const host = `127.0.0.1:${(challenger.address() as {port: number}).port}`
      const creds = staticLocator(host, {username: 'someone', password: 'Secret-Over-Http'})
      const ref = parseReference(`${host}/scope/app:v1`)
      await assert.rejects(clientWith([creds]).resolve(ref), (err: unknown) => {
        assert.ok(isLazyError(err) && err.code === 'TLS', String(err))
        assert.match(err.message, /token endpoint over plain HTTP \(auth\.registry\.invalid\): credentials are not sent in clear text/)
        assert.match(err.hint ?? '', /--insecure-registry auth\.registry\.invalid/)
        return true
      })
      // Allowed for that host, the client does try it (and cannot reach the name).
      await assert.rejects(clientWith([creds], {insecureRegistries: ['auth.registry.invalid']}).resolve(ref), (err: unknown) => isLazyError(err) && err.code === 'REGISTRY_UNREACHABLE')
    } finally {
      challenger.closeAllConnections()
      challenger.close()
    }
  })

  test("--insecure-registry skips TLS verification for that host only, not for its token realm's host", async () => {
    const tokenRegistry = await startRegistry({auth: 'token', tls: true})
    try {
      const realmHost = new URL(tokenRegistry.tokenServer!.realm).host
      const creds = staticLocator(tokenRegistry.host, {username: tokenRegistry.username!, password: tokenRegistry.password!})
      const ref = parseReference(`${tokenRegistry.host}/scope/app:none`)
      await assert.rejects(clientWith([creds], {insecureRegistries: [tokenRegistry.host]}).resolve(ref), (err: unknown) => {
        assert.ok(isLazyError(err) && err.code === 'TLS', String(err))
        assert.match(err.message, new RegExp(`TLS with ${realmHost.replace(/\./g, '\\.')} failed`))
        return true
      })
      // Both hosts insecure: the token is fetched, and the registry answers that the tag is unknown.
      await assert.rejects(clientWith([creds], {insecureRegistries: [tokenRegistry.host, realmHost]}).resolve(ref), (err: unknown) => isLazyError(err) && err.code === 'MANIFEST_UNKNOWN')
    } finally {
      await tokenRegistry.stop()
    }
  })
})

describe('redirect targets a registry may not name', () => {
  const refused = (from: string, to: string) => assert.throws(() => checkRedirect(new URL(from), new URL(to)), (err: unknown) => isLazyError(err) && err.code === 'REGISTRY')

  test("a remote registry cannot send the client to this node's loopback, link-local or metadata addresses, or off http(s)", () => {
    refused('https://registry.example/v2/x/blobs/sha256:1', 'http://169.254.169.254/latest/meta-data/')
    refused('https://registry.example/v2/', 'http://127.0.0.1:10250/pods')
    refused('https://registry.example/v2/', 'http://localhost:8080/')
    refused('https://registry.example/v2/', 'http://[::1]:9100/metrics')
    refused('https://registry.example/v2/', 'http://[fe80::1]/')
    refused('https://registry.example/v2/', 'file:///etc/shadow')
  })

  test('blob storage elsewhere, and loopback from a loopback registry, are followed', () => {
    checkRedirect(new URL('https://registry.example/v2/'), new URL('https://bucket.s3.amazonaws.com/blob?sig=1'))
    checkRedirect(new URL('http://127.0.0.1:5000/v2/'), new URL('http://127.0.0.1:5001/blob'))
    checkRedirect(new URL('https://registry.example/v2/'), new URL('https://10.0.0.5/blob'))
  })
})
