// Descriptors, manifests, indexes and image configs: the JSON shapes of the OCI image spec (Docker
// schema2 shares them), and validating parsers that turn bad JSON into one-line errors.
import {LazyError} from '../cli/errors.js'
import {isDigest, type Digest} from './digest.js'
import {isImageManifestMediaType, isIndexMediaType, isManifestMediaType} from './media-types.js'
import type {Platform} from './platform.js'

export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  urls?: string[]
  annotations?: Record<string, string>
  platform?: Platform
  artifactType?: string
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  config: Descriptor
  layers: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  artifactType?: string
  manifests: Descriptor[]
  subject?: Descriptor
  annotations?: Record<string, string>
}

export interface ImageConfig {
  architecture?: string
  os?: string
  variant?: string
  config?: Record<string, unknown>
  rootfs: {type: 'layers'; diff_ids: Digest[]}
  history?: Array<Record<string, unknown>>
  [key: string]: unknown
}

export type ParsedManifest = {kind: 'index'; mediaType: string; index: ImageIndex} | {kind: 'manifest'; mediaType: string; manifest: ImageManifest}

function invalid(what: string, why: string): LazyError {
  return new LazyError('UNSUPPORTED_MEDIA_TYPE', `${what}: ${why}`)
}

export function checkDescriptor(value: unknown, what: string): Descriptor {
  const d = value as Partial<Descriptor> | null
  if (!d || typeof d !== 'object') throw invalid(what, 'descriptor is not an object')
  if (typeof d.mediaType !== 'string' || d.mediaType.length === 0) throw invalid(what, 'descriptor has no mediaType')
  if (typeof d.digest !== 'string' || !isDigest(d.digest)) throw invalid(what, `descriptor digest "${String(d.digest)}" is not valid`)
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(what, 'descriptor size is not a non-negative integer')
  return d as Descriptor
}

/**
 * Parses manifest bytes. `contentType` (from the registry or the parent descriptor) decides the
 * kind; when the body has its own `mediaType` the two must agree (the distribution spec asks
 * clients to reject a mismatch). Schema 1 and unknown types are UNSUPPORTED_MEDIA_TYPE.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined, what: string): ParsedManifest {
  let json: Record<string, unknown>
  try {
    json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>
  } catch {
    throw invalid(what, 'manifest is not valid JSON')
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw invalid(what, 'manifest is not a JSON object')
  const bodyType = typeof json.mediaType === 'string' ? json.mediaType : undefined
  const type = (contentType ?? '').split(';')[0]!.trim()
  let mediaType = type
  if (!isManifestMediaType(type)) {
    if (bodyType && isManifestMediaType(bodyType)) mediaType = bodyType
    else if (!bodyType && Array.isArray(json.manifests)) mediaType = 'application/vnd.oci.image.index.v1+json'
    else if (!bodyType && json.config && Array.isArray(json.layers)) mediaType = 'application/vnd.oci.image.manifest.v1+json'
    else {
      const shown = bodyType ?? (type || 'none')
      throw invalid(what, `unsupported manifest media type "${shown}" (lazyctl reads OCI and Docker schema 2 manifests and indexes)`)
    }
  } else if (bodyType && bodyType !== type) {
    throw invalid(what, `manifest says mediaType "${bodyType}" but was served as "${type}"`)
  }
  if (json.schemaVersion !== 2) throw invalid(what, `manifest schemaVersion ${String(json.schemaVersion)} is not 2`)
  if (isIndexMediaType(mediaType)) {
    if (!Array.isArray(json.manifests)) throw invalid(what, 'index has no manifests list')
    json.manifests.forEach((m, i) => checkDescriptor(m, `${what}: manifests[${i}]`))
    return {kind: 'index', mediaType, index: json as unknown as ImageIndex}
  }
  if (isImageManifestMediaType(mediaType)) {
    checkDescriptor(json.config, `${what}: config`)
    if (!Array.isArray(json.layers)) throw invalid(what, 'manifest has no layers list')
    json.layers.forEach((l, i) => checkDescriptor(l, `${what}: layers[${i}]`))
    return {kind: 'manifest', mediaType, manifest: json as unknown as ImageManifest}
  }
  throw invalid(what, `unsupported manifest media type "${mediaType}"`)
}

export function parseImageConfig(bytes: Buffer, what: string): ImageConfig {
  let json: ImageConfig
  try {
    json = JSON.parse(bytes.toString('utf8')) as ImageConfig
  } catch {
    throw invalid(what, 'image config is not valid JSON')
  }
  if (!json || typeof json !== 'object' || !json.rootfs || !Array.isArray(json.rootfs.diff_ids)) {
    throw invalid(what, 'image config has no rootfs.diff_ids')
  }
  return json
}

/** Serialises a manifest/index/config the way registries store it: compact JSON, bytes kept. */
export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8')
}
