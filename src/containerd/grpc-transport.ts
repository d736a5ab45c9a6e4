// gRPC calls to containerd, written directly on node:http2 over its unix socket. The CLI's calls are
// few and simple — unary, a server stream (events), one lockstep bidi stream (content writes) — and
// grpc-js, built for channels, balancing and retries the CLI never uses, cost ~35 ms of CPU to load
// at each start of `lazyctl run`. The wire format is gRPC's (grpc/doc/PROTOCOL-HTTP2.md): a POST per
// call, each message prefixed by a compressed flag and a 4-byte length, the status in the trailers
// (or, for a call that fails at once, in the only headers). Messages are encoded and decoded by the
// caller (lazyctl's codec); this module moves bytes and statuses.
import type {ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, IncomingHttpStatusHeader} from 'node:http2'

/** gRPC's status codes (the subset lazyctl names, with the values every implementation uses). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const
export type GrpcStatusCode = (typeof GrpcStatus)[keyof typeof GrpcStatus]

/** A call's non-OK status; shaped like grpc-js's ServiceError (code, details, metadata) so callers treat both alike. */
export class GrpcCallError extends Error {
  readonly code: number
  readonly details: string
  readonly metadata: Record<string, string>
  constructor(code: number, details: string, metadata: Record<string, string> = {}) {
    // No stack: it would only point into this transport, and expected statuses (NOT_FOUND of a
    // lookup, ALREADY_EXISTS of a lazy layer) are frequent enough for its capture to show in a
    // run's profile. The LazyError a caller maps it to carries the caller's stack.
    const stackTraceLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(`${code} ${statusName(code)}: ${details}`)
    Error.stackTraceLimit = stackTraceLimit
    this.name = 'GrpcCallError'
    this.code = code
    this.details = details
    this.metadata = metadata
  }
}

function statusName(code: number): string {
  return Object.entries(GrpcStatus).find(([, value]) => value === code)?.[0] ?? 'UNKNOWN'
}

/** containerd's default message limit is 16 MiB each way. */
const MAX_MESSAGE_BYTES = 16 << 20
/** Messages received but not yet taken, above which the stream is paused (and below which resumed). */
const QUEUED_MESSAGES_HIGH = 8
const QUEUED_MESSAGES_LOW = 2
/** Flow-control windows large enough that a 1 MiB content chunk never waits for a window update. */
const WINDOW_BYTES = 16 << 20

/** A message as gRPC puts it on the wire: a compressed flag (0: not compressed), a 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5)
  prefix.writeUInt32BE(message.length, 1)
  return Buffer.concat([prefix, message])
}

export interface CallHeaders {
  [name: string]: string
}

export interface GrpcCall {
  /** Sends one encoded message. */
  write(message: Buffer): void
  /** Ends the request side. */
  end(): void
  /** Encoded messages as they arrive; ends on an OK status, throws GrpcCallError otherwise. */
  messages(): AsyncGenerator<Buffer>
  /** Abandons the call (CANCELLED on the wire). */
  cancel(): void
}

/** One HTTP/2 connection to a unix socket, opened on the first call and closed by close(). */
export class GrpcUnixTransport {
  private session: ClientHttp2Session | undefined
  private active = 0

  constructor(private readonly socketPath: string) {}

  /** Starts a call of `path` (`/package.Service/Method`). */
  start(path: string, headers: CallHeaders, timeoutMs?: number): GrpcCall {
    const session = this.connect()
    const requestHeaders: Record<string, string> = {
      ':method': 'POST',
      ':path': path,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...headers,
    }
    if (timeoutMs) requestHeaders['grpc-timeout'] = `${Math.max(1, Math.ceil(timeoutMs))}m`
    const stream = session.request(requestHeaders)
    this.track(stream)
    const call = new Call(stream, this.socketPath)
    if (timeoutMs) {
      const timer = setTimeout(() => call.fail(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded')), timeoutMs)
      stream.once('close', () => clearTimeout(timer))
    }
    return call
  }

  /** A unary call: one message each way. */
  async unary(path: string, request: Buffer, headers: CallHeaders, timeoutMs?: number): Promise<Buffer> {
    const call = this.start(path, headers, timeoutMs)
    call.write(request)
    call.end()
    let response: Buffer | undefined
    for await (const message of call.messages()) response ??= message
    if (!response) throw new GrpcCallError(GrpcStatus.INTERNAL, 'the server sent no response message')
    return response
  }

  close(): void {
    this.session?.close()
    this.session = undefined
  }

  private connect(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session
    // Loaded on the first call, through the builtin loader: the CLI's paths that never call
    // containerd do not pay for node:http2.
    const http2 = process.getBuiltinModule('node:http2')
    const net = process.getBuiltinModule('node:net')
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(this.socketPath),
      settings: {initialWindowSize: WINDOW_BYTES, maxHeaderListSize: 1 << 20},
      maxSessionMemory: 64,
    })
    session.on('connect', () => session.setLocalWindowSize(WINDOW_BYTES))
    // A failed connect or a dropped connection fails the calls on it (each stream errors too).
    session.on('error', () => undefined)
    session.on('close', () => {
      if (this.session === session) this.session = undefined
    })
    this.session = session
    return session
  }

