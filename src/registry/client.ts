// The registry client: OCI distribution v2 over undici. Requests go through the composed layers of
// http.ts (pool → redirects → retries), then auth (a 401 is answered once from its challenge), and
// every manifest and blob read is checked against its digest before anyone can use it.
import {Transform, pipeline, type Readable} from 'node:stream'
import {LazyError} from '../cli/errors.js'
import {checkDescriptor, parseManifest, type Descriptor, type ImageIndex, type ParsedManifest} from '../oci/descriptor.js'
import {DigestVerifier, digestOf, isDigest, short, verifyBuffer, type Digest} from '../oci/digest.js'
import {MANIFEST_ACCEPT, MEDIA_TYPE_OCI_INDEX} from '../oci/media-types.js'
import {referenceTarget, type ImageReference} from '../oci/reference.js'
import {CLIENT_VERSION} from '../version.js'
import {Authorizer, repositoryScope} from './auth.js'
import {defaultCredentialStore, type CredentialStore} from './credentials.js'
import {readErrorBody, registryError, type ErrorContext} from './errors.js'
import {isLoopbackHost, registryEndpoints, type HostCapability, type HostsOptions, type RegistryEndpoint} from './hosts.js'
import {
  AgentPool,
  DEFAULT_RETRY,
  baseSender,
  checkRedirect,
  header,
  headerAll,
  isPlainHttpAnswer,
  withRedirects,
  withRetry,
  type HttpBody,
  type HttpResponse,
  type RetryPolicy,
  type Send,
} from './http.js'
import {rootCertificates} from 'node:tls'
import {blobRangeSource, type RangeSource, type RangeSourceOptions} from './range-source.js'

export interface RegistryClientOptions extends HostsOptions {
  credentials?: CredentialStore
  retry?: RetryPolicy
  userAgent?: string
  /** Size of PATCH chunks for chunked uploads; monolithic PUT when undefined (the default). */
  uploadChunkSize?: number
  /**
   * Bound on waiting for a response's headers and between body chunks (the snapshotter's
   * `[registry] request_timeout_sec`: a registry that accepts and never answers must not hold a
   * container's read for minutes). Default: 60 s for headers, 120 s between body chunks.
   */
  requestTimeoutMs?: number
}

/** Largest manifest we accept (the spec asks clients to handle at least 4 MB). */
const MAX_MANIFEST_SIZE = 8 << 20
const MAX_SMALL_BLOB = 64 << 20

export interface FetchedManifest {
  descriptor: Descriptor
  bytes: Buffer
  parsed: ParsedManifest
}

export interface RegistryCall {
  method: HttpResponseMethod
  ref: ImageReference
  /** Path under `/v2/<repository>`, e.g. `/manifests/latest`; or an absolute URL the registry gave us. */
  path?: string
  url?: URL
  query?: Record<string, string>
  headers?: Record<string, string>
  /** A function so the body can be re-created when auth forces a resend. */
  body?: () => HttpBody
  actions: Array<'pull' | 'push'>
  /** Extra scopes (cross-repository mount needs pull on the source). */
  extraScopes?: string[]
  capability: HostCapability
  /** Statuses returned to the caller instead of thrown. */
  ok: number[]
  error: Omit<ErrorContext, 'host' | 'hadCredentials'>
  followRedirects?: boolean
  /** Send no Authorization (requests to blob storage after a redirect). */
  noAuth?: boolean
}

type HttpResponseMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'

export type PushBlobResult = 'exists' | 'mounted' | 'uploaded'

export interface PushBlobOptions {
  /** Another repository of the same registry that has the blob: try a cross-repository mount first. */
  mountFrom?: string
  chunkSize?: number
  /** Called with the number of bytes just sent. */
  onProgress?: (bytes: number) => void
  /** Skip the existence check (the caller just did it). */
  skipExistsCheck?: boolean
  /**
   * The stream from `open` already fails on a digest mismatch (every ImageSource blob does), so
   * hashing it a second time here would only cost CPU; the registry checks the digest too.
   */
  sourceVerified?: boolean
}

function originHost(origin: string): string {
  return new URL(origin).host
}

/**
 * Whose credentials and tokens an endpoint gets: the registry's for the registry itself, a
 * mirror's own (looked up by the mirror's host) for a mirror, so a mirror never sees the upstream's.
 */
