// Which layer a Prepare is about, from the labels containerd's unpacker, its CRI plugin, nerdctl
// and `ctr-remote image rpull` put on it (estargz.md §5.2). CRI labels are tried first, then the
// `remote/stargz.*` ones, as the stargz snapshotter does.

/** The label whose presence asks for a remote snapshot; its value is the name to commit under. */
export const TARGET_SNAPSHOT_LABEL = 'containerd.io/snapshot.ref'
/** Written on remote snapshots; drives remount on restart and the usage shortcut. */
export const REMOTE_SNAPSHOT_LABEL = 'containerd.io/snapshot/remote'
export const REMOTE_SNAPSHOT_LABEL_VALUE = 'remote snapshot'

export const CRI_IMAGE_REF_LABEL = 'containerd.io/snapshot/cri.image-ref'
export const CRI_LAYER_DIGEST_LABEL = 'containerd.io/snapshot/cri.layer-digest'
export const CRI_IMAGE_LAYERS_LABEL = 'containerd.io/snapshot/cri.image-layers'
export const STARGZ_REFERENCE_LABEL = 'containerd.io/snapshot/remote/stargz.reference'
export const STARGZ_DIGEST_LABEL = 'containerd.io/snapshot/remote/stargz.digest'
export const STARGZ_LAYERS_LABEL = 'containerd.io/snapshot/remote/stargz.layers'
export const URLS_LABEL = 'containerd.io/snapshot/remote/urls'
export const PREFETCH_SIZE_LABEL = 'containerd.io/snapshot/remote/stargz.prefetch'
export const TOC_DIGEST_LABEL = 'containerd.io/snapshot/stargz/toc.digest'
export const UNCOMPRESSED_SIZE_LABEL = 'io.containers.estargz.uncompressed-size'

const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/

/** One way to find the layer: an image reference and the layer's blob digest in it. */
export interface RemoteLayerSource {
  imageRef: string
  layerDigest: string
  /** Digests of this and the following layers of the image (for neighbours' resolution; may be empty). */
  imageLayers: string[]
}

export interface RemoteLayerRequestLabels {
  /** The chain ID to commit the mounted layer under. */
  target: string
  /** Candidates in the order to try them (CRI's, then stargz's). */
  sources: RemoteLayerSource[]
  /** sha256 of the TOC JSON, from the manifest's layer annotation: the root of trust of lazy reads. */
  tocDigest: string
  urls: string[]
  /** Prefetch bytes for layers without a landmark (ctr-remote sets 10 MiB). */
  prefetchSize?: number
}

export type RemoteLabelsDecision =
  | {remote: false; reason?: undefined}
  | {remote: 'refused'; reason: string; target: string}
  | {remote: true; request: RemoteLayerRequestLabels}

/**
 * Decides from the labels whether to try a remote snapshot. No target label: an ordinary
 * snapshot, no reason to log. Target but not enough to find or verify the layer: refused, with the reason.
 */
export function readRemoteLabels(labels: Record<string, string>): RemoteLabelsDecision {
  const target = labels[TARGET_SNAPSHOT_LABEL]
  if (!target) return {remote: false}
  const sources: RemoteLayerSource[] = []
  const invalid: string[] = []
  const candidates: Array<[string, string, string]> = [
    [CRI_IMAGE_REF_LABEL, CRI_LAYER_DIGEST_LABEL, CRI_IMAGE_LAYERS_LABEL],
    [STARGZ_REFERENCE_LABEL, STARGZ_DIGEST_LABEL, STARGZ_LAYERS_LABEL],
  ]
  for (const [refLabel, digestLabel, layersLabel] of candidates) {
    const imageRef = labels[refLabel]
    const layerDigest = labels[digestLabel]
    if (!imageRef || !layerDigest) continue
    if (!DIGEST_PATTERN.test(layerDigest)) {
      invalid.push(`${digestLabel}=${JSON.stringify(layerDigest)} is not a sha256 digest`)
      continue
    }
    const imageLayers = (labels[layersLabel] ?? '').split(',').filter((digest) => DIGEST_PATTERN.test(digest))
    if (!sources.some((s) => s.imageRef === imageRef && s.layerDigest === layerDigest)) sources.push({imageRef, layerDigest, imageLayers})
  }
  if (sources.length === 0) {
    const why = invalid.length > 0 ? invalid.join('; ') : `no image reference and layer digest labels (${CRI_IMAGE_REF_LABEL} + ${CRI_LAYER_DIGEST_LABEL}, or ${STARGZ_REFERENCE_LABEL} + ${STARGZ_DIGEST_LABEL})`
    return {remote: 'refused', target, reason: why}
  }
  const tocDigest = labels[TOC_DIGEST_LABEL]
  if (!tocDigest) return {remote: 'refused', target, reason: `layer has no ${TOC_DIGEST_LABEL} annotation (not an eStargz layer)`}
  if (!DIGEST_PATTERN.test(tocDigest)) return {remote: 'refused', target, reason: `${TOC_DIGEST_LABEL}=${JSON.stringify(tocDigest)} is not a sha256 digest`}
  const request: RemoteLayerRequestLabels = {
    target,
    sources,
    tocDigest,
    urls: (labels[URLS_LABEL] ?? '').split(',').filter(Boolean),
  }
  const prefetch = Number(labels[PREFETCH_SIZE_LABEL])
  if (labels[PREFETCH_SIZE_LABEL] !== undefined && Number.isSafeInteger(prefetch) && prefetch >= 0) request.prefetchSize = prefetch
  return {remote: true, request}
}

/** Which image and layer a Prepare is about, for logs and status (CRI's labels first, then stargz's). */
export function layerSubject(labels: Record<string, string>): {image?: string; layer?: string} {
  const image = labels[CRI_IMAGE_REF_LABEL] ?? labels[STARGZ_REFERENCE_LABEL]
  const layer = labels[CRI_LAYER_DIGEST_LABEL] ?? labels[STARGZ_DIGEST_LABEL]
  return {...(image ? {image} : {}), ...(layer ? {layer} : {})}
}
