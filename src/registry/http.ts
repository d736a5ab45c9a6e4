// The HTTP layer of the registry client, composed from small pieces the way undici composes
// interceptors: a base sender over pooled undici Agents (one per TLS setup), then redirects
// (Authorization never crosses hosts), then bounded retries with backoff. Auth sits above these
// (auth.ts), and digest checks above that (client.ts).
import type {Readable} from 'node:stream'
import {setTimeout as delay} from 'node:timers/promises'
import type {Agent, Dispatcher} from 'undici'
import {LazyError} from '../cli/errors.js'
import {trace, TRACING} from '../cli/trace.js'
import {isLoopbackHost} from './hosts.js'

export type HttpBody = Readable | Buffer | string | null

export interface HttpRequest {
  method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'
  url: URL
  headers: Record<string, string>
  /** A stream body makes the request unrepeatable: no retry, no redirect. */
  body?: HttpBody
  signal?: AbortSignal
}

export interface HttpResponse {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  body: Dispatcher.ResponseData['body']
  /** The URL that answered (after redirects). */
  url: URL
}

export type Send = (request: HttpRequest) => Promise<HttpResponse>

export interface TlsSettings {
  ca?: string[]
  clientCert?: {cert: string; key: string}
  skipVerify?: boolean
}

/**
 * undici, loaded on the first request: evaluating it costs ~0.1 s of CPU, which commands that never
 * reach a registry (`run` of a pulled image, `ps`, `rm`) should not pay at start-up.
 */
let undici: Promise<typeof import('./undici-agent.js')> | undefined
const loadUndici = () => (undici ??= import('./undici-agent.js'))

/** Loads the HTTP client (and its parser) ahead of the first request, for a process that is idle now and will need it. */
export function preloadHttpClient(): void {
  setImmediate(() => void loadUndici().then(({warmUp}) => warmUp()).catch(() => {}))
}

/** One pool per TLS setup, kept for the life of the process: connections are reused across requests. */
export class AgentPool {
  private readonly agents = new Map<string, Promise<Agent>>()

  get(tls: TlsSettings = {}): Promise<Agent> {
    const key = JSON.stringify([tls.ca ?? null, tls.clientCert ?? null, tls.skipVerify ?? false])
    let agent = this.agents.get(key)
    if (!agent) {
      agent = loadUndici().then(({createAgent}) => createAgent({
        connections: 16,
        pipelining: 1,
        keepAliveTimeout: 10_000,
        connect: {
          // Covers TCP and the TLS handshake; an --insecure-registry probe falls back to http after it.
          timeout: tls.skipVerify ? 5_000 : 10_000,
          ...(tls.ca ? {ca: tls.ca} : {}),
          ...(tls.clientCert ? {cert: tls.clientCert.cert, key: tls.clientCert.key} : {}),
          rejectUnauthorized: !tls.skipVerify,
        },
      }))
      this.agents.set(key, agent)
    }
    return agent
  }

  async close(): Promise<void> {
    const all = [...this.agents.values()]
    this.agents.clear()
    await Promise.all(all.map(async (a) => (await a).close().catch(() => undefined)))
  }
}

/** How long a request may wait for the response's headers, and between two chunks of its body. */
export interface RequestTimeouts {
  headersMs: number
  bodyMs: number
}

/** The CLI's: a registry busy with a large manifest or a slow storage backend is not cut off early. */
export const DEFAULT_TIMEOUTS: RequestTimeouts = {headersMs: 60_000, bodyMs: 120_000}

/** Sends one request with the dispatcher `pick` chooses for its origin; network failures become LazyErrors. */
export function baseSender(pick: (url: URL) => Promise<Dispatcher>, timeouts: RequestTimeouts = DEFAULT_TIMEOUTS): Send {
  return async (req) => {
    const started = TRACING ? performance.now() : 0
    try {
      const res = await (await pick(req.url)).request({
        origin: req.url.origin,
        path: `${req.url.pathname}${req.url.search}`,
        method: req.method,
        headers: req.headers,
        body: req.body ?? null,
        ...(req.signal ? {signal: req.signal} : {}),
        headersTimeout: timeouts.headersMs,
        bodyTimeout: timeouts.bodyMs,
      })
      if (TRACING) trace(`${req.method} ${req.url.pathname} → ${res.statusCode}`, started)
      return {statusCode: res.statusCode, headers: res.headers, body: res.body, url: req.url}
    } catch (err) {
      throw networkError(err, req.url)
    }
  }
}

const TLS_CODE = /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|HOSTNAME_MISMATCH)/

/** True when the error means "the server answered our TLS hello in plain HTTP". */
export function isPlainHttpAnswer(err: unknown): boolean {
  const code = causeCode(err)
  // A plain-HTTP Go server may also never answer a ClientHello (it waits for a line end): the
  // handshake then times out.
  return code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'UND_ERR_CONNECT_TIMEOUT'
}

function causeCode(err: unknown): string | undefined {
  let e = err as {code?: string; cause?: unknown} | undefined
  for (let i = 0; e && i < 4; i++) {
    if (typeof e.code === 'string' && e.code !== 'REGISTRY_UNREACHABLE' && e.code !== 'TLS') return e.code
    e = e.cause as typeof e
  }
  return undefined
}

