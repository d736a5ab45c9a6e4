// What the registry served in a time window, from its own log (not from any client's claims).
// A response counts when the registry logged its completion inside the window: a container's
// first output can only follow reads whose data had fully arrived.
import type {RegistryRequest} from '../../test/rig/registry.js'

/** The registry log's completion time of a request, in ms since the epoch (ns precision dropped). */
export function completedAt(request: RegistryRequest): number {
  return Date.parse(request.time)
}

/** Body bytes of GET responses (manifests, configs, blobs, ranges) completed in [fromMs, toMs]. */
export function bytesServedBetween(requests: RegistryRequest[], fromMs: number, toMs: number, filter: (r: RegistryRequest) => boolean = () => true): number {
  return requests
    .filter((r) => r.method === 'GET' && filter(r))
    .filter((r) => {
      const t = completedAt(r)
      return t >= fromMs && t <= toMs
    })
    .reduce((sum, r) => sum + r.written, 0)
}

/** Blob GET requests completed in the window (for counting range reads). */
export function blobGetsBetween(requests: RegistryRequest[], fromMs: number, toMs: number): RegistryRequest[] {
  return requests.filter((r) => r.method === 'GET' && r.kind === 'blob' && completedAt(r) >= fromMs && completedAt(r) <= toMs)
}
