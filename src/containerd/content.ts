// containerd's content store: info, labels, streamed reads and lockstep streamed writes in chunks of
// at most 1 MiB (containerd's own copy size; well under the 16 MiB message limit).
import type {Readable} from 'node:stream'
import {LazyError} from '../cli/errors.js'
import {createHash} from 'node:crypto'
import {digestAlgorithm, type Digest} from '../oci/digest.js'
import {GrpcStatus, grpcCode, isGrpcStatus, type ContainerdConnection, type GrpcFailure} from './connection.js'
import type {WriteContentRequest} from './generated/containerd/services/content/v1/WriteContentRequest.js'
import type {WriteContentResponse__Output} from './generated/containerd/services/content/v1/WriteContentResponse.js'

export const CONTENT_CHUNK_BYTES = 1 << 20

export interface ContentInfo {
  digest: Digest
  size: number
  labels: Record<string, string>
}

export async function contentInfo(conn: ContainerdConnection, digest: string): Promise<ContentInfo | undefined> {
  try {
    const res = await conn.call('content', 'Info', {digest}, `content ${digest}`)
    const info = res.info!
    return {digest: info.digest as Digest, size: Number(info.size), labels: info.labels}
  } catch (err) {
    if (isGrpcStatus(err, GrpcStatus.NOT_FOUND)) return undefined
    throw err
  }
}

/** Sets (or, with an empty value, removes) labels on a blob without touching its other labels. */
export async function setContentLabels(conn: ContainerdConnection, digest: string, labels: Record<string, string>, lease?: string): Promise<void> {
  const keys = Object.keys(labels)
  if (keys.length === 0) return
  await conn.call(
    'content',
    'Update',
    {info: {digest, labels}, update_mask: {paths: keys.map((k) => `labels.${k}`)}},
    `label content ${digest}`,
    lease ? {lease} : {},
  )
}

/** Streams a blob out of the content store, in the server's chunks (≤ 1 MiB each). */
export async function* readContent(conn: ContainerdConnection, digest: string, offset = 0, size = 0): AsyncGenerator<Buffer> {
  for await (const msg of conn.stream('content', 'Read', {digest, offset: String(offset), size: String(size)}, `read content ${digest}`)) {
    if (msg.data.length > 0) yield msg.data
  }
}

/** Reads a small blob (manifest, index, config) whole, refusing anything larger than `limit`. */
export async function readContentBytes(conn: ContainerdConnection, digest: string, limit = 8 << 20): Promise<Buffer> {
  const parts: Buffer[] = []
  let total = 0
  for await (const chunk of readContent(conn, digest)) {
    total += chunk.length
    if (total > limit) throw new LazyError('CONTAINERD', `content ${digest} is larger than ${limit} bytes; refusing to read it into memory`)
    parts.push(chunk)
  }
  return Buffer.concat(parts)
}

export interface WriteContentOptions {
  /** Ingest ref, e.g. `layer-sha256:…` (the Go client's names). */
  ref: string
  expected: Digest
  size: number
  labels?: Record<string, string>
  lease?: string
}

/**
 * Writes a blob into the content store from `source`, verifying its digest on the way in. Returns
 * false when the blob was already there (`source` is then not opened, or — when containerd only
 * says so at commit — fully read). The protocol is lockstep: one response per request. On failure
 * the ingest is aborted and the source destroyed, so nothing partial stays behind.
 */
export async function writeContent(conn: ContainerdConnection, options: WriteContentOptions, source: () => Readable | AsyncIterable<Buffer> | Promise<Readable | AsyncIterable<Buffer>>): Promise<boolean> {
  if (await contentInfo(conn, options.expected)) return false
  const what = `write content ${options.expected}`
  const call = conn.duplex('content', 'Write', options.lease ? {lease: options.lease} : {})
  const exchange = async (req: WriteContentRequest): Promise<WriteContentResponse__Output> => {
    call.send(req)
    const next = await call.responses.next()
    if (next.done) throw new LazyError('CONTAINERD', `${what}: containerd closed the write stream early`)
    return next.value
  }
  let input: Readable | AsyncIterable<Buffer> | undefined
  try {
    const stat = await exchange({action: 'STAT', ref: options.ref, total: String(options.size), expected: options.expected})
    let offset = Number(stat.offset)
    // A partial ingest from an earlier interrupted write: start over rather than trust it.
    if (offset > 0) offset = 0
    // Hash on the way in: containerd checks `expected` at commit too, but our check names the
    // source and stops an oversized stream before it is all sent.
    const hash = createHash(digestAlgorithm(options.expected))
    let received = 0
    input = await source()
    let pending: Buffer = Buffer.alloc(0)
    const sendChunk = async (data: Buffer): Promise<void> => {
      const res = await exchange({action: 'WRITE', ref: options.ref, offset: String(offset), data})
      offset = Number(res.offset)
    }
    for await (const chunk of input as AsyncIterable<Buffer>) {
      received += chunk.length
      if (received > options.size) throw new LazyError('DIGEST_MISMATCH', `${what}: more than the expected ${options.size} bytes`)
      hash.update(chunk)
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      while (pending.length >= CONTENT_CHUNK_BYTES) {
        await sendChunk(pending.subarray(0, CONTENT_CHUNK_BYTES))
        pending = pending.subarray(CONTENT_CHUNK_BYTES)
      }
    }
    if (pending.length > 0) await sendChunk(pending)
    const actual = `${digestAlgorithm(options.expected)}:${hash.digest('hex')}`
    if (received !== options.size || actual !== options.expected) {
      throw new LazyError('DIGEST_MISMATCH', `${what}: got ${received} bytes hashing to ${actual}, expected ${options.size} bytes of ${options.expected}`)
    }
    const commit = await exchange({action: 'COMMIT', ref: options.ref, offset: String(offset), total: String(options.size), expected: options.expected, labels: options.labels ?? {}})
    if (commit.digest && commit.digest !== options.expected) {
      throw new LazyError('DIGEST_MISMATCH', `${what}: containerd committed ${commit.digest}`)
    }
    call.end()
    return true
  } catch (err) {
    call.cancel()
    ;(input as Partial<Readable> | undefined)?.destroy?.()
    if (isGrpcStatus(err, GrpcStatus.ALREADY_EXISTS)) return false
    await conn.call('content', 'Abort', {ref: options.ref}, `abort ${options.ref}`).catch(() => undefined)
    // Errors straight from the stream are raw gRPC statuses; calls through conn are mapped already.
    throw grpcCode(err) !== undefined && !(err instanceof LazyError) ? conn.mapError(err as GrpcFailure, what) : err
  }
}
