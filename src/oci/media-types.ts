// Media types of OCI and Docker image objects, and what kind of object each one names.

export const MEDIA_TYPE_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const MEDIA_TYPE_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const MEDIA_TYPE_OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
export const MEDIA_TYPE_OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar'
export const MEDIA_TYPE_OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
export const MEDIA_TYPE_OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
export const MEDIA_TYPE_OCI_LAYER_NONDIST_GZIP = 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip'
export const MEDIA_TYPE_OCI_EMPTY = 'application/vnd.oci.empty.v1+json'

export const MEDIA_TYPE_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const MEDIA_TYPE_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const MEDIA_TYPE_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
export const MEDIA_TYPE_DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar'
export const MEDIA_TYPE_DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
export const MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'

/**
 * The Accept list for manifest requests. All four types, always: distribution 2.8 answers 404 for
 * an OCI object when its type is missing from Accept, and 400 for a Docker one asked as OCI only.
 */
export const MANIFEST_ACCEPT = [MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_DOCKER_MANIFEST].join(', ')

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_OCI_INDEX || mediaType === MEDIA_TYPE_DOCKER_LIST
}

export function isImageManifestMediaType(mediaType: string): boolean {
  return mediaType === MEDIA_TYPE_OCI_MANIFEST || mediaType === MEDIA_TYPE_DOCKER_MANIFEST
}

export function isManifestMediaType(mediaType: string): boolean {
  return isIndexMediaType(mediaType) || isImageManifestMediaType(mediaType)
}

export type LayerCompression = 'gzip' | 'zstd' | 'none'

/** How a layer blob is compressed, from its media type; undefined when it is not a layer we know. */
export function layerCompression(mediaType: string): LayerCompression | undefined {
  switch (mediaType) {
    case MEDIA_TYPE_OCI_LAYER_GZIP:
    case MEDIA_TYPE_OCI_LAYER_NONDIST_GZIP:
    case MEDIA_TYPE_DOCKER_LAYER_GZIP:
    case MEDIA_TYPE_DOCKER_FOREIGN_LAYER_GZIP:
      return 'gzip'
    case MEDIA_TYPE_OCI_LAYER_ZSTD:
      return 'zstd'
    case MEDIA_TYPE_OCI_LAYER:
    case MEDIA_TYPE_DOCKER_LAYER:
      return 'none'
    default:
      return undefined
  }
}
