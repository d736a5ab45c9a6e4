// A private OCI registry for one test file: Debian's docker-registry 2.8 (`docker-registry serve
// CONFIG`) on a free loopback port with its own storage dir. Three auth modes, all real:
//   - none: plain HTTP, anonymous;
//   - htpasswd: Basic auth against a bcrypt htpasswd file (normally over TLS with a test CA);
//   - token: Bearer tokens the registry verifies against a test CA (see token-server.ts).
// What the registry really sent is read back from its own JSON log: every response is logged
// with `http.response.written`, which is what bytesServed() sums (not the client's claims).
import {copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {execFileSync} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {request as httpRequest, type IncomingMessage} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {requireCommand, startService, waitUntilReady, type ServiceProcess} from './process.js'
import {removeDir, rigTempDir} from './tmp.js'
import {freePort} from './ports.js'
import {createTestCa, type TestCa} from './tls.js'
import {startTokenServer, type TokenServer, type TokenServerOptions} from './token-server.js'

export type RegistryAuthMode = 'none' | 'htpasswd' | 'token'

export interface RegistryOptions {
  /** Default 'none'. */
  auth?: RegistryAuthMode
  /** Serve HTTPS with a certificate from a CA generated for this registry. Default false. */
  tls?: boolean
  /** Credentials accepted by htpasswd or by the token server. Default `tester` / a random password. */
  username?: string
  password?: string
  /** More accounts (username → password), for tests with several users. */
  extraUsers?: Record<string, string>
  /** Token mode only: options of the token endpoint (extra users, denials, lifetime). */
  tokenServer?: Omit<TokenServerOptions, 'users' | 'service' | 'issuer' | 'signer' | 'tls'>
  /** `http.relativeurls`: Location headers relative instead of absolute. Default false. */
  relativeUrls?: boolean
}

/**
 * One request as the registry logged it. The 2.8 log has no request headers; the byte range a
 * blob GET was served from is recovered from the storage driver's debug trace instead (below).
 */
export interface RegistryRequest {
  method: string
  /** Request URI as sent (path and query). */
  uri: string
  path: string
  status: number
  /** Response body bytes the registry wrote (what reached the socket, also for aborted reads). */
  written: number
  /** A 206 answer: the request carried a satisfiable Range. */
  ranged: boolean
  /** Offsets at which the registry opened blob data for this request (storage driver trace). */
  readOffsets: number[]
  /** For a single-range 206: the bytes served, inclusive (first read offset + bytes written). */
  range?: {start: number; end: number}
  /** The registry's request id (joins the request's log lines). */
  id: string
  /**
   * Upload body bytes this request added to a blob upload session (PATCH/PUT), from the upload's
   * saved hash states: the registry saves one named after the session's total length after each
   * write, so the growth within this request is what it received. 0 for everything else.
   */
  received: number
  /** The upload session (`vars.uuid`) of an upload request. */
  uploadId?: string
  /** For upload requests: the digest the session was committed as (`?digest=` of its final PUT). */
  uploadDigest?: string
  userAgent: string
  /** Set for /v2/<name>/(blobs|manifests|tags)/... paths. */
  repository?: string
  kind: 'base' | 'blob' | 'upload' | 'manifest' | 'tags' | 'other'
  /** Digest (blobs) or tag/digest (manifests). */
  reference?: string
  time: string
}

export interface BytesServedFilter {
  repository?: string
  /** A blob or manifest digest (sha256:...). */
  digest?: string
  /** Only this method (e.g. 'GET'); default all methods. */
  method?: string
}

export interface RegistryRig {
  /** `127.0.0.1:PORT`, the host part of image references. */
  host: string
  /** `http(s)://127.0.0.1:PORT`. */
  url: string
  auth: RegistryAuthMode
  tls: boolean
  /** TLS only: the PEM CA that signed the server certificate. */
  caFile?: string
  /**
   * TLS only: `<hostsDir>/<host>/`, holding `ca.crt` and a `hosts.toml` naming it — what
   * containerd's certs.d/<host>/ and skopeo's --*-cert-dir expect.
   */
  certDir?: string
  /** TLS only: a containerd-style hosts dir (`--hosts-dir`) with this registry's `<host>/` entry. */
  hostsDir?: string
  ca?: TestCa
  username?: string
  password?: string
  tokenServer?: TokenServer
  storageDir: string
  dir: string
  configFile: string
  process: ServiceProcess
  /** The registry's raw log so far. */
  log(): string
  /**
   * Every request the registry has logged, including all that completed before this call (a
   * fence request is sent and awaited in the log, so no completed request is missed).
   */
  requests(): Promise<RegistryRequest[]>
  /** Sum of response body bytes the registry wrote, optionally narrowed. */
  bytesServed(filter?: BytesServedFilter): Promise<number>
  /**
   * Sum of blob upload bytes the registry received (see RegistryRequest.received), optionally for
   * one repository or one committed digest: a cross-repository mount or a skipped upload counts 0.
   */
  bytesReceived(filter?: Omit<BytesServedFilter, 'method'>): Promise<number>
  /**
   * Where the registry keeps a blob's bytes (filesystem driver layout). Tests overwrite it to make
   * the registry serve bytes that do not match their digest.
   */
  blobFile(digest: string): string
  /** Stops the registry process but keeps its port, config and storage (the registry is unreachable). */
  halt(): Promise<void>
  /** Starts it again after halt(), same port and content; resolves when GET /v2/ answers. */
  resume(): Promise<void>
  /** Stops everything and removes the rig dir. */
  stop(): Promise<void>
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RegistryRig> {
  requireCommand('docker-registry', 'docker-registry')
  const auth = options.auth ?? 'none'
  const tls = options.tls ?? false
  const dir = rigTempDir('registry')
  const storageDir = join(dir, 'storage')
  const port = await freePort()
  const host = `127.0.0.1:${port}`
  const url = `${tls ? 'https' : 'http'}://${host}`
  const username = auth === 'none' ? undefined : (options.username ?? 'tester')
  const password = auth === 'none' ? undefined : (options.password ?? `pw-${randomUUID()}`)
  let ca: TestCa | undefined
  let tokenServer: TokenServer | undefined
  let svc: ServiceProcess | undefined
  try {
    const http: Record<string, unknown> = {
      addr: host,
      // A fixed secret keeps upload `_state` tokens valid across a restart of the same rig.
      secret: randomUUID(),
      relativeurls: options.relativeUrls ?? false,
      headers: {'X-Content-Type-Options': ['nosniff']},
    }
    if (tls || auth === 'token') ca = createTestCa(join(dir, 'ca'))
    if (tls && ca) {
      const server = ca.issue('registry', {dnsNames: ['localhost'], ipAddresses: ['127.0.0.1']})
      http.tls = {certificate: server.certFile, key: server.keyFile}
    }
    const config: Record<string, unknown> = {
      version: 0.1,
      // debug: the storage driver then traces `filesystem.Reader(path, offset)`, the only place
      // the 2.8 log shows where a ranged blob read started.
      log: {level: 'debug', formatter: 'json', accesslog: {disabled: true}},
      storage: {filesystem: {rootdirectory: storageDir}, delete: {enabled: true}, redirect: {disable: true}},
      http,
    }
    if (auth === 'htpasswd') {
      const htpasswdFile = join(dir, 'htpasswd')
      const accounts = Object.entries({...options.extraUsers, [username!]: password!})
      writeFileSync(htpasswdFile, accounts.map(([user, pass]) => bcryptHtpasswdLine(user, pass)).join(''), {mode: 0o600})
      config.auth = {htpasswd: {realm: 'lazyctl-rig', path: htpasswdFile}}
    }
    if (auth === 'token' && ca) {
      const service = `lazyctl-rig-registry-${port}`
      const issuer = 'lazyctl-rig-token-issuer'
      const signer = ca.issueSigner('token-signer')
      tokenServer = await startTokenServer({
        ...options.tokenServer,
        users: {...options.extraUsers, [username!]: password!},
        service,
        issuer,
        signer,
        tls: tls ? ca.issue('token-server', {dnsNames: ['localhost'], ipAddresses: ['127.0.0.1']}) : undefined,
      })
      config.auth = {
        token: {realm: tokenServer.realm, service, issuer, rootcertbundle: signer.rootCertFile},
      }
    }
    let certDir: string | undefined
    if (tls && ca) {
      certDir = join(dir, 'certs.d', host)
      mkdirSync(certDir, {recursive: true})
      copyFileSync(ca.caFile, join(certDir, 'ca.crt'))
      writeFileSync(join(certDir, 'hosts.toml'), [
        `server = "${url}"`,
        '',
        `[host."${url}"]`,
        '  capabilities = ["pull", "resolve", "push"]',
        `  ca = ${JSON.stringify(join(certDir, 'ca.crt'))}`,
      ].join('\n') + '\n')
    }
    // YAML is a superset of JSON, so the config needs no YAML writer.
    const configFile = join(dir, 'config.yml')
    writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n')
    const logFile = join(dir, 'registry.log')
    const launch = async (): Promise<ServiceProcess> => {
      const started = startService('registry', 'docker-registry', ['serve', configFile], {logFile})
      svc = started
      await waitUntilReady(started, `GET ${url}/v2/ answering`, async () => {
        const status = await getStatus(`${url}/v2/`, ca?.caPem)
        // 401 is the ready answer of an auth-enabled registry.
        return status === 200 || status === 401
      })
      return started
    }
    let current = await launch()
    let halted = false
    const readLog = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '')
    const requests = async (): Promise<RegistryRequest[]> => {
      if (halted) return parseRegistryLog(readLog()).filter((r) => !r.uri.includes('lazyctl-rig-fence='))
      const fence = randomUUID()
      await getStatus(`${url}/v2/?lazyctl-rig-fence=${fence}`, ca?.caPem)
      await waitUntilReady(current, 'the fence request in its log', async () => readLog().includes(fence), 10_000)
      return parseRegistryLog(readLog()).filter((r) => !r.uri.includes('lazyctl-rig-fence='))
    }
    const stopTokenServer = tokenServer
    return {
      host,
      url,
      auth,
      tls,
      caFile: tls ? ca?.caFile : undefined,
      certDir,
      hostsDir: certDir ? dirname(certDir) : undefined,
      ca,
      username,
      password,
      tokenServer,
      storageDir,
      dir,
      configFile,
      get process() {
        return current
      },
      log: readLog,
      requests,
      async bytesServed(filter = {}) {
        return (await requests())
          .filter((r) => (filter.repository === undefined || r.repository === filter.repository)
            && (filter.digest === undefined || r.reference === filter.digest)
            && (filter.method === undefined || r.method === filter.method.toUpperCase()))
          .reduce((sum, r) => sum + r.written, 0)
      },
      async bytesReceived(filter = {}) {
        return (await requests())
          .filter((r) => (filter.repository === undefined || r.repository === filter.repository)
            && (filter.digest === undefined || r.uploadDigest === filter.digest))
          .reduce((sum, r) => sum + r.received, 0)
      },
      blobFile(digest) {
        const [algorithm, hex] = digest.split(':')
        return join(storageDir, 'docker/registry/v2/blobs', algorithm, hex.slice(0, 2), hex, 'data')
      },
      async halt() {
        halted = true
        await current.stop()
      },
      async resume() {
        if (!halted) return
        current = await launch()
        halted = false
      },
      async stop() {
        await current.stop()
        await stopTokenServer?.stop()
        removeDir(dir)
      },
    }
  } catch (err) {
    await svc?.stop()
    await tokenServer?.stop()
    removeDir(dir)
    throw err
  }
}

/** `user:$2y$...` via apache2-utils' htpasswd (bcrypt, the only hash docker-registry accepts). */
function bcryptHtpasswdLine(username: string, password: string): string {
  requireCommand('htpasswd', 'apache2-utils')
  // -i reads the password from stdin so it never shows in a process list.
  return execFileSync('htpasswd', ['-niB', '-C', '5', username], {input: password, encoding: 'utf8'})
}

/**
 * Parses docker-registry's JSON log into the requests it answered: the `response completed` lines,
 * plus the `error authorizing context` lines. 2.8 answers an auth challenge (401) without logging a
 * response line, so those requests appear with status 401 and `written: 0` — their body is a
 * short JSON error the log does not size, never blob or manifest bytes.
 */
export function parseRegistryLog(log: string): RegistryRequest[] {
  const out: RegistryRequest[] = []
  const readOffsets = new Map<string, number[]>()
  // Per upload session: its length so far; per request: the highest length it saved.
  const sessionLength = new Map<string, number>()
  const requestLength = new Map<string, number>()
  const uploadOf = new Map<string, string>()
  const committedAs = new Map<string, string>()
  for (const line of log.split('\n')) {
    const completed = line.includes('"http.response.status"')
    const challenged = line.includes('"msg":"error authorizing context')
    const blobRead = line.includes('"msg":"filesystem.Reader(')
    const hashState = line.includes('/hashstates/')
    if (!line.startsWith('{') || !(completed || challenged || blobRead || hashState)) continue
    let entry: Record<string, unknown>
    try {
      entry = JSON.parse(line) as Record<string, unknown>
    } catch {
      continue // a line cut by a crash
    }
    const id = String(entry['http.request.id'] ?? '')
    const uploadId = entry['vars.uuid'] === undefined ? undefined : String(entry['vars.uuid'])
    if (uploadId && id) uploadOf.set(id, uploadId)
    if (hashState) {
      const m = /^filesystem\.PutContent\("[^"]*\/_uploads\/[^/"]+\/hashstates\/[^/"]+\/(\d+)"\)$/.exec(String(entry.msg))
      if (m && id) requestLength.set(id, Math.max(requestLength.get(id) ?? 0, Number(m[1])))
      continue
    }
    if (blobRead) {
      const m = /^filesystem\.Reader\("[^"]*\/blobs\/[^"]*\/data", (\d+)\)$/.exec(String(entry.msg))
      if (m && id) readOffsets.set(id, [...(readOffsets.get(id) ?? []), Number(m[1])])
      continue
    }
    const uri = String(entry['http.request.uri'] ?? '')
    const path = uri.split('?')[0]
    const status = completed ? Number(entry['http.response.status']) : 401
    const written = Number(entry['http.response.written'] ?? 0)
    const offsets = readOffsets.get(id) ?? []
    const session = uploadOf.get(id)
    let received = 0
    if (session !== undefined && requestLength.has(id)) {
      const before = sessionLength.get(session) ?? 0
      const after = requestLength.get(id)!
      received = Math.max(0, after - before)
      sessionLength.set(session, Math.max(before, after))
    }
    const committedDigest = new URLSearchParams(uri.split('?')[1] ?? '').get('digest')
    if (session !== undefined && committedDigest) committedAs.set(session, committedDigest)
    out.push({
      received,
      ...(session !== undefined ? {uploadId: session} : {}),
      id,
      readOffsets: offsets,
      ...(status === 206 && offsets.length === 1 && written > 0 ? {range: {start: offsets[0], end: offsets[0] + written - 1}} : {}),
      method: String(entry['http.request.method'] ?? ''),
      uri,
      path,
      status,
      ranged: status === 206,
      written,
      userAgent: String(entry['http.request.useragent'] ?? ''),
      time: String(entry.time ?? ''),
      ...classifyPath(path),
    })
  }
  // A session's digest is known only once its final PUT is logged; label its earlier PATCHes too.
  for (const r of out) if (r.uploadId !== undefined && committedAs.has(r.uploadId)) r.uploadDigest = committedAs.get(r.uploadId)
  return out
}

function classifyPath(path: string): Pick<RegistryRequest, 'kind' | 'repository' | 'reference'> {
  if (path === '/v2/' || path === '/v2') return {kind: 'base'}
  const m = /^\/v2\/(.+)\/(blobs\/uploads|blobs|manifests|tags)\/?(.*)$/.exec(path)
  if (!m) return {kind: 'other'}
  const [, repository, what, rest] = m
  const reference = rest ? decodeURIComponent(rest) : undefined
  switch (what) {
    case 'blobs/uploads':
      return {kind: 'upload', repository}
    case 'blobs':
      return {kind: 'blob', repository, reference}
    case 'manifests':
      return {kind: 'manifest', repository, reference}
    default:
      return {kind: 'tags', repository}
  }
}

/** Status of a GET, or 0 when nothing answers; trusts `caPem` for https. */
function getStatus(url: string, caPem?: string): Promise<number> {
  return new Promise((resolve) => {
    const onResponse = (res: IncomingMessage): void => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(0))
    }
    const headers = {'user-agent': 'lazyctl-rig'}
    const req = url.startsWith('https:') ? httpsRequest(url, {ca: caPem, headers, agent: false}, onResponse) : httpRequest(url, {headers, agent: false}, onResponse)
    req.on('error', () => resolve(0))
    req.end()
  })
}
