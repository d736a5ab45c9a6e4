// Registry authentication: WWW-Authenticate challenges (Basic and Bearer), the token flow (GET with
// optional Basic, or the OAuth2 refresh-token POST), and a token cache keyed by host and scopes
// so one token serves every request it covers until it expires.
import {LazyError} from '../cli/errors.js'
import type {Credential, CredentialStore} from './credentials.js'
import {readErrorBody} from './errors.js'
import type {Send} from './http.js'

export interface Challenge {
  scheme: 'basic' | 'bearer'
  params: Record<string, string>
}

/** Parses a WWW-Authenticate value (RFC 7235 auth-params; quoted strings may hold commas). */
export function parseChallenges(value: string): Challenge[] {
  const out: Challenge[] = []
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y
  let i = 0
  while (i < value.length) {
    re.lastIndex = i
    const m = re.exec(value)
    if (!m) break
    const scheme = m[1]!.toLowerCase()
    i = re.lastIndex
    const params: Record<string, string> = {}
    const param = /\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*(,)?/y
    for (;;) {
      param.lastIndex = i
      const p = param.exec(value)
      if (!p) break
      params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '')
      i = param.lastIndex
      if (!p[4]) break
    }
    if (scheme === 'basic' || scheme === 'bearer') out.push({scheme, params})
    while (i < value.length && (value[i] === ',' || value[i] === ' ')) i++
  }
  return out
}

/** `repository:<name>:<actions>`; actions are merged per repository. */
export function repositoryScope(repository: string, actions: Array<'pull' | 'push'>): string {
  return `repository:${repository}:${[...new Set(actions)].sort().join(',')}`
}

interface CachedToken {
  token: string
  expiresAt: number
}

export interface AuthorizerOptions {
  credentials: CredentialStore
  /** Sends requests to token realms for `registry` (shares the client's pools, retries and redirects). */
  send: (request: Parameters<Send>[0], registry: string) => ReturnType<Send>
  userAgent: string
  /**
   * Whether a token realm at this host may receive credentials over plain HTTP (the host speaks
   * HTTP by configuration); `authHost` is the registry or mirror whose challenge named the realm.
   */
  plainHttpAllowed?: (host: string, authHost: string) => boolean
  /** Clock, for tests of expiry. */
  now?: () => number
}

/**
 * Knows, per registry, which challenge it answered with, and produces the Authorization header
 * for a request with given scopes. Token fetches for the same key are shared while in flight.
 */
export class Authorizer {
  private readonly challenges = new Map<string, Challenge>()
  private readonly tokens = new Map<string, Promise<CachedToken>>()
  private readonly now: () => number
  /** How many tokens this authorizer fetched from token endpoints (for tests and stats). */
  tokensFetched = 0

  constructor(private readonly options: AuthorizerOptions) {
    this.now = options.now ?? Date.now
  }

  async hasCredentials(registry: string): Promise<boolean> {
    return (await this.options.credentials.get(registry)) !== undefined
  }

  /**
   * Records the challenge of a 401; returns false when there is nothing we can answer it with.
   * `rejected` is the Authorization the 401 answered, if any: only that token is dropped, so
   * parallel first requests that all met the same 401 share one token fetch.
   */
  async challenge(registry: string, wwwAuthenticate: string | undefined, rejected?: string): Promise<boolean> {
    const list = parseChallenges(wwwAuthenticate ?? '')
    const chosen = list.find((c) => c.scheme === 'bearer' && c.params.realm) ?? list.find((c) => c.scheme === 'basic')
    if (!chosen) return false
    // A Basic realm is not answerable without credentials; a Bearer one may grant anonymous tokens.
    if (chosen.scheme === 'basic' && !(await this.hasCredentials(registry))) return false
    this.challenges.set(registry, chosen)
    if (rejected?.startsWith('Bearer ')) {
      const token = rejected.slice(7)
      for (const [key, entry] of [...this.tokens]) {
        if (!key.startsWith(`${registry}|`)) continue
        const t = await entry.catch(() => undefined)
        if (!t || t.token === token) this.tokens.delete(key)
      }
    }
    return true
  }

  /** Drops the tokens of `registry`: they were granted to credentials that have changed. */
  forgetTokens(registry: string): void {
    for (const key of [...this.tokens.keys()]) if (key.startsWith(`${registry}|`)) this.tokens.delete(key)
  }

  /** True once a challenge is known for the registry (so requests can be pre-authorised). */
  knows(registry: string): boolean {
    return this.challenges.has(registry)
  }