function endpointAuthHost(endpoint: RegistryEndpoint, registry: string): string {
  return endpoint.upstream ? registry : originHost(endpoint.origin)
}

function ignoresRangeError(what: string): LazyError {
  return new LazyError('REGISTRY', `${what}: the registry ignores HTTP Range requests (it answered a range request with 200 and the whole blob)`, {
    hint: 'a pull-through cache or proxy in front of the registry drops Range headers; let it pass them, or pull the image normally',
  })
}

export class RegistryClient {
  readonly authorizer: Authorizer
  private readonly credentials: CredentialStore
  private readonly pool = new AgentPool()
  private readonly endpointCache = new Map<string, RegistryEndpoint[]>()
  /** Registries seen answering a range request with the whole blob: not asked for ranges again. */
  private readonly ignoresRange = new Set<string>()
  private readonly sends = new Map<RegistryEndpoint, {follow: Send; manual: Send}>()
  /** The endpoint each auth host was last reached at (its token realm is reached with that endpoint's TLS trust). */
  private readonly endpointOfAuthHost = new Map<string, RegistryEndpoint>()
  private readonly userAgent: string
  /** Bounded retries of transient failures (also what range reads use). */
  readonly retry: RetryPolicy

  constructor(readonly options: RegistryClientOptions = {}) {
    this.userAgent = options.userAgent ?? `lazyctl/${CLIENT_VERSION}`
    this.retry = options.retry ?? DEFAULT_RETRY
    const credentials = options.credentials ?? defaultCredentialStore()
    this.credentials = credentials
    this.authorizer = new Authorizer({
      credentials,
      userAgent: this.userAgent,
      // Token realms are reached through the endpoint that named them: its CA is trusted in
      // addition, while its skip_verify and client certificate stay with its own host (agentFor).
      send: (req, authHost) => this.sendFor(this.endpointOfAuthHost.get(authHost) ?? this.upstreamEndpoint(authHost), true)(req),
      plainHttpAllowed: (host, authHost) => this.plainHttpAllowed(host) || this.endpointOfAuthHost.get(authHost)?.origin === `http://${host}`,
    })
  }

  async close(): Promise<void> {
    await this.pool.close()
  }

  /** New credentials for `registry` exist (a pull secret arrived): the next request looks them up again. */
  credentialsChanged(registry: string): void {
    this.credentials.invalidate(registry)
    this.authorizer.forgetTokens(registry)
  }

  endpoints(registry: string): RegistryEndpoint[] {
    let list = this.endpointCache.get(registry)
    if (!list) {
      list = registryEndpoints(registry, this.options)
      this.endpointCache.set(registry, list)
    }
    return list
  }

  private upstreamEndpoint(registry: string): RegistryEndpoint {
    return this.endpoints(registry).find((e) => e.upstream)!
  }

  /**
   * Plain HTTP may carry credentials only to a host that speaks it by configuration: loopback, an
   * --insecure-registry host, or one whose hosts.toml names an http:// server.
   */
  private plainHttpAllowed(host: string): boolean {
    return isLoopbackHost(host) || (this.options.insecureRegistries ?? []).includes(host) || this.upstreamEndpoint(host).origin.startsWith('http:')
  }

  /**
   * The TLS setup for one request of `endpoint`. Its own host gets everything hosts.toml says;
   * another host (a token realm, blob storage after a redirect) gets its own settings, plus the
   * endpoint's CA on top of the system roots (a registry's operator often signs its auth server
   * too), never the endpoint's skip_verify or client certificate.
   */
  private agentFor(endpoint: RegistryEndpoint, url: URL) {
    if (url.host === originHost(endpoint.origin)) {
      return this.pool.get({
        ...(endpoint.ca ? {ca: [...endpoint.ca, ...rootCertificates]} : {}),
        ...(endpoint.clientCert ? {clientCert: endpoint.clientCert} : {}),
        skipVerify: endpoint.skipVerify,
      })
    }
    const own = this.upstreamEndpoint(url.host)
    const ca = [...(own.ca ?? []), ...(endpoint.ca ?? [])]
    return this.pool.get({
      ...(ca.length > 0 ? {ca: [...ca, ...rootCertificates]} : {}),
      ...(own.clientCert ? {clientCert: own.clientCert} : {}),
      skipVerify: own.skipVerify,
    })
  }

