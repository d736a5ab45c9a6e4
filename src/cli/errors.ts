// The one error type of lazyctl. Every failure the user can act on is a LazyError with a stable
// code (also the exit status, so scripts can tell failures apart) and, where we know it, a hint.
// The CLI edge (base-command.ts) renders it once, as one line plus an optional hint line.

/** Stable error codes and their exit statuses. Never renumber: scripts depend on them. */
export const ERROR_CODES = {
  INTERNAL: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  ALREADY_EXISTS: 4,
  INVALID_REFERENCE: 5,
  MISSING_DEPENDENCY: 6,
  PERMISSION: 7,
  IO: 8,
  CANCELLED: 9,

  CONTAINERD_UNREACHABLE: 10,
  CONTAINERD: 11,
  IMAGE_NOT_FOUND: 12,
  CONTAINER_NOT_FOUND: 13,
  NAME_IN_USE: 14,
  CONTAINER_RUNNING: 15,
  IMAGE_IN_USE: 16,
  CONTAINER_NOT_RUNNING: 17,

  REGISTRY_UNREACHABLE: 20,
  REGISTRY: 21,
  AUTH_REQUIRED: 22,
  AUTH_FAILED: 23,
  DIGEST_MISMATCH: 24,
  MANIFEST_UNKNOWN: 25,
  BLOB_UNKNOWN: 26,
  UNSUPPORTED_MEDIA_TYPE: 27,
  TLS: 28,
  DENIED: 29,

  ESTARGZ_FOOTER: 30,
  ESTARGZ_TOC: 31,
  ESTARGZ_TOC_DIGEST: 32,
  ESTARGZ_CHUNK_DIGEST: 33,
  ESTARGZ_TRUNCATED: 34,
  ESTARGZ_UNSAFE_PATH: 35,
  ESTARGZ_TOC_TOO_LARGE: 36,
  ESTARGZ_HARDLINK: 37,
  NOT_A_TAR: 38,
  ESTARGZ_MISMATCH: 39,
  /** A chunk (or its compressed span) over the reader's bound: a hostile or mis-built layer (46: 30–39 are taken). */
  ESTARGZ_CHUNK_TOO_LARGE: 46,

  SNAPSHOTTER_UNREACHABLE: 40,
  SNAPSHOTTER: 41,
  SNAPSHOTTER_NOT_CONFIGURED: 42,
  FUSE: 43,
  SNAPSHOTTER_CONFIG: 44,
  /** --require-lazy / [remote] require_lazy: a layer would have been downloaded in full. */
  NOT_LAZY: 45,

  NODE_UNREACHABLE: 50,
  NODE_AUTH: 51,
  NODE_HOST_KEY: 52,
  NODE_STEP_FAILED: 53,
  NODE_VERIFY_FAILED: 54,
  NODE_UNSUPPORTED: 55,
  NODE_FLEET_FAILED: 56,
  SSM: 57,

  /** A CNI plugin failed, or a network namespace could not be made. */
  NETWORK: 60,
  /** A published host port is taken. */
  PORT_IN_USE: 61,

  // A container's command could not be run; the statuses docker and nerdctl use for these.
  CONTAINER_COMMAND_NOT_EXECUTABLE: 126,
  CONTAINER_COMMAND_NOT_FOUND: 127,
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export interface LazyErrorOptions {
  /** What the user can do about it; printed on its own line. */
  hint?: string
  cause?: unknown
}

export class LazyError extends Error {
  readonly code: ErrorCode
  readonly hint?: string

  constructor(code: ErrorCode, message: string, options: LazyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'LazyError'
    this.code = code
    if (options.hint !== undefined) this.hint = options.hint
  }

  get exitCode(): number {
    return ERROR_CODES[this.code]
  }
}

export function isLazyError(err: unknown, code?: ErrorCode): err is LazyError {
  return err instanceof LazyError && (code === undefined || err.code === code)
}

/** A one-line description of any thrown value, without stack or newlines. */
export function describeError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.replace(/\s*\n\s*/g, ' ').trim()
}
