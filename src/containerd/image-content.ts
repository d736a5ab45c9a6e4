// Reading an image back out of the content store: the manifest for a platform, its config, and the
// chain ID of its layers (the parent of a container's rootfs).
import {LazyError} from '../cli/errors.js'
import {chainId} from '../oci/chain-id.js'
import {parseImageConfig, parseManifest, type Descriptor, type ImageConfig, type ImageManifest} from '../oci/descriptor.js'
import type {Digest} from '../oci/digest.js'
import {checkImagePlatform, configPlatform, selectManifestReading, type Platform} from '../oci/platform.js'
import {GrpcStatus, isGrpcStatus, type ContainerdConnection} from './connection.js'
import {readContentBytes} from './content.js'
import type {ImageRecord} from './images.js'

export interface ResolvedImage {
  name: string
  target: Descriptor
  manifestDescriptor: Descriptor
  manifest: ImageManifest
  config: ImageConfig
  /** ChainID of all layers: the snapshot a container's rootfs is prepared on. */
  chainId: Digest
}

export async function resolveStoredImage(conn: ContainerdConnection, image: ImageRecord, platform?: Platform): Promise<ResolvedImage> {
  let desc = image.target
  let parsed = parseManifest(await readContentBytes(conn, desc.digest), desc.mediaType, image.name)
  const single = parsed.kind === 'manifest'
  if (parsed.kind === 'index') {
    // An entry without a platform is known by its config, if the store has it (a pull stores the
    // chosen platform's manifest and config only).
    desc = await selectManifestReading(parsed.index.manifests, platform, image.name, async (entry) => {
      try {
        const child = parseManifest(await readContentBytes(conn, entry.digest), entry.mediaType, image.name)
        return child.kind === 'manifest' ? configPlatform(parseImageConfig(await readContentBytes(conn, child.manifest.config.digest), `${image.name} config`)) : undefined
      } catch (err) {
        if (isGrpcStatus(err, GrpcStatus.NOT_FOUND)) return undefined
        throw err
      }
    })
    parsed = parseManifest(await readContentBytes(conn, desc.digest), desc.mediaType, image.name)
  }
  if (parsed.kind !== 'manifest') throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${image.name}: nested index is not supported`)
  const config = parseImageConfig(await readContentBytes(conn, parsed.manifest.config.digest), `${image.name} config`)
  if (single) checkImagePlatform(config, platform, image.name)
  const top = chainId(config.rootfs.diff_ids)
  if (!top) throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${image.name} has no layers`)
  return {name: image.name, target: image.target, manifestDescriptor: desc, manifest: parsed.manifest, config, chainId: top}
}