  /** The Authorization header for a request to `registry` needing `scopes`, or undefined (anonymous). */
  async header(registry: string, scopes: string[]): Promise<string | undefined> {
    const ch = this.challenges.get(registry)
    if (!ch) return undefined
    const credential = await this.options.credentials.get(registry)
    if (ch.scheme === 'basic') return credential ? basicHeader(credential, registry) : undefined
    const wanted = [...new Set(scopes)].sort()
    const key = `${registry}|${ch.params.service ?? ''}|${wanted.join(' ')}`
    let entry = this.tokens.get(key)
    if (entry) {
      const t = await entry.catch(() => undefined)
      if (!t || t.expiresAt <= this.now()) {
        this.tokens.delete(key)
        entry = undefined
      }
    }
    if (!entry) {
      entry = this.fetchToken(registry, ch, wanted, credential)
      this.tokens.set(key, entry)
      entry.catch(() => this.tokens.delete(key))
    }
    return `Bearer ${(await entry).token}`
  }

  private async fetchToken(registry: string, ch: Challenge, scopes: string[], credential: Credential | undefined): Promise<CachedToken> {
    let realm: URL
    try {
      realm = new URL(ch.params.realm!)
    } catch {
      throw new LazyError('REGISTRY', `${registry} sent a token realm that is not a URL`)
    }
    if (credential && realm.protocol === 'http:' && !(this.options.plainHttpAllowed?.(realm.host, registry) ?? false)) {
      throw new LazyError('TLS', `${registry} names a token endpoint over plain HTTP (${realm.host}): credentials are not sent in clear text`, {
        hint: `if ${realm.host} is trusted, allow plain HTTP to it with --insecure-registry ${realm.host} (or a hosts.toml for it)`,
      })
    }
    const headers: Record<string, string> = {'user-agent': this.options.userAgent, accept: 'application/json'}
    let res
    if (credential?.identityToken) {
      // OAuth2 refresh-token grant (docker's identity tokens).
      const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: credential.identityToken, client_id: 'lazyctl'})
      if (ch.params.service) form.set('service', ch.params.service)
      if (scopes.length > 0) form.set('scope', scopes.join(' '))
      res = await this.options.send({method: 'POST', url: realm, headers: {...headers, 'content-type': 'application/x-www-form-urlencoded'}, body: form.toString()}, registry)
    } else {
      const url = new URL(realm)
      if (ch.params.service) url.searchParams.set('service', ch.params.service)
      for (const s of scopes) url.searchParams.append('scope', s)
      if (credential) headers.authorization = basicHeader(credential, registry)
      res = await this.options.send({method: 'GET', url, headers}, registry)
    }
    const text = await readErrorBody(res, 1 << 20)
    if (res.statusCode === 401 || res.statusCode === 403) {
      if (credential) {
        throw new LazyError('AUTH_FAILED', `${registry} rejected the credentials (token endpoint ${realm.host} answered ${res.statusCode})`, {
          hint: `check the user name and password (lazyctl login ${registry})`,
        })
      }
      throw new LazyError('AUTH_REQUIRED', `${registry} requires authentication (token endpoint ${realm.host} answered ${res.statusCode})`, {
        hint: `log in first: lazyctl login ${registry}`,
      })
    }
    if (res.statusCode !== 200) throw new LazyError('REGISTRY', `token endpoint ${realm.host} for ${registry} answered ${res.statusCode}`)
    let json: {token?: string; access_token?: string; expires_in?: number; issued_at?: string}
    try {
      json = JSON.parse(text) as typeof json
    } catch {
      throw new LazyError('REGISTRY', `token endpoint ${realm.host} for ${registry} did not answer JSON`)
    }
    const token = json.token || json.access_token
    if (!token) throw new LazyError('REGISTRY', `token endpoint ${realm.host} for ${registry} returned no token`)
    this.tokensFetched++
    // The spec's floor is 60 s; keep a margin so a token never expires mid-request.
    const lifetime = Math.max(60, typeof json.expires_in === 'number' ? json.expires_in : 60) * 1000
    const issued = json.issued_at ? Date.parse(json.issued_at) : NaN
    const start = Number.isFinite(issued) && Math.abs(issued - this.now()) < 3600_000 ? issued : this.now()
    return {token, expiresAt: start + lifetime - Math.min(10_000, lifetime / 4)}
  }
}

export function basicHeader(credential: Credential, registry: string): string {
  if (credential.username === undefined || credential.password === undefined) {
    throw new LazyError('AUTH_FAILED', `${registry} asks for Basic auth, but the stored credential is an identity token`, {hint: `lazyctl login ${registry}`})
  }
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`
}