  private sendFor(endpoint: RegistryEndpoint, follow: boolean): Send {
    let pair = this.sends.get(endpoint)
    if (!pair) {
      const timeout = this.options.requestTimeoutMs
      const base = baseSender((url) => this.agentFor(endpoint, url), timeout === undefined ? undefined : {headersMs: timeout, bodyMs: timeout})
      pair = {follow: withRetry(withRedirects(base), this.retry), manual: withRetry(base, this.retry)}
      this.sends.set(endpoint, pair)
    }
    return follow ? pair.follow : pair.manual
  }

  /**
   * One registry call: picks endpoints (mirrors first for pulls), authorises, answers a 401 once,
   * and turns unexpected statuses into LazyErrors. The response body is the caller's to consume.
   */
  async call(c: RegistryCall): Promise<HttpResponse> {
    const all = this.endpoints(c.ref.registry)
    const candidates = all.filter((e) => e.capabilities.includes(c.capability) || (c.capability !== 'push' && e.upstream))
    // A URL the registry gave us belongs to the endpoint at its origin, if any (else it is another host).
    const list = c.url ? [all.find((e) => e.origin === c.url!.origin) ?? this.upstreamEndpoint(c.ref.registry)] : candidates.length === 0 ? [this.upstreamEndpoint(c.ref.registry)] : candidates
    let lastError: unknown
    for (const [i, endpoint] of list.entries()) {
      try {
        return await this.callEndpoint(endpoint, c)
      } catch (err) {
        lastError = err
        const fatal = err instanceof LazyError && (err.code === 'DIGEST_MISMATCH' || err.code === 'AUTH_FAILED')
        if (fatal || i === list.length - 1) throw err
      }
    }
    throw lastError
  }

  private async callEndpoint(endpoint: RegistryEndpoint, c: RegistryCall): Promise<HttpResponse> {
    const authHost = endpointAuthHost(endpoint, c.ref.registry)
    this.endpointOfAuthHost.set(authHost, endpoint)
    const scopes = [...(c.actions.length > 0 ? [repositoryScope(c.ref.repository, c.actions)] : []), ...(c.extraScopes ?? [])]
    let url: URL
    if (c.url) url = new URL(c.url)
    else url = new URL(`${endpoint.origin}${endpoint.apiPath}/${c.ref.repository}${c.path ?? ''}`)
    for (const [k, v] of Object.entries(c.query ?? {})) url.searchParams.set(k, v)
    // An upload Location or a `Link: next` may name another host: it gets neither the registry's
    // credentials nor its hosts.toml headers (as containerd drops the authorizer for such a host).
    const ownHost = url.origin === endpoint.origin
    const mayAuth = ownHost && !c.noAuth

    let sentAuth: string | undefined
    const send = async (): Promise<HttpResponse> => {
      const headers: Record<string, string> = {'user-agent': this.userAgent, ...(ownHost ? endpoint.headers : {}), ...(c.headers ?? {})}
      const auth = mayAuth && this.authorizer.knows(authHost) ? await this.authorizer.header(authHost, scopes) : undefined
      sentAuth = auth
      if (auth) headers.authorization = auth
      const req = {method: c.method, url, headers, body: c.body ? c.body() : null}
      try {
        return await this.sendFor(endpoint, c.followRedirects !== false)(req)
      } catch (err) {
        if (endpoint.httpFallback && url.protocol === 'https:' && isPlainHttpAnswer(err)) {
          // A loopback or --insecure-registry host that speaks plain HTTP: use http from now on.
          endpoint.origin = endpoint.origin.replace(/^https:/, 'http:')
          url.protocol = 'http:'
          return this.sendFor(endpoint, c.followRedirects !== false)({...req, url, body: c.body ? c.body() : null})
        }
        throw err
      }
    }

    let res = await send()
    if (res.statusCode === 401 && mayAuth && !c.ok.includes(401)) {
      const challenge = header(res.headers, 'www-authenticate')
      await res.body.dump()
      if (await this.authorizer.challenge(authHost, challenge, sentAuth)) res = await send()
    }
    if (c.ok.includes(res.statusCode)) return res
    let text = await readErrorBody(res)
    if (res.statusCode === 400 && text === '' && url.protocol === 'http:') {
      // A HEAD has no body to say why; a GET of the base tells an HTTPS server apart (see errors.ts).
      const probe = await this.sendFor(endpoint, false)({method: 'GET', url: new URL(`${endpoint.origin}${endpoint.apiPath}/`), headers: {'user-agent': this.userAgent}}).catch(() => undefined)
      if (probe) text = await readErrorBody(probe)
    }
    throw registryError(res.statusCode, text, {...c.error, host: ownHost ? authHost : url.host, hadCredentials: mayAuth && (await this.authorizer.hasCredentials(authHost))})
  }

