// The snapshot labels a remote (lazy) snapshotter needs to mount a layer without downloading it,
// as nerdctl sets them: containerd's CRI labels (AppendInfoHandlerWrapper) for every remote
// snapshotter it knows, plus stargz's extra labels when the snapshotter name contains "stargz".
import type {Descriptor} from '../oci/descriptor.js'

export const SNAPSHOT_REF_LABEL = 'containerd.io/snapshot.ref'
export const CRI_IMAGE_REF_LABEL = 'containerd.io/snapshot/cri.image-ref'
export const CRI_LAYER_DIGEST_LABEL = 'containerd.io/snapshot/cri.layer-digest'
export const CRI_IMAGE_LAYERS_LABEL = 'containerd.io/snapshot/cri.image-layers'
export const CRI_MANIFEST_DIGEST_LABEL = 'containerd.io/snapshot/cri.manifest-digest'
export const REMOTE_URLS_LABEL = 'containerd.io/snapshot/remote/urls'
export const STARGZ_PREFETCH_LABEL = 'containerd.io/snapshot/remote/stargz.prefetch'
/** Only labels with these prefixes reach a proxy snapshotter (containerd's FilterInheritedLabels). */
export const INHERITED_LABEL_PREFIX = 'containerd.io/snapshot/'

/** containerd limits a label's key + value to 4096 bytes. */
const MAX_LABEL_BYTES = 4096
/** nerdctl's prefetch size for layers without a landmark. */
const STARGZ_DEFAULT_PREFETCH = 10 << 20

/** Snapshotters that take remote-snapshot labels, as nerdctl's list (pkg/imgutil/snapshotter.go). */
export function isRemoteSnapshotter(snapshotter: string): boolean {
  return ['stargz', 'soci', 'nydus', 'overlaybd', 'cvmfs-snapshotter'].some((name) => snapshotter.includes(name))
}

export interface RemoteLayerContext {
  /** The image reference as the user named it, normalised (`127.0.0.1:5000/demo:v1`). */
  imageRef: string
  manifestDigest: string
  layers: readonly Descriptor[]
}

/** A layer descriptor's annotations that containerd passes on to the snapshotter as labels. */
export function inheritedLabels(layer: Descriptor): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(layer.annotations ?? {})) if (k.startsWith(INHERITED_LABEL_PREFIX)) out[k] = v
  return out
}

/**
 * The extra Prepare labels for layer `index` on `snapshotter` (empty for a normal snapshotter).
 * Inherited annotations such as the eStargz TOC digest are added by the unpacker for every
 * snapshotter, as containerd's does; these are the ones nerdctl adds on top.
 */
export function remoteSnapshotLabels(snapshotter: string, ctx: RemoteLayerContext, index: number): Record<string, string> {
  if (!isRemoteSnapshotter(snapshotter)) return {}
  const layer = ctx.layers[index]!
  const labels: Record<string, string> = {
    [CRI_IMAGE_REF_LABEL]: ctx.imageRef,
    [CRI_LAYER_DIGEST_LABEL]: layer.digest,
    [CRI_MANIFEST_DIGEST_LABEL]: ctx.manifestDigest,
  }
  const layers = fitLabel(CRI_IMAGE_LAYERS_LABEL, ctx.layers.slice(index).map((l) => l.digest))
  labels[CRI_IMAGE_LAYERS_LABEL] = layers.join(',')
  if (snapshotter.includes('stargz')) {
    // stargz's AppendExtraLabelsHandler fills these in only when missing.
    labels[REMOTE_URLS_LABEL] ??= (layer.urls ?? []).join(',')
    labels[STARGZ_PREFETCH_LABEL] ??= String(STARGZ_DEFAULT_PREFETCH)
    layers.forEach((digest, j) => {
      const neighbour = ctx.layers.find((l) => l.digest === digest)
      const urls = (neighbour?.urls ?? []).join(',')
      const key = `${REMOTE_URLS_LABEL}.${j}`
      if (urls && Buffer.byteLength(key) + Buffer.byteLength(urls) <= MAX_LABEL_BYTES) labels[key] = urls
    })
  }
  return labels
}

/** The longest prefix of `items` whose comma-joined value fits the label size limit with `key`. */
function fitLabel(key: string, items: string[]): string[] {
  const out: string[] = []
  let bytes = Buffer.byteLength(key)
  for (const item of items) {
    const add = Buffer.byteLength(item) + (out.length > 0 ? 1 : 0)
    if (bytes + add > MAX_LABEL_BYTES) break
    bytes += add
    out.push(item)
  }
  return out
}
