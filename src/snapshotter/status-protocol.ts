// The method paths and hint messages of `lazyctl.v1.Status` (status-service.ts), apart from
// grpc-js: the early hint of `lazyctl run` (src/run/early-hint.ts) speaks them without it.

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