  // ---- read path ----------------------------------------------------------------------------

  /** HEAD the manifest: its descriptor without the body (falls back to GET when HEAD lacks the digest). */
  async resolve(ref: ImageReference): Promise<Descriptor> {
    const target = referenceTarget(ref)
    const res = await this.call({
      method: 'HEAD',
      ref,
      path: `/manifests/${target}`,
      headers: {accept: MANIFEST_ACCEPT},
      actions: ['pull'],
      capability: 'resolve',
      ok: [200],
      error: {what: describeRef(ref), object: 'manifest'},
    })
    await res.body.dump()
    const digest = header(res.headers, 'docker-content-digest')
    const mediaType = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim()
    const size = Number(header(res.headers, 'content-length'))
    if (digest && isDigest(digest) && Number.isSafeInteger(size) && mediaType && (!ref.digest || ref.digest === digest)) {
      return {mediaType, digest, size}
    }
    return (await this.getManifest(ref)).descriptor
  }

  /**
   * GETs a manifest or index by the reference's digest (verified against it) or tag (verified
   * against Docker-Content-Digest when the registry sends one), and validates its shape.
   */
  async getManifest(ref: ImageReference, target: string = referenceTarget(ref)): Promise<FetchedManifest> {
    const what = target === referenceTarget(ref) ? describeRef(ref) : `${ref.registry}/${ref.repository}@${target}`
    const res = await this.call({
      method: 'GET',
      ref,
      path: `/manifests/${target}`,
      headers: {accept: MANIFEST_ACCEPT},
      actions: ['pull'],
      capability: 'pull',
      ok: [200],
      error: {what, object: 'manifest'},
    })
    const bytes = await readLimited(res, MAX_MANIFEST_SIZE, what)
    const sent = header(res.headers, 'docker-content-digest')
    let digest: Digest
    if (isDigest(target)) {
      verifyBuffer(bytes, target, what)
      digest = target
    } else if (sent && isDigest(sent)) {
      verifyBuffer(bytes, sent, what)
      digest = sent
    } else {
      digest = digestOf(bytes)
    }
    const parsed = parseManifest(bytes, header(res.headers, 'content-type'), what)
    return {descriptor: {mediaType: parsed.mediaType, digest, size: bytes.length}, bytes, parsed}
  }

