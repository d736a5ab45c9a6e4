// Content digests (`sha256:<hex>`): parsing, hashing, and a streaming verifier that refuses bytes
// that do not match before the consumer can treat them as complete.
import {createHash, type Hash} from 'node:crypto'
import {Transform, type TransformCallback} from 'node:stream'
import {LazyError} from '../cli/errors.js'

export type Digest = `sha256:${string}` | `sha512:${string}`

const DIGEST_PATTERN = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/

export function isDigest(value: string): value is Digest {
  return DIGEST_PATTERN.test(value)
}

/** Checks `value` is a digest lazyctl can verify (sha256 or sha512, lowercase hex). */
export function parseDigest(value: string, where = 'digest'): Digest {
  if (!isDigest(value)) throw new LazyError('INVALID_REFERENCE', `${where}: "${truncate(value)}" is not a sha256/sha512 digest`)
  return value
}

export function digestAlgorithm(digest: Digest): 'sha256' | 'sha512' {
  return digest.startsWith('sha512:') ? 'sha512' : 'sha256'
}

export function digestHex(digest: Digest): string {
  return digest.slice(digest.indexOf(':') + 1)
}

export function sha256Digest(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

export function digestOf(data: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256'): Digest {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}` as Digest
}

/** Throws DIGEST_MISMATCH unless `data` hashes to `expected`. */
export function verifyBuffer(data: Buffer, expected: Digest, what: string): void {
  const actual = digestOf(data, digestAlgorithm(expected))
  if (actual !== expected) throw mismatch(what, expected, actual)
}

export interface DigestVerifierOptions {
  /** Expected size in bytes; more bytes fail at once, fewer fail at the end. */
  size?: number
  /** Names the object in error messages (e.g. `layer sha256:ab… of 127.0.0.1:5000/demo`). */
  what?: string
}

/**
 * A pass-through stream that hashes what flows through it and fails (DIGEST_MISMATCH) at the end
 * when the digest or size differs, so a pipeline ending in a temp file never gets renamed into
 * place. Oversized input fails as soon as it passes the expected size, bounding what we accept.
 */
export class DigestVerifier extends Transform {
  readonly expected: Digest
  private readonly hash: Hash
  private readonly expectedSize: number | undefined
  private readonly what: string
  bytes = 0

  constructor(expected: Digest, options: DigestVerifierOptions = {}) {
    super()
    this.expected = expected
    this.hash = createHash(digestAlgorithm(expected))
    this.expectedSize = options.size
    this.what = options.what ?? expected
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      callback(new LazyError('DIGEST_MISMATCH', `${this.what}: more than the expected ${this.expectedSize} bytes`))
      return
    }
    this.hash.update(chunk)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      callback(new LazyError('DIGEST_MISMATCH', `${this.what}: got ${this.bytes} bytes, expected ${this.expectedSize}`))
      return
    }
    const actual = `${digestAlgorithm(this.expected)}:${this.hash.digest('hex')}`
    if (actual !== this.expected) {
      callback(mismatch(this.what, this.expected, actual))
      return
    }
    callback()
  }
}

/** A pass-through stream that computes the sha256 digest and size of whatever flows through it. */
export class DigestCounter extends Transform {
  private readonly hash = createHash('sha256')
  bytes = 0
  private result: Digest | undefined

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    this.hash.update(chunk)
    callback(null, chunk)
  }

  override _flush(callback: TransformCallback): void {
    this.result = `sha256:${this.hash.digest('hex')}`
    callback()
  }

  /** The digest; only valid once the stream has finished. */
  digest(): Digest {
    if (!this.result) throw new Error('DigestCounter: digest read before the stream ended')
    return this.result
  }
}

function mismatch(what: string, expected: string, actual: string): LazyError {
  return new LazyError('DIGEST_MISMATCH', `${what}: content digest ${short(actual)} does not match the expected ${short(expected)}`, {
    hint: 'the source is corrupt or was changed in transit; nothing was written for it',
  })
}

export function short(digest: string): string {
  const i = digest.indexOf(':')
  return i < 0 ? digest.slice(0, 12) : digest.slice(0, i + 13)
}

function truncate(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}…` : text
}
