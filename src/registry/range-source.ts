// Random access to a registry blob by HTTP Range, for the lazy filesystem. Each read is checked
// (206 + matching Content-Range, or a 200 whose body we skip through), retried with bounded
// backoff, and a redirect to blob storage is remembered so later reads go straight there
// without the registry's Authorization header.
import {setTimeout as delay} from 'node:timers/promises'
import {LazyError} from '../cli/errors.js'
import type {Digest} from '../oci/digest.js'
import {short} from '../oci/digest.js'
import type {ImageReference} from '../oci/reference.js'
import type {RandomAccessSource, ReadProgress} from '../estargz/random-access.js'
import type {RegistryClient} from './client.js'
import {backoff, checkRedirect, header, isConnectionRefused, type HttpResponse} from './http.js'

export interface ByteRange {
  offset: number
  length: number
}

export interface RangeSource extends RandomAccessSource {
  readonly digest: Digest
  /**
   * Reads several ranges at once: nearby ranges are coalesced into one request (gap below
   * `maxGap`), requests run in parallel, results come back in the order asked.
   */
  readRanges(ranges: ByteRange[], options?: {maxGap?: number}): Promise<Buffer[]>
}

const REDIRECT = new Set([301, 302, 303, 307, 308])
/** How long a storage redirect is reused before asking the registry again (signed URLs expire). */
const REDIRECT_TTL_MS = 5 * 60_000
const MAX_PARALLEL = 4
const DEFAULT_MAX_GAP = 64 * 1024
/** Largest coalesced request; bigger ranges are fetched as asked. */
const MAX_COALESCED = 16 << 20

export interface RangeSourceOptions {
  /** Told of each failed attempt that will be retried (for logs and tests). */
  onRetry?: (attempt: number, err: unknown) => void
}

export function blobRangeSource(client: RegistryClient, ref: ImageReference, digest: Digest, size: number, options: RangeSourceOptions = {}): RangeSource {
  const what = `blob ${short(digest)} of ${ref.registry}/${ref.repository}`
  let redirect: {url: URL; until: number} | undefined

  async function fetchOnce(offset: number, length: number, onProgress?: ReadProgress): Promise<Buffer> {
    const range = `bytes=${offset}-${offset + length - 1}`
    const headers = {range, 'accept-encoding': 'identity'}
    let res: HttpResponse
    if (redirect && redirect.until > Date.now()) {
      res = await client.call({method: 'GET', ref, url: redirect.url, headers, actions: [], capability: 'pull', ok: [200, 206, 401, 403], error: {what, object: 'blob'}, followRedirects: false, noAuth: true})
      if (res.statusCode === 401 || res.statusCode === 403) {
        // The signed URL expired: ask the registry again.
        await res.body.dump()
        redirect = undefined
        return fetchOnce(offset, length, onProgress)
      }
    } else {
      res = await client.call({method: 'GET', ref, path: `/blobs/${digest}`, headers, actions: ['pull'], capability: 'pull', ok: [200, 206, ...REDIRECT], error: {what, object: 'blob'}, followRedirects: false})
      if (REDIRECT.has(res.statusCode)) {
        const location = header(res.headers, 'location')
        await res.body.dump()
        if (!location) throw new LazyError('REGISTRY', `${what}: redirect without a Location`)
        const url = new URL(location, res.url)
        checkRedirect(res.url, url)
        redirect = {url, until: Date.now() + REDIRECT_TTL_MS}
        res = await client.call({method: 'GET', ref, url, headers, actions: [], capability: 'pull', ok: [200, 206], error: {what, object: 'blob'}, followRedirects: true, noAuth: url.origin !== res.url.origin})
      }
    }
    if (res.statusCode === 206) {
      const cr = header(res.headers, 'content-range') ?? ''
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(cr.trim())
      if (!m || Number(m[1]) !== offset || Number(m[2]) !== offset + length - 1) {
        await res.body.dump()
        throw new LazyError('REGISTRY', `${what}: asked for ${range}, got Content-Range "${cr}"`)
      }
      if (m[3] !== '*' && Number(m[3]) !== size) {
        await res.body.dump()
        throw new LazyError('DIGEST_MISMATCH', `${what}: registry says the blob has ${m[3]} bytes, the manifest says ${size}`)
      }
      return readExactly(res, 0, length, what, onProgress)
    }
    // 200: the server ignored Range and sends the whole blob; skip to the part we want.
    return readExactly(res, offset, length, what, onProgress)
  }

  async function readAt(offset: number, length: number, onProgress?: ReadProgress): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new LazyError('INTERNAL', `${what}: bad read range offset=${offset} length=${length}`)
    }
    if (offset + length > size) throw new LazyError('ESTARGZ_TRUNCATED', `${what}: read of ${length} bytes at ${offset} goes past the end (${size} bytes)`)
    if (length === 0) return Buffer.alloc(0)
    for (let attempt = 1; ; attempt++) {
      try {
        return await fetchOnce(offset, length, onProgress)
      } catch (err) {
        // Resets and timeouts are retried by the client's sender already (retrying them here too
        // would multiply a hung registry's wait); a refused connection is retried here: a registry
        // that restarts refuses for a moment, and a lazy read should outlast that.
        if (!isConnectionRefused(err) || attempt >= client.retry.attempts) throw err
        options.onRetry?.(attempt, err)
        await delay(backoff(client.retry, attempt))
      }
    }
  }

  async function readRanges(ranges: ByteRange[], options: {maxGap?: number} = {}): Promise<Buffer[]> {
    const maxGap = options.maxGap ?? DEFAULT_MAX_GAP
    const order = ranges.map((r, i) => ({...r, i})).sort((a, b) => a.offset - b.offset)
    const groups: Array<{offset: number; end: number; members: typeof order}> = []
    for (const r of order) {
      const g = groups.at(-1)
      const end = r.offset + r.length
      if (g && r.offset - g.end <= maxGap && Math.max(g.end, end) - g.offset <= MAX_COALESCED) {
        g.end = Math.max(g.end, end)
        g.members.push(r)
      } else {
        groups.push({offset: r.offset, end, members: [r]})
      }
    }
    const out: Buffer[] = new Array(ranges.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < groups.length) {
        const g = groups[next++]!
        const buf = await readAt(g.offset, g.end - g.offset)
        for (const m of g.members) out[m.i] = buf.subarray(m.offset - g.offset, m.offset - g.offset + m.length)
      }
    }
    await Promise.all(Array.from({length: Math.min(MAX_PARALLEL, groups.length)}, worker))
    return out
  }

  return {size, digest, readAt, readRanges}
}

/** Reads `length` bytes after skipping `skip` from a response body, then lets the rest go. */
async function readExactly(res: HttpResponse, skip: number, length: number, what: string, onProgress?: ReadProgress): Promise<Buffer> {
  const out = Buffer.allocUnsafe(length)
  let pos = 0
  let toSkip = skip
  try {
    for await (const chunk of res.body) {
      let c = chunk as Buffer
      if (toSkip > 0) {
        const s = Math.min(toSkip, c.length)
        toSkip -= s
        c = c.subarray(s)
      }
      const take = Math.min(c.length, length - pos)
      c.copy(out, pos, 0, take)
      pos += take
      if (take > 0) onProgress?.(out, pos)
      if (pos === length) break
    }
  } finally {
    if (!res.body.destroyed) res.body.destroy()
  }
  if (pos !== length) throw new LazyError('ESTARGZ_TRUNCATED', `${what}: response ended after ${pos} of ${length} bytes`)
  return out
}
