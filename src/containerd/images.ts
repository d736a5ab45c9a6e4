// Image records: a name pointing at a top descriptor (index or manifest). The record is the GC
// root that keeps the image's content and, through the config's gc.ref.snapshot label, its snapshots.
import type {Descriptor} from '../oci/descriptor.js'
import type {Digest} from '../oci/digest.js'
import {GrpcStatus, isGrpcStatus, type ContainerdConnection} from './connection.js'
import type {Image__Output} from './generated/containerd/services/images/v1/Image.js'
import type {Descriptor__Output} from './generated/containerd/types/Descriptor.js'

export interface ImageRecord {
  name: string
  target: Descriptor
  labels: Record<string, string>
  createdAt?: Date
  updatedAt?: Date
}

export function toProtoDescriptor(desc: Descriptor): {media_type: string; digest: string; size: string; annotations: Record<string, string>} {
  return {media_type: desc.mediaType, digest: desc.digest, size: String(desc.size), annotations: desc.annotations ?? {}}
}

export function fromProtoDescriptor(desc: Descriptor__Output): Descriptor {
  const out: Descriptor = {mediaType: desc.media_type, digest: desc.digest as Digest, size: Number(desc.size)}
  if (Object.keys(desc.annotations).length > 0) out.annotations = desc.annotations
  return out
}

function toRecord(image: Image__Output): ImageRecord {
  const out: ImageRecord = {name: image.name, target: fromProtoDescriptor(image.target!), labels: image.labels}
  if (image.created_at) out.createdAt = timestampToDate(image.created_at)
  if (image.updated_at) out.updatedAt = timestampToDate(image.updated_at)
  return out
}

export function timestampToDate(ts: {seconds: string; nanos: number}): Date {
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6))
}

export async function getImage(conn: ContainerdConnection, name: string): Promise<ImageRecord | undefined> {
  try {
    const res = await conn.call('images', 'Get', {name}, `image ${name}`)
    return toRecord(res.image!)
  } catch (err) {
    if (isGrpcStatus(err, GrpcStatus.NOT_FOUND)) return undefined
    throw err
  }
}

export async function listImages(conn: ContainerdConnection, filters: string[] = []): Promise<ImageRecord[]> {
  const res = await conn.call('images', 'List', {filters}, 'list images')
  return res.images.map(toRecord)
}

/** Creates the record, or points an existing one at the new target (the Go client's create-or-update). */
export async function putImage(conn: ContainerdConnection, name: string, target: Descriptor, options: {labels?: Record<string, string>; lease?: string} = {}): Promise<ImageRecord> {
  const image = {name, target: toProtoDescriptor(target), labels: options.labels ?? {}}
  const callOptions = options.lease ? {lease: options.lease} : {}
  for (let attempt = 0; ; attempt++) {
    try {
      return toRecord((await conn.call('images', 'Create', {image}, `create image ${name}`, callOptions)).image!)
    } catch (err) {
      if (!isGrpcStatus(err, GrpcStatus.ALREADY_EXISTS)) throw err
    }
    try {
      return toRecord((await conn.call('images', 'Update', {image, update_mask: {paths: []}}, `update image ${name}`, callOptions)).image!)
    } catch (err) {
      // Deleted between our Create and Update: create again (once).
      if (!isGrpcStatus(err, GrpcStatus.NOT_FOUND) || attempt > 0) throw err
    }
  }
}

/** Deletes the record; `sync` waits for containerd's GC so content and snapshots are gone on return. */
export async function deleteImage(conn: ContainerdConnection, name: string, options: {sync?: boolean} = {}): Promise<void> {
  await conn.call('images', 'Delete', {name, sync: options.sync ?? false}, `delete image ${name}`)
}