  /** A blob as a stream that errors (DIGEST_MISMATCH) instead of ending if the bytes are wrong. */
  async getBlob(ref: ImageReference, descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<Readable> {
    const what = `blob ${short(descriptor.digest)} of ${ref.registry}/${ref.repository}`
    const res = await this.call({
      method: 'GET',
      ref,
      path: `/blobs/${descriptor.digest}`,
      headers: {'accept-encoding': 'identity'},
      actions: ['pull'],
      capability: 'pull',
      ok: [200],
      error: {what, object: 'blob'},
    })
    const verifier = new DigestVerifier(descriptor.digest, {size: descriptor.size, what})
    pipeline(res.body, verifier, () => undefined)
    return verifier
  }

  /** A small blob (config, TOC) read whole and verified. */
  async readBlob(ref: ImageReference, descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<Buffer> {
    if (descriptor.size > MAX_SMALL_BLOB) throw new LazyError('INTERNAL', `blob ${short(descriptor.digest)} is too large to read into memory`)
    const stream = await this.getBlob(ref, descriptor)
    const chunks: Buffer[] = []
    for await (const c of stream) chunks.push(c as Buffer)
    return Buffer.concat(chunks)
  }

  /** Size of a blob (HEAD), or undefined when the registry does not have it. */
  async blobSize(ref: ImageReference, digest: Digest): Promise<number | undefined> {
    const res = await this.call({
      method: 'HEAD',
      ref,
      path: `/blobs/${digest}`,
      actions: ['pull'],
      capability: 'pull',
      ok: [200, 404],
      error: {what: `blob ${short(digest)} of ${ref.registry}/${ref.repository}`, object: 'blob'},
    })
    await res.body.dump()
    if (res.statusCode === 404) return undefined
    const size = Number(header(res.headers, 'content-length'))
    return Number.isSafeInteger(size) ? size : undefined
  }

  /**
   * The last `length` bytes of a blob and its size, in one suffix-range request (`bytes=-N`)
   * instead of a HEAD and then a range read: an eStargz blob keeps its footer and TOC there.
   * undefined when the registry does not have the blob. `tail` is empty when the registry cannot
   * serve the range (416 on an empty blob); a registry that ignores Range (a 200) is an error.
   */
  async blobTail(ref: ImageReference, digest: Digest, length: number): Promise<{size: number; tail: Buffer} | undefined> {
    const what = `blob ${short(digest)} of ${ref.registry}/${ref.repository}`
    // Each further 200 would cost up to a whole blob before the client can hang up.
    if (this.ignoresRange.has(ref.registry)) throw ignoresRangeError(what)
    const res = await this.call({
      method: 'GET',
      ref,
      path: `/blobs/${digest}`,
      headers: {range: `bytes=-${length}`, 'accept-encoding': 'identity'},
      actions: ['pull'],
      capability: 'pull',
      ok: [200, 206, 404, 416],
      error: {what, object: 'blob'},
    })
    if (res.statusCode === 404) {
      await res.body.dump()
      return undefined
    }
    if (res.statusCode !== 206) {
      res.body.destroy()
      if (res.statusCode === 416) {
        const size = await this.blobSize(ref, digest)
        return size === undefined ? undefined : {size, tail: Buffer.alloc(0)}
      }
      // A 200 to a range request: the registry (or a proxy in front of it) ignores Range, so every
      // lazy read would download the blob again up to the part it wants. Not lazy, then: the layer
      // is downloaded once, in full, by the normal path.
      this.ignoresRange.add(ref.registry)
      throw ignoresRangeError(what)
    }
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec((header(res.headers, 'content-range') ?? '').trim())
    const [first, last, size] = range ? [Number(range[1]), Number(range[2]), Number(range[3])] : []
    if (first === undefined || last === undefined || size === undefined || last !== size - 1 || last - first + 1 > length) {
      await res.body.dump()
      throw new LazyError('REGISTRY', `${what}: asked for the last ${length} bytes, got Content-Range "${header(res.headers, 'content-range') ?? ''}"`)
    }
    const tail = await readLimited(res, length, what)
    if (tail.length !== last - first + 1) throw new LazyError('ESTARGZ_TRUNCATED', `${what}: the tail read ended after ${tail.length} of ${last - first + 1} bytes`)
    return {size, tail}
  }

  /** Random access to a blob by HTTP Range (the lazy filesystem's fetcher). */
  blobRangeSource(ref: ImageReference, digest: Digest, size: number, options: RangeSourceOptions = {}): RangeSource {
    return blobRangeSource(this, ref, digest, size, options)
  }

  // ---- write path ---------------------------------------------------------------------------

  async blobExists(ref: ImageReference, digest: Digest, actions: Array<'pull' | 'push'> = ['pull', 'push']): Promise<boolean> {
    const res = await this.call({
      method: 'HEAD',
      ref,
      path: `/blobs/${digest}`,
      actions,
      capability: 'push',
      ok: [200, 404],
      error: {what: `blob ${short(digest)} of ${ref.registry}/${ref.repository}`, object: 'blob'},
    })
    await res.body.dump()
    return res.statusCode === 200
  }

  /**
   * Uploads a blob unless the registry has it: cross-repository mount first when `mountFrom` is
   * given, else a streamed monolithic PUT (or chunked PATCHes with `chunkSize`). `open` is called
   * again for each attempt, so a transient failure restarts from a fresh stream.
   */
  async pushBlob(ref: ImageReference, descriptor: Pick<Descriptor, 'digest' | 'size'>, open: () => Readable | Promise<Readable>, options: PushBlobOptions = {}): Promise<PushBlobResult> {
    const what = `blob ${short(descriptor.digest)} to ${ref.registry}/${ref.repository}`
    if (!options.skipExistsCheck && (await this.blobExists(ref, descriptor.digest))) return 'exists'
    const chunkSize = options.chunkSize ?? this.options.uploadChunkSize
    for (let attempt = 1; ; attempt++) {
      let location: URL | undefined
      try {
        const start = await this.startUpload(ref, descriptor.digest, options.mountFrom, what)
        if (start === 'mounted') return 'mounted'
        location = start
        if (chunkSize && descriptor.size > chunkSize) await this.uploadChunked(ref, descriptor, location, await open(), chunkSize, what, options.onProgress)
        else await this.uploadMonolithic(ref, descriptor, location, await open(), what, options.onProgress, options.sourceVerified)
        return 'uploaded'
      } catch (err) {
        if (location) await this.cancelUpload(ref, location)
        const transient = err instanceof LazyError ? err.code === 'REGISTRY_UNREACHABLE' && isResetLike(err) : isResetLike(err)
        if (!transient || attempt >= this.retry.attempts) throw err
      }
    }
  }

  private async startUpload(ref: ImageReference, digest: Digest, mountFrom: string | undefined, what: string): Promise<URL | 'mounted'> {
    const mount = mountFrom && mountFrom !== ref.repository
    const res = await this.call({
      method: 'POST',
      ref,
      path: '/blobs/uploads/',
      query: mount ? {mount: digest, from: mountFrom} : {},
      headers: {'content-length': '0'},
      actions: ['pull', 'push'],
      ...(mount ? {extraScopes: [repositoryScope(mountFrom, ['pull'])]} : {}),
      capability: 'push',
      ok: [201, 202],
      error: {what, object: 'upload'},
    })
    await res.body.dump()
    if (res.statusCode === 201) return 'mounted'
    return uploadLocation(res, what)
  }

  private async uploadMonolithic(ref: ImageReference, d: Pick<Descriptor, 'digest' | 'size'>, location: URL, source: Readable, what: string, onProgress?: (n: number) => void, sourceVerified = false): Promise<void> {
    const url = new URL(location)
    url.searchParams.set('digest', d.digest)
    const body = counted(source, d.digest, d.size, what, onProgress, sourceVerified)
    let used = false
    const res = await this.call({
      method: 'PUT',
      ref,
      url,
      // The content type matters: distribution parses a form-encoded body for `digest` and fails.
      headers: {'content-type': 'application/octet-stream', 'content-length': String(d.size)},
      body: () => {
        if (used) throw new LazyError('AUTH_REQUIRED', `${ref.registry} asked to authenticate in the middle of an upload of ${what}`)
        used = true
        return body
      },
      actions: ['pull', 'push'],
      capability: 'push',
      ok: [201, 204],
      error: {what, object: 'upload'},
    })
    await res.body.dump()
  }

  private async uploadChunked(ref: ImageReference, d: Pick<Descriptor, 'digest' | 'size'>, location: URL, source: Readable, chunkSize: number, what: string, onProgress?: (n: number) => void): Promise<void> {
    let url = location
    let offset = 0
    const verified = counted(source, d.digest, d.size, what)
    for await (const chunk of chunksOf(verified, chunkSize)) {
      const res = await this.call({
        method: 'PATCH',
        ref,
        url,
        headers: {'content-type': 'application/octet-stream', 'content-length': String(chunk.length), 'content-range': `${offset}-${offset + chunk.length - 1}`},
        body: () => chunk,
        actions: ['pull', 'push'],
        capability: 'push',
        ok: [202],
        error: {what, object: 'upload'},
      })
      await res.body.dump()
      // distribution changes the `_state` query after every PATCH: always continue from the new Location.
      url = uploadLocation(res, what)
      offset += chunk.length
      onProgress?.(chunk.length)
    }
    const done = new URL(url)
    done.searchParams.set('digest', d.digest)
    const res = await this.call({
      method: 'PUT',
      ref,
      url: done,
      headers: {'content-type': 'application/octet-stream', 'content-length': '0'},
      body: () => Buffer.alloc(0),
      actions: ['pull', 'push'],
      capability: 'push',
      ok: [201, 204],
      error: {what, object: 'upload'},
    })
    await res.body.dump()
  }

  private async cancelUpload(ref: ImageReference, location: URL): Promise<void> {
    try {
      const res = await this.call({method: 'DELETE', ref, url: location, actions: ['pull', 'push'], capability: 'push', ok: [200, 202, 204, 404], error: {what: 'upload cancel', object: 'upload'}})
      await res.body.dump()
    } catch {
      // Best effort: an abandoned session expires on the registry anyway.
    }
  }

  /**
   * PUTs a manifest under a tag or its digest and returns its digest. When it has a `subject` and
   * the registry did not confirm with OCI-Subject, the referrers fallback tag is updated too.
   */
  async putManifest(ref: ImageReference, bytes: Buffer, mediaType: string, target: string = referenceTarget(ref)): Promise<Digest> {
    const digest = digestOf(bytes)
    const what = `manifest ${short(digest)} to ${ref.registry}/${ref.repository}:${target}`
    const res = await this.call({
      method: 'PUT',
      ref,
      path: `/manifests/${target}`,
      headers: {'content-type': mediaType, 'content-length': String(bytes.length)},
      body: () => bytes,
      actions: ['pull', 'push'],
      capability: 'push',
      ok: [200, 201, 204],
      error: {what, object: 'manifest'},
    })
    await res.body.dump()
    const sent = header(res.headers, 'docker-content-digest')
    if (sent && isDigest(sent) && sent !== digest) throw new LazyError('DIGEST_MISMATCH', `${what}: registry stored it as ${short(sent)}`)
    const subject = manifestSubject(bytes)
    if (subject && !header(res.headers, 'oci-subject')) await this.addFallbackReferrer(ref, subject, {mediaType, digest, size: bytes.length}, bytes)
    return digest
  }

  /** Every tag of the repository, following `Link: <…>; rel="next"` pages. */
  async listTags(ref: ImageReference): Promise<string[]> {
    const tags: string[] = []
    let url: URL | undefined
    let query: Record<string, string> | undefined = {n: '1000'}
    for (let page = 0; page < 10_000; page++) {
      const res = await this.call({
        method: 'GET',
        ref,
        ...(url ? {url} : {path: '/tags/list', query: query ?? {}}),
        actions: ['pull'],
        capability: 'pull',
        ok: [200],
        error: {what: `tags of ${ref.registry}/${ref.repository}`, object: 'tags'},
      })
      const json = JSON.parse((await readLimited(res, 16 << 20, 'tags list')).toString('utf8')) as {tags?: string[] | null}
      tags.push(...(json.tags ?? []))
      const next = nextLink(headerAll(res.headers, 'link'), res.url)
      if (!next) break
      url = next
      query = undefined
    }
    return tags
  }

  /**
   * Referrers of `digest` (OCI 1.1): the API when the registry has it, else the fallback tag
   * `sha256-<hex>` (distribution 2.8 has no referrers route and answers 404).
   */
  async referrers(ref: ImageReference, digest: Digest, artifactType?: string): Promise<Descriptor[]> {
    const res = await this.call({
      method: 'GET',
      ref,
      path: `/referrers/${digest}`,
      ...(artifactType ? {query: {artifactType}} : {}),
      headers: {accept: MEDIA_TYPE_OCI_INDEX},
      actions: ['pull'],
      capability: 'pull',
      ok: [200, 404],
      error: {what: `referrers of ${short(digest)}`, object: 'referrers'},
    })
    let list: Descriptor[]
    let filtered = false
    const type = (header(res.headers, 'content-type') ?? '').split(';')[0]
    if (res.statusCode === 200 && type === MEDIA_TYPE_OCI_INDEX) {
      const json = JSON.parse((await readLimited(res, MAX_MANIFEST_SIZE, 'referrers')).toString('utf8')) as ImageIndex
      list = (json.manifests ?? []).map((m, i) => checkDescriptor(m, `referrers[${i}]`))
      filtered = (header(res.headers, 'oci-filters-applied') ?? '').includes('artifactType')
    } else {
      await res.body.dump()
      list = (await this.fallbackReferrers(ref, digest))?.manifests ?? []
    }
    return artifactType && !filtered ? list.filter((d) => d.artifactType === artifactType) : list
  }

  private async fallbackReferrers(ref: ImageReference, digest: Digest): Promise<ImageIndex | undefined> {
    try {
      const got = await this.getManifest(ref, referrersTag(digest))
      return got.parsed.kind === 'index' ? got.parsed.index : undefined
    } catch (err) {
      // No tag, or a tag that is not an index: no referrers (as the spec says).
      if (err instanceof LazyError && (err.code === 'MANIFEST_UNKNOWN' || err.code === 'UNSUPPORTED_MEDIA_TYPE' || err.code === 'NOT_FOUND')) return undefined
      throw err
    }
  }

  private async addFallbackReferrer(ref: ImageReference, subject: Digest, descriptor: Descriptor, bytes: Buffer): Promise<void> {
    const index: ImageIndex = (await this.fallbackReferrers(ref, subject)) ?? {schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: []}
    if (index.manifests.some((m) => m.digest === descriptor.digest)) return
    const json = JSON.parse(bytes.toString('utf8')) as {artifactType?: string; config?: {mediaType?: string}; annotations?: Record<string, string>}
    const entry: Descriptor = {...descriptor}
    const artifactType = json.artifactType ?? json.config?.mediaType
    if (artifactType) entry.artifactType = artifactType
    if (json.annotations) entry.annotations = json.annotations
    index.manifests.push(entry)
    index.mediaType = MEDIA_TYPE_OCI_INDEX
    const body = Buffer.from(JSON.stringify(index))
    await this.putManifest(ref, body, MEDIA_TYPE_OCI_INDEX, referrersTag(subject))
  }

  /** Checks that the registry accepts the configured credentials (GET /v2/ through the auth flow). */
  async checkAuth(ref: ImageReference): Promise<void> {
    const res = await this.call({
      method: 'GET',
      ref: {...ref, repository: ''},
      path: '',
      actions: [],
      capability: 'push',
      ok: [200],
      error: {what: `${ref.registry}/v2/`, object: 'base'},
    })
    await res.body.dump()
  }
}

/** The referrers fallback tag of a digest: `<alg>-<hex>`, truncated as the spec says. */
export function referrersTag(digest: Digest): string {
  const [alg, hex] = digest.split(':') as [string, string]
  return `${alg.slice(0, 32)}-${hex.slice(0, 64)}`.replace(/[^a-zA-Z0-9._-]/g, '-')
}

function manifestSubject(bytes: Buffer): Digest | undefined {
  try {
    const s = (JSON.parse(bytes.toString('utf8')) as {subject?: {digest?: string}}).subject?.digest
    return s && isDigest(s) ? s : undefined
  } catch {
    return undefined
  }
}

function uploadLocation(res: HttpResponse, what: string): URL {
  const loc = header(res.headers, 'location')
  if (!loc) throw new LazyError('REGISTRY', `${what}: registry gave no upload Location`)
  const url = new URL(loc, res.url)
  checkRedirect(res.url, url)
  return url
}

function nextLink(links: string[], base: URL): URL | undefined {
  for (const l of links) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(l)
    if (!m) continue
    const url = new URL(m[1]!, base)
    checkRedirect(base, url)
    return url
  }
  return undefined
}

export function describeRef(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${short(ref.digest)}` : ''}`
}

async function readLimited(res: HttpResponse, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let total = 0
  for await (const chunk of res.body) {
    total += (chunk as Buffer).length
    if (total > limit) {
      res.body.destroy()
      throw new LazyError('REGISTRY', `${what}: larger than ${limit} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** Source → digest check (unless already verified) → progress counter. The registry checks the digest too; we fail first. */
function counted(source: Readable, digest: Digest, size: number, what: string, onProgress?: (n: number) => void, sourceVerified = false): Readable {
  const stages: Array<Readable | Transform> = [source]
  if (!sourceVerified) stages.push(new DigestVerifier(digest, {size, what}))
  if (onProgress) {
    stages.push(
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          onProgress(chunk.length)
          cb(null, chunk)
        },
      }),
    )
  }
  if (stages.length === 1) return source
  pipeline(stages as unknown as [Readable, Transform], () => undefined)
  return stages[stages.length - 1] as Readable
}

/** Re-chunks a stream into buffers of exactly `size` bytes (the last may be shorter). Memory: one chunk. */
async function* chunksOf(source: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = []
  let have = 0
  for await (const c of source) {
    let buf = c as Buffer
    while (buf.length > 0) {
      const take = Math.min(size - have, buf.length)
      parts.push(buf.subarray(0, take))
      have += take
      buf = buf.subarray(take)
      if (have === size) {
        yield Buffer.concat(parts)
        parts = []
        have = 0
      }
    }
  }
  if (have > 0) yield Buffer.concat(parts)
}

function isResetLike(err: unknown): boolean {
  let e = err as {code?: string; cause?: unknown} | undefined
  for (let i = 0; e && i < 4; i++) {
    if (e.code && ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'].includes(e.code)) return true
    e = e.cause as typeof e
  }
  return false
}

