// The token endpoint of the rig's token-auth registry, running inside the test process
// (node:http or node:https). It implements the Docker token flow (docs/spec/auth/token.md of
// distribution): GET <realm>?service=S&scope=repository:NAME:pull,push[&scope=...] with optional
// Basic credentials, and the OAuth2 form POST (grant_type=password). It answers with a real JWT
// signed by a key whose certificate chains to the CA the registry trusts.
//
// Why `x5c` and not `kid`: docker-registry 2.8 accepts either. With `x5c` it verifies the signing
// certificate against `rootcertbundle` (a real chain check: a token signed by any other key fails),
// and the JOSE header is self-describing. `kid` would require reimplementing libtrust's key-ID
// format (base32 of a truncated SHA-256 of the key) and trusting the key itself as a root.
import {createServer as createHttpServer, type IncomingMessage, type ServerResponse, type Server} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import {createPrivateKey, randomUUID, sign, type KeyObject} from 'node:crypto'
import type {IssuedCert, JwtSigner} from './tls.js'

export interface TokenScope {
  type: string
  name: string
  actions: string[]
}

/** Decides what a user gets for one requested scope; return the granted actions (may be empty). */
export type GrantPolicy = (username: string | undefined, scope: TokenScope) => string[]

export interface TokenServerOptions {
  /** username → password accepted in Basic auth or the OAuth2 password grant. */
  users: Record<string, string>
  /** The registry's `auth.token.service`; must match the `service` query parameter. */
  service: string
  /** The registry's `auth.token.issuer` (the JWT `iss`). */
  issuer: string
  signer: JwtSigner
  /** Serve HTTPS with this certificate; plain HTTP when absent. */
  tls?: IssuedCert
  /** `expires_in` of issued tokens, seconds. Default 300 (like Docker Hub). */
  expiresInSeconds?: number
  /** Repositories anonymous clients may pull. Default none (anonymous tokens carry no access). */
  anonymousPull?: string[]
}

export interface IssuedToken {
  username?: string
  requested: TokenScope[]
  granted: TokenScope[]
  via: 'GET' | 'POST'
  time: number
}

export interface TokenServer {
  /** The realm URL registries put in their challenge. */
  realm: string
  /** Number of tokens issued so far (tests use it to prove clients reuse tokens). */
  readonly tokensIssued: number
  /** Every token issued, in order. */
  readonly issued: readonly IssuedToken[]
  /** Requests refused with 401 (wrong or missing credentials where required). */
  readonly refused: number
  /**
   * Refuses an action from now on: e.g. `deny({repository: 'demo', action: 'push'})`. Denied
   * actions are left out of the token (not an error, as real token servers do); the registry then
   * answers 401/403.
   */
  deny(rule: {repository?: string; action?: string; username?: string}): void
  /** Replaces the grant policy (default: a known user gets every action requested, minus denials). */
  setPolicy(policy: GrantPolicy): void
  /** Forgets denials and the custom policy. */
  reset(): void
  stop(): Promise<void>
}

export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const signingKey = createPrivateKey(options.signer.keyPem)
  const expiresIn = options.expiresInSeconds ?? 300
  const issued: IssuedToken[] = []
  let refused = 0
  let denials: {repository?: string; action?: string; username?: string}[] = []
  const defaultPolicy: GrantPolicy = (username, scope) => {
    if (username === undefined) {
      return scope.type === 'repository' && options.anonymousPull?.includes(scope.name) ? scope.actions.filter((a) => a === 'pull') : []
    }
    return scope.actions
  }
  let policy = defaultPolicy

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token.invalid')
    let username: string | undefined
    let password: string | undefined
    let service = url.searchParams.get('service') ?? undefined
    let scopes = url.searchParams.getAll('scope')
    let via: 'GET' | 'POST' = 'GET'
    if (req.method === 'POST') {
      via = 'POST'
      const form = new URLSearchParams(await readBody(req))
      if (form.get('grant_type') !== 'password') return sendJson(res, 400, {error: 'unsupported_grant_type'})
      username = form.get('username') ?? undefined
      password = form.get('password') ?? ''
      service = form.get('service') ?? undefined
      scopes = (form.get('scope') ?? '').split(' ').filter(Boolean)
    } else if (req.method === 'GET') {
      const basic = parseBasic(req.headers.authorization)
      if (basic) [username, password] = basic
    } else {
      return sendJson(res, 405, {error: 'method not allowed'})
    }
    if (service !== options.service) return sendJson(res, 400, {error: 'invalid_request', error_description: `unknown service ${service}`})
    if (username !== undefined && options.users[username] !== password) {
      refused++
      res.setHeader('WWW-Authenticate', 'Basic realm="lazyctl-rig-token"')
      return sendJson(res, 401, {errors: [{code: 'UNAUTHORIZED', message: 'wrong username or password'}]})
    }
    const requested = scopes.map(parseScope).filter((s): s is TokenScope => s !== undefined)
    const granted = requested
      .map((scope) => ({
        ...scope,
        actions: policy(username, scope).filter((action) => !denials.some((d) =>
          (d.repository === undefined || d.repository === scope.name)
          && (d.action === undefined || d.action === action)
          && (d.username === undefined || d.username === username))),
      }))
      .filter((scope) => scope.actions.length > 0)
    const now = Math.floor(Date.now() / 1000)
    const token = signJwt(signingKey, options.signer, {
      iss: options.issuer,
      sub: username ?? '',
      aud: options.service,
      exp: now + expiresIn,
      // A little leeway before now: the registry rejects tokens from the future.
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access: granted,
    })
    issued.push({username, requested, granted, via, time: Date.now()})
    sendJson(res, 200, {token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString()})
  }

  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => sendJson(res, 500, {error: String(err)}))
  }
  const server: Server = options.tls
    ? createHttpsServer({cert: options.tls.certPem, key: options.tls.keyPem}, listener)
    : createHttpServer(listener)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const address = server.address()
  if (!address || typeof address === 'string') throw new Error('token server has no TCP address')
  const realm = `${options.tls ? 'https' : 'http'}://127.0.0.1:${address.port}/token`
  return {
    realm,
    get tokensIssued() {
      return issued.length
    },
    get issued() {
      return issued
    },
    get refused() {
      return refused
    },
    deny(rule) {
      denials.push(rule)
    },
    setPolicy(next) {
      policy = next
    },
    reset() {
      denials = []
      policy = defaultPolicy
    },
    stop() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
    },
  }
}

/** `repository:name:pull,push` → parts; the name may hold a `host:port/`, so split at the ends. */
export function parseScope(scope: string): TokenScope | undefined {
  const first = scope.indexOf(':')
  const last = scope.lastIndexOf(':')
  if (first < 0 || last <= first) return undefined
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope.slice(last + 1).split(',').filter(Boolean),
  }
}

function signJwt(key: KeyObject, signer: JwtSigner, claims: Record<string, unknown>): string {
  const header = {typ: 'JWT', alg: signer.alg, x5c: [signer.certDerBase64]}
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`
  // JWS ES256 wants the raw r||s signature (IEEE P1363), not DER.
  const signature = sign('sha256', Buffer.from(signingInput), {key, dsaEncoding: 'ieee-p1363'})
  return `${signingInput}.${base64url(signature)}`
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url')
}

function parseBasic(header: string | undefined): [string, string] | undefined {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? '')
  if (!m) return undefined
  const decoded = Buffer.from(m[1], 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  return [decoded.slice(0, colon), decoded.slice(colon + 1)]
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, {'content-type': 'application/json'})
  res.end(JSON.stringify(body))
}
