// The method paths and hint messages of `lazyctl.v1.Status` (status-service.ts), apart from
// grpc-js: `lazyctl run` and `pull` send their hints (src/run/early-hint.ts, lazy-snapshotter.ts)
// without loading it.
import {grpcFrame} from '../containerd/grpc-transport.js'

export const STATUS_METHOD_PATH = '/lazyctl.v1.Status/Get'
export const RESOLVE_AHEAD_METHOD_PATH = '/lazyctl.v1.Status/ResolveAhead'

/**
 * A hint: these layers of `image` will be prepared soon (see RemoteLayerMounter.resolveAhead).
 * Without layers, the image's lazy layers for `platform` (os/arch[/variant], default the
 * daemon's) are read from its manifest.
 */
export interface ResolveAheadRequest {
  image: string
  layers?: string[]
  platform?: string
}

export interface ResolveAheadResponse {
  /** Layers whose resolution this hint started (not those mounted, known or being resolved). */
  started: number
}

/**
 * Sends a ResolveAhead hint as a gRPC call of the snapshotter's status service, written directly on
 * HTTP/2 (grpc-js would cost its load time in the CLI, the delay the hint exists to hide). Fire and
 * forget: the connection holds no reference on the process and is dropped after a second at most.
 */
export function sendResolveAhead(socket: string, request: ResolveAheadRequest, timeoutMs = 1000): void {
  const frame = grpcFrame(Buffer.from(JSON.stringify(request)))
  // Loaded here, not at the top: node:http2 costs ~25 ms to load, which a line that sends no hint
  // (`--version`, `run --snapshotter overlayfs`) should not pay.
  const http2 = process.getBuiltinModule('node:http2')
  const net = process.getBuiltinModule('node:net')
  const session = http2.connect('http://localhost', {createConnection: () => net.connect(socket)})
  const done = (): void => {
    clearTimeout(timer)
    session.destroy()
  }
  const timer = setTimeout(done, timeoutMs)
  timer.unref()
  session.on('error', done)
  session.unref()
  const call = session.request({':method': 'POST', ':path': RESOLVE_AHEAD_METHOD_PATH, 'content-type': 'application/grpc', te: 'trailers'})
  call.on('error', done)
  call.on('close', done)
  call.resume()
  call.end(frame)
}