  /** The connection keeps the process alive only while a call is open, as a grpc-js channel does. */
  private track(stream: ClientHttp2Stream): void {
    if (this.active++ === 0) this.session?.ref()
    stream.once('close', () => {
      if (--this.active === 0) this.session?.unref()
    })
  }
}

class Call implements GrpcCall {
  private readonly queue: Buffer[] = []
  private pending: Buffer = Buffer.alloc(0)
  private status: GrpcCallError | null | undefined // null: OK, undefined: not known yet
  private wake: (() => void) | undefined
  /** Every DATA frame has been delivered (trailers can arrive while a paused stream still holds data). */
  private ended = false

  constructor(private readonly stream: ClientHttp2Stream, socketPath: string) {
    stream.on('response', (headers) => {
      if (headers[':status'] !== 200) this.fail(new GrpcCallError(GrpcStatus.UNKNOWN, `HTTP status ${headers[':status']} from ${socketPath}`))
      // A call that fails at once carries its status in the only headers (trailers-only).
      else if (headers['grpc-status'] !== undefined) this.finish(headers)
    })
    stream.on('trailers', (trailers) => this.finish(trailers))
    stream.on('data', (data: Buffer) => this.receive(data))
    stream.on('end', () => {
      this.ended = true
      this.notify()
    })
    stream.on('error', (err: Error & {code?: string}) => this.fail(new GrpcCallError(GrpcStatus.UNAVAILABLE, `${err.message}${err.code && !err.message.includes(err.code) ? ` (${err.code})` : ''}`)))
    stream.on('close', () => {
      if (this.status === undefined) {
        const code = stream.rstCode
        this.fail(new GrpcCallError(code === 8 ? GrpcStatus.CANCELLED : GrpcStatus.UNAVAILABLE, code ? `stream reset by ${socketPath} (HTTP/2 error ${code})` : `connection to ${socketPath} closed without a status`))
      }
      this.notify()
    })
  }

  write(message: Buffer): void {
    if (message.length > MAX_MESSAGE_BYTES) throw new GrpcCallError(GrpcStatus.RESOURCE_EXHAUSTED, `message of ${message.length} bytes exceeds ${MAX_MESSAGE_BYTES}`)
    this.stream.write(grpcFrame(message))
  }

  end(): void {
    this.stream.end()
  }

  cancel(): void {
    if (!this.stream.closed) this.stream.close(8 /* NGHTTP2_CANCEL */)
  }

  async *messages(): AsyncGenerator<Buffer> {
    try {
      for (;;) {
        const next = this.queue.shift()
        if (next) {
          // Flow control: a slow reader (a blob streamed to disk) holds the server back, not memory.
          if (this.queue.length < QUEUED_MESSAGES_LOW && this.stream.isPaused()) this.stream.resume()
          yield next
          continue
        }
        if (this.status) throw this.status
        if (this.status === null && this.ended) return
        await new Promise<void>((resolve) => (this.wake = resolve))
      }
    } finally {
      if (this.status === undefined) this.cancel()
    }
  }

  /** Ends the call with `error` unless it has a status already. */
  fail(error: GrpcCallError): void {
    if (this.status !== undefined) return
    this.status = error
    this.cancel()
    this.notify()
  }

  private finish(trailers: IncomingHttpHeaders & IncomingHttpStatusHeader): void {
    if (this.status !== undefined) return
    const code = Number(trailers['grpc-status'] ?? GrpcStatus.UNKNOWN)
    if (code === GrpcStatus.OK) {
      this.status = null
    } else {
      const message = String(trailers['grpc-message'] ?? '')
      let details = message
      try {
        details = decodeURIComponent(message)
      } catch {
        // Not percent-encoded after all: keep it as sent.
      }
      const metadata: Record<string, string> = {}
      for (const [key, value] of Object.entries(trailers)) if (!key.startsWith(':') && typeof value === 'string') metadata[key] = value
      this.status = new GrpcCallError(code, details, metadata)
    }
    this.notify()
  }

  private receive(data: Buffer): void {
    this.pending = this.pending.length === 0 ? data : Buffer.concat([this.pending, data])
    while (this.pending.length >= 5) {
      const length = this.pending.readUInt32BE(1)
      if (this.pending[0] !== 0) return this.fail(new GrpcCallError(GrpcStatus.INTERNAL, 'compressed message received without a negotiated encoding'))
      if (length > MAX_MESSAGE_BYTES) return this.fail(new GrpcCallError(GrpcStatus.RESOURCE_EXHAUSTED, `message of ${length} bytes exceeds ${MAX_MESSAGE_BYTES}`))
      if (this.pending.length < 5 + length) break
      this.queue.push(this.pending.subarray(5, 5 + length))
      this.pending = this.pending.subarray(5 + length)
    }
    if (this.queue.length >= QUEUED_MESSAGES_HIGH) this.stream.pause()
    this.notify()
  }

  private notify(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}
