// `images`, `rmi`, `pull` behind the commands: containerd's image store as nerdctl shows it.
import {LazyError} from '../cli/errors.js'
import type {ContainerdConnection} from '../containerd/connection.js'
import {listContainers} from '../containerd/containers.js'
import {resolveStoredImage} from '../containerd/image-content.js'
import {deleteImage, getImage, listImages} from '../containerd/images.js'
import {pullImage, type PullResult} from '../containerd/pull.js'
import type {Platform} from '../oci/platform.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {hintLayersToSnapshotter, notLazyHandler, startLazySnapshotter, whileSnapshotterStarts} from './lazy-snapshotter.js'
import {registryFetcher} from './source-fetcher.js'

export interface ImageSummary {
  name: string
  repository: string
  tag: string
  digest: string
  mediaType: string
  createdAt?: string
  /** Compressed size of this platform's manifest, config and layers, when readable. */
  size?: number
}

export async function listImageSummaries(conn: ContainerdConnection): Promise<ImageSummary[]> {
  const images = await listImages(conn)
  return Promise.all(
    images.map(async (img) => {
      const at = img.name.lastIndexOf(':')
      const slash = img.name.lastIndexOf('/')
      const hasTag = at > slash
      const out: ImageSummary = {
        name: img.name,
        repository: hasTag ? img.name.slice(0, at) : img.name.split('@')[0]!,
        tag: hasTag ? img.name.slice(at + 1).split('@')[0]! : '<none>',
        digest: img.target.digest,
        mediaType: img.target.mediaType,
      }
      if (img.createdAt) out.createdAt = img.createdAt.toISOString()
      try {
        const r = await resolveStoredImage(conn, img)
        out.size = r.manifestDescriptor.size + r.manifest.config.size + r.manifest.layers.reduce((n, l) => n + l.size, 0)
      } catch {
        // content of another platform only, or partly collected: no size
      }
      return out
    }),
  )
}

/**
 * The image names `nameOrRef` stands for: the name itself, its normalised reference, or (as docker
 * and nerdctl take it) an IMAGE ID that `images` prints, a prefix of the target digest, which may
 * name several tags of one image.
 */
async function imageNames(conn: ContainerdConnection, nameOrRef: string): Promise<string[]> {
  if (await getImage(conn, nameOrRef)) return [nameOrRef]
  const id = /^(?:sha256:)?([0-9a-f]{4,64})$/.exec(nameOrRef)?.[1]
  let normalised: string | undefined
  try {
    normalised = formatReference(parseReference(nameOrRef))
  } catch (err) {
    if (!id) throw err
  }
  if (normalised && (await getImage(conn, normalised))) return [normalised]
  if (id) {
    const matching = (await listImages(conn)).filter((img) => img.target.digest.startsWith(`sha256:${id}`))
    if (new Set(matching.map((img) => img.target.digest)).size > 1) {
      throw new LazyError('USAGE', `image ID prefix "${id}" is ambiguous (${matching.length} images)`, {hint: 'give more of the ID, or the image name'})
    }
    if (matching.length > 0) return matching.map((img) => img.name)
  }
  throw new LazyError('IMAGE_NOT_FOUND', `no such image: ${nameOrRef}`, {hint: 'lazyctl images lists them'})
}

/**
 * Removes image records; without `force`, refuses when a container was created from the image, or
 * when an image ID names several tags (as docker does). Returns the names removed.
 */
export async function removeImage(conn: ContainerdConnection, nameOrRef: string, options: {force: boolean}): Promise<string[]> {
  const names = await imageNames(conn, nameOrRef)
  if (!options.force) {
    if (names.length > 1) {
      throw new LazyError('IMAGE_IN_USE', `image ${nameOrRef} is tagged as ${names.join(', ')}`, {hint: 'remove it by name, or all of them with rmi -f'})
    }
    const users = (await listContainers(conn)).filter((c) => names.includes(c.image))
    if (users.length > 0) {
      throw new LazyError('IMAGE_IN_USE', `image ${names[0]} is used by container ${users[0]!.labels['lazyctl/name'] ?? users[0]!.id}`, {hint: 'remove the container first, or use rmi -f'})
    }
  }
  // sync: return only after containerd's GC has dropped the content and snapshots nothing else uses.
  for (const name of names) await deleteImage(conn, name, {sync: true})
  return names
}

export async function pullImageFromRegistry(
  conn: ContainerdConnection,
  reference: string,
  options: {snapshotter: string; platform?: Platform; onProgress?: (line: string) => void; requireLazy?: boolean; onNotice?: (line: string) => void},
): Promise<PullResult> {
  const ref = parseReference(reference)
  const {ready: snapshotterReady, answering} = startLazySnapshotter(conn, options.snapshotter)
  const {requireLazy, onNotice, ...pullOptions} = options
  const onNotLazy = notLazyHandler(answering, {requireLazy, notice: onNotice})
  return whileSnapshotterStarts(snapshotterReady, async () => {
    const fetcher = await registryFetcher(ref)
    try {
      return await pullImage(conn, fetcher, ref, {...pullOptions, snapshotterReady, onManifest: hintLayersToSnapshotter(answering), onNotLazy})
    } finally {
      await fetcher.close()
    }
  })
}
