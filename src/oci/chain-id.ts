// Chain IDs: the identity of a stack of layers, as the OCI image spec defines it. Snapshots are
// committed under these names.
import {sha256Digest, type Digest} from './digest.js'

/** ChainID(L0) = DiffID(L0); ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln)). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = []
  for (const diffId of diffIds) {
    const prev = out[out.length - 1]
    out.push(prev === undefined ? diffId : sha256Digest(`${prev} ${diffId}`))
  }
  return out
}

export function chainId(diffIds: readonly Digest[]): Digest | undefined {
  return chainIds(diffIds).at(-1)
}
