// Failures of snapshot operations, by the gRPC status containerd maps them from (errdefs):
// NotFound, AlreadyExists, FailedPrecondition, InvalidArgument, Unavailable; anything else is Unknown.
export type SnapshotErrorKind = 'NOT_FOUND' | 'ALREADY_EXISTS' | 'FAILED_PRECONDITION' | 'INVALID_ARGUMENT' | 'UNAVAILABLE' | 'UNKNOWN'

export class SnapshotError extends Error {
  constructor(
    readonly kind: SnapshotErrorKind,
    message: string,
    options?: {cause?: unknown},
  ) {
    super(message, options)
    this.name = 'SnapshotError'
  }
}

export function isSnapshotError(err: unknown, kind?: SnapshotErrorKind): err is SnapshotError {
  return err instanceof SnapshotError && (kind === undefined || err.kind === kind)
}