export function networkError(err: unknown, url: URL): unknown {
  if (err instanceof LazyError) return err
  const name = (err as Error)?.name
  if (name === 'AbortError') return new LazyError('CANCELLED', `request to ${url.host} was cancelled`, {cause: err})
  const code = causeCode(err) ?? ''
  const message = (err as Error)?.message ?? String(err)
  if (TLS_CODE.test(code)) {
    return new LazyError('TLS', `TLS with ${url.host} failed: ${message}`, {
      cause: err,
      hint: `trust the registry's CA (put it in /etc/containerd/certs.d/${url.host}/ca.crt or pass --hosts-dir) or use --insecure-registry ${url.host}`,
    })
  }
  return new LazyError('REGISTRY_UNREACHABLE', `cannot reach registry ${url.host}: ${code || message}`, {
    cause: err,
    hint: 'check the host and port, and that the registry is running',
  })
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308])

/**
 * The only headers a redirect to another origin keeps: none says who is asking. Authorization,
 * cookies and hosts.toml headers stay with the registry (blob storage refuses requests carrying
 * two credentials, and a registry's secrets must never reach a third party).
 */
const NEUTRAL_HEADERS = new Set(['user-agent', 'accept', 'accept-encoding', 'range', 'if-range', 'content-type', 'content-length'])

/** Loopback, link-local (cloud metadata at 169.254.169.254) or unspecified: this node's own services. */
function isNodeInternalHost(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')).toLowerCase() : host.replace(/:\d+$/, '')
  return isLoopbackHost(host) || /^169\.254\.\d{1,3}\.\d{1,3}$/.test(name) || /^fe[89ab][0-9a-f]:/.test(name) || name === '0.0.0.0' || name === '::'
}

/**
 * Refuses a redirect a registry must not be able to make: to a scheme other than http(s), or from
 * a remote registry to this node's own services (a blind request forgery against kubelet or the
 * cloud metadata endpoint). A registry on loopback may redirect to loopback.
 */
export function checkRedirect(from: URL, to: URL): void {
  if (to.protocol !== 'http:' && to.protocol !== 'https:') {
    throw new LazyError('REGISTRY', `${from.host} redirected to a ${to.protocol} URL; only http(s) is followed`)
  }
  if (isNodeInternalHost(to.host) && !isNodeInternalHost(from.host)) {
    throw new LazyError('REGISTRY', `${from.host} redirected to ${to.host}, an address of this node; refused`, {
      hint: 'a registry may redirect to blob storage, not to loopback or link-local addresses',
    })
  }
}

/**
 * Follows redirects for requests without a stream body; a redirect to another origin carries only
 * NEUTRAL_HEADERS, and checkRedirect refuses targets on this node.
 */
export function withRedirects(send: Send, maxRedirects = 5): Send {
  return async (req) => {
    let current = req
    for (let hop = 0; ; hop++) {
      const res = await send(current)
      if (!REDIRECT_STATUSES.has(res.statusCode) || hop >= maxRedirects || isStream(current.body)) return res
      const location = header(res.headers, 'location')
      if (!location) return res
      await res.body.dump()
      const next = new URL(location, current.url)
      checkRedirect(current.url, next)
      const crossOrigin = next.origin !== req.url.origin
      const headers = crossOrigin ? Object.fromEntries(Object.entries(current.headers).filter(([name]) => NEUTRAL_HEADERS.has(name.toLowerCase()))) : {...current.headers}
      let method = current.method
      let body = current.body
      if (res.statusCode === 303 && method !== 'HEAD') {
        method = 'GET'
        body = null
      }
      current = {...current, method, url: next, headers, body}
    }
  }
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
}

export const DEFAULT_RETRY: RetryPolicy = {attempts: 4, baseDelayMs: 200, maxDelayMs: 5_000}

const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504])
const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED', 'EAI_AGAIN'])

export function isRetryableError(err: unknown): boolean {
  return RETRYABLE_CODES.has(causeCode(err) ?? '')
}

/** Nothing listens at the registry's address (yet, or for a moment: a restart). */
export function isConnectionRefused(err: unknown): boolean {
  return causeCode(err) === 'ECONNREFUSED'
}

/** Retries transient failures (429, 5xx, resets) of repeatable requests with jittered exponential backoff, bounded. */
export function withRetry(send: Send, policy: RetryPolicy = DEFAULT_RETRY): Send {
  return async (req) => {
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= policy.attempts || isStream(req.body)
      let res: HttpResponse
      try {
        res = await send(req)
      } catch (err) {
        if (last || !isRetryableError(err)) throw err
        await delay(backoff(policy, attempt), undefined, req.signal ? {signal: req.signal} : undefined)
        continue
      }
      if (last || !RETRYABLE_STATUSES.has(res.statusCode)) return res
      const retryAfter = Number(header(res.headers, 'retry-after'))
      await res.body.dump()
      const wait = Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, policy.maxDelayMs) : backoff(policy, attempt)
      await delay(wait, undefined, req.signal ? {signal: req.signal} : undefined)
    }
  }
}

export function backoff(policy: RetryPolicy, attempt: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return exp / 2 + Math.random() * (exp / 2)
}

function isStream(body: HttpBody | undefined): boolean {
  return !!body && typeof body === 'object' && !Buffer.isBuffer(body)
}

export function header(headers: HttpResponse['headers'], name: string): string | undefined {
  const v = headers[name]
  return Array.isArray(v) ? v[0] : v
}

export function headerAll(headers: HttpResponse['headers'], name: string): string[] {
  const v = headers[name]
  return v === undefined ? [] : Array.isArray(v) ? v : [v]
}
