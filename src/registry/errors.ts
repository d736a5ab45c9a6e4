// Turns registry error responses into LazyErrors with distinct codes. Messages name the registry
// and repository but never echo request headers, tokens or credentials.
import {LazyError, type ErrorCode} from '../cli/errors.js'
import type {HttpResponse} from './http.js'

export interface RegistryErrorDetail {
  code: string
  message?: string
}

/** Reads at most `limit` bytes of an error body; the rest is discarded. */
export async function readErrorBody(res: HttpResponse, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = []
  let total = 0
  try {
    for await (const chunk of res.body) {
      const b = chunk as Buffer
      if (total < limit) chunks.push(b.subarray(0, limit - total))
      total += b.length
    }
  } catch {
    // a body cut short still tells us the status
  }
  return Buffer.concat(chunks).toString('utf8')
}

export function parseRegistryErrors(text: string): RegistryErrorDetail[] {
  try {
    const json = JSON.parse(text) as {errors?: Array<{code?: unknown; message?: unknown}>}
    if (!Array.isArray(json.errors)) return []
    return json.errors
      .filter((e) => typeof e?.code === 'string')
      .map((e) => ({code: String(e.code), ...(typeof e.message === 'string' ? {message: e.message} : {})}))
  } catch {
    return []
  }
}

export interface ErrorContext {
  /** e.g. `127.0.0.1:5000/demo:v1` or `blob sha256:… of 127.0.0.1:5000/demo`. */
  what: string
  host: string
  /** Did we send credentials? Distinguishes AUTH_REQUIRED from AUTH_FAILED. */
  hadCredentials?: boolean
  /** What the request was for, to pick a 404 code. */
  object?: 'manifest' | 'blob' | 'upload' | 'tags' | 'base' | 'referrers'
}

const CODE_MAP: Record<string, ErrorCode> = {
  MANIFEST_UNKNOWN: 'MANIFEST_UNKNOWN',
  NAME_UNKNOWN: 'MANIFEST_UNKNOWN',
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  MANIFEST_BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  DIGEST_INVALID: 'DIGEST_MISMATCH',
  DENIED: 'DENIED',
  UNAUTHORIZED: 'AUTH_REQUIRED',
  NAME_INVALID: 'INVALID_REFERENCE',
  TAG_INVALID: 'INVALID_REFERENCE',
}

/** Builds the LazyError for a non-success response whose body has been read as `bodyText`. */
export function registryError(status: number, bodyText: string, ctx: ErrorContext): LazyError {
  if (status === 400 && /HTTP request to an HTTPS server/i.test(bodyText)) {
    return new LazyError('TLS', `${ctx.host} speaks HTTPS, but lazyctl used plain HTTP for this loopback registry`, {
      hint: `trust its CA (put it in /etc/containerd/certs.d/${ctx.host}/ca.crt or pass --hosts-dir) or use --insecure-registry ${ctx.host}`,
    })
  }
  const details = parseRegistryErrors(bodyText)
  const first = details[0]
  const said = first ? `${first.code}${first.message ? `: ${oneLine(first.message)}` : ''}` : `HTTP ${status}`
  if (status === 401) {
    if (ctx.hadCredentials) {
      return new LazyError('AUTH_FAILED', `${ctx.host} rejected the credentials for ${ctx.what}`, {
        hint: `check the user name and password (lazyctl login ${ctx.host})`,
      })
    }
    return new LazyError('AUTH_REQUIRED', `${ctx.host} requires authentication for ${ctx.what}`, {hint: `log in first: lazyctl login ${ctx.host}`})
  }
  if (status === 403 || first?.code === 'DENIED') {
    return new LazyError('DENIED', `${ctx.host} denied access to ${ctx.what}${first?.message ? `: ${oneLine(first.message)}` : ''}`, {
      hint: 'the account lacks permission for this repository or action',
    })
  }
  if (status === 429) {
    return new LazyError('REGISTRY', `${ctx.host} is rate-limiting requests (429) for ${ctx.what}`, {hint: 'wait and retry, or log in for a higher limit'})
  }
  const mapped = first ? CODE_MAP[first.code] : undefined
  if (mapped === 'MANIFEST_UNKNOWN' || (status === 404 && ctx.object === 'manifest')) {
    return new LazyError('MANIFEST_UNKNOWN', `${ctx.what}: not found (${said})`, {hint: 'check the repository name and tag'})
  }
  if (mapped === 'BLOB_UNKNOWN' || (status === 404 && ctx.object === 'blob')) {
    return new LazyError('BLOB_UNKNOWN', `${ctx.what}: blob not found (${said})`)
  }
  if (mapped) return new LazyError(mapped, `${ctx.what}: ${said}`)
  if (status === 404) return new LazyError('NOT_FOUND', `${ctx.what}: not found on ${ctx.host} (${said})`)
  if (status === 413) return new LazyError('REGISTRY', `${ctx.what}: too large for ${ctx.host} (413)`)
  return new LazyError('REGISTRY', `${ctx.host} answered ${status} for ${ctx.what}: ${said}`)
}

function oneLine(text: string): string {
  const t = text.replace(/\s+/g, ' ').trim()
  return t.length > 200 ? `${t.slice(0, 200)}…` : t
}
