// Pulling an image into containerd the way containerd's 1.6 client and nerdctl do: inside a lease,
// fetch index/manifest/config into the content store with GC labels on the parents, unpack the
// layers into the chosen snapshotter (remote-snapshot labels for lazy snapshotters), label the config
// with the top snapshot, create the image record, delete the lease.
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {LazyError} from '../cli/errors.js'
import {parseImageConfig, parseManifest, type Descriptor, type ImageManifest} from '../oci/descriptor.js'
import {DigestVerifier, type Digest} from '../oci/digest.js'
import type {Platform} from '../oci/platform.js'
import {formatReference, type ImageReference} from '../oci/reference.js'
import type {ContainerdConnection} from './connection.js'
import {contentInfo, readContentBytes, setContentLabels, writeContent} from './content.js'
import {checkImagePlatform, configPlatform, selectManifestReading, type PlatformReader} from '../oci/platform.js'
import {putImage, type ImageRecord} from './images.js'
import {withLease} from './leases.js'
import {isRemoteSnapshotter, remoteSnapshotLabels} from './remote-snapshot-labels.js'
import {unpackLayers, type UnpackResult} from './unpack.js'

/** Manifests and configs are read whole; larger ones are refused, as readContentBytes refuses them. */
const SMALL_BLOB_LIMIT = 8 << 20

/**
 * Where a pull gets its bytes: the registry client (src/registry) behind a small interface, so
 * this module knows nothing of HTTP and any source (an OCI layout, a test double) can feed it.
 */
export interface ImageFetcher {
  /** The top descriptor (index or manifest) that `ref` names. */
  resolve(ref: ImageReference): Promise<Descriptor>
  /** A stream of the blob or manifest `desc` names (the content store verifies its digest). */
  fetch(ref: ImageReference, desc: Descriptor): Promise<Readable>
}

export interface PullOptions {
  snapshotter: string
  platform?: Platform
  /** Unpack into the snapshotter (default true); false fetches every layer blob instead. */
  unpack?: boolean
  /** Labels of the image record. */
  labels?: Record<string, string>
  onProgress?: (line: string) => void
  /**
   * Settles when the snapshotter can take the layers. The manifest and config are fetched before it
   * is awaited, so a snapshotter that is just starting costs no extra time.
   */
  snapshotterReady?: Promise<unknown>
  /** Called once the image's manifest is known, before its config and layers are fetched. */
  onManifest?: (name: string, manifest: ImageManifest) => void
  /**
   * A lazy snapshotter declined a layer and it is about to be downloaded: say so, or throw to refuse
   * (strict mode). Only for snapshotters that take remote-snapshot labels.
   */
  onNotLazy?: (event: {name: string; layer: Descriptor; index: number; chainId: Digest}) => Promise<void>
}

export interface PullResult {
  image: ImageRecord
  manifest: Descriptor
  config: Descriptor
  unpack?: UnpackResult
}

export const GC_REF_CONTENT = 'containerd.io/gc.ref.content'
export const GC_REF_SNAPSHOT = 'containerd.io/gc.ref.snapshot'
export const DISTRIBUTION_SOURCE = 'containerd.io/distribution.source'

/** The name containerd's image store knows `ref` by (`127.0.0.1:5000/demo:v1`, `docker.io/library/busybox:latest`). */
export function imageStoreName(ref: ImageReference): string {
  return formatReference(ref)
}

export async function pullImage(conn: ContainerdConnection, fetcher: ImageFetcher, ref: ImageReference, options: PullOptions): Promise<PullResult> {
  const name = imageStoreName(ref)
  const sourceLabel = {[`${DISTRIBUTION_SOURCE}.${ref.registry}`]: ref.repository}
  return withLease(conn, async (lease) => {
    const storeLayer = async (desc: Descriptor): Promise<void> => {
      await writeContent(conn, {ref: `layer-${desc.digest}`, expected: desc.digest, size: desc.size, labels: sourceLabel, lease}, () => fetcher.fetch(ref, desc))
    }
    // Manifests and configs are small and parsed whole. Each is used (its layers made known, its
    // config fetched, its diff IDs read) as soon as its bytes are here and match its digest; the
    // content store takes the same bytes meanwhile (four round trips), awaited before anything
    // refers to them.
    const readSmall = async (desc: Descriptor, kind: 'manifest' | 'config'): Promise<Buffer> => {
      if (desc.size > SMALL_BLOB_LIMIT) throw new LazyError('REGISTRY', `${name}: the ${kind} ${desc.digest} is ${desc.size} bytes; lazyctl reads at most ${SMALL_BLOB_LIMIT} bytes of a ${kind}`)
      const chunks: Buffer[] = []
      await pipeline(await fetcher.fetch(ref, desc), new DigestVerifier(desc.digest, {size: desc.size, what: `${name}: the ${kind} ${desc.digest}`}), async (verified: AsyncIterable<Buffer>) => {
        for await (const chunk of verified) chunks.push(chunk)
      })
      return Buffer.concat(chunks)
    }
    const fetchSmall = async (desc: Descriptor, kind: 'manifest' | 'config'): Promise<{bytes: Buffer; stored: Promise<unknown>}> => {
      const bytes = await readSmall(desc, kind)
      const stored = writeContent(conn, {ref: `${kind}-${desc.digest}`, expected: desc.digest, size: desc.size, labels: sourceLabel, lease}, () => Readable.from([bytes]))
      stored.catch(() => undefined) // awaited later; a failure before then must not go unhandled
      return {bytes, stored}
    }
    const top = await fetcher.resolve(ref)
    let manifestDesc = top
    let fetched = await fetchSmall(top, 'manifest')
    let parsed = parseManifest(fetched.bytes, top.mediaType, name)
    if (parsed.kind === 'index') {
      // Like containerd, label every child before filtering by platform.
      await fetched.stored
      await setContentLabels(conn, top.digest, Object.fromEntries(parsed.index.manifests.map((m, i) => [`${GC_REF_CONTENT}.m.${i}`, m.digest])), lease)
      // Entries without `platform` are matched by their config's os/architecture, as containerd does.
      // Read, not stored: the chosen image's manifest and config are stored below like any other
      // (two writes of one blob at once collide on containerd's ingest lock).
      const readPlatform: PlatformReader = async (desc) => {
        const child = parseManifest(await readSmall(desc, 'manifest'), desc.mediaType, name)
        return child.kind === 'manifest' ? configPlatform(parseImageConfig(await readSmall(child.manifest.config, 'config'), `${name} config`)) : undefined
      }
      manifestDesc = await selectManifestReading(parsed.index.manifests, options.platform, name, readPlatform)
      // A platform's manifest already in the store is read there, not fetched again (as containerd does).
      fetched = (await contentInfo(conn, manifestDesc.digest))
        ? {bytes: await readContentBytes(conn, manifestDesc.digest), stored: Promise.resolve()}
        : await fetchSmall(manifestDesc, 'manifest')
      parsed = parseManifest(fetched.bytes, manifestDesc.mediaType, name)
      if (parsed.kind !== 'manifest') throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${name}: an index inside an index is not supported`)
    }
    const manifest: ImageManifest = parsed.manifest
    options.onManifest?.(name, manifest)
    // The manifest's GC labels name content that must be in the store first (inside the lease).
    const manifestLabelled = fetched.stored.then(() =>
      setContentLabels(
        conn,
        manifestDesc.digest,
        {[`${GC_REF_CONTENT}.config`]: manifest.config.digest, ...Object.fromEntries(manifest.layers.map((l, i) => [`${GC_REF_CONTENT}.l.${i}`, l.digest]))},
        lease,
      ),
    )
    manifestLabelled.catch(() => undefined)
    const configFetched = await fetchSmall(manifest.config, 'config')
    const config = parseImageConfig(configFetched.bytes, `${name} config`)
    // A single-platform image named with --platform must be of it (an index entry already matched).
    if (manifestDesc === top) checkImagePlatform(config, options.platform, name)
    const fetchLayer = async (layer: Descriptor, i: number): Promise<void> => {
      options.onProgress?.(`fetching layer ${i + 1}/${manifest.layers.length} ${layer.digest}`)
      await storeLayer(layer)
    }
    await options.snapshotterReady
    let unpack: UnpackResult | undefined
    if (options.unpack === false) {
      for (const [i, layer] of manifest.layers.entries()) await fetchLayer(layer, i)
    } else {
      const remote = {imageRef: name, manifestDigest: manifestDesc.digest, layers: manifest.layers}
      unpack = await unpackLayers(conn, {
        snapshotter: options.snapshotter,
        lease,
        layers: manifest.layers,
        diffIds: config.rootfs.diff_ids,
        layerLabels: (i) => remoteSnapshotLabels(options.snapshotter, remote, i),
        fetchLayer,
        onLayer: (e) => options.onProgress?.(`layer ${e.index + 1}/${manifest.layers.length} ${e.outcome}`),
        ...(options.onNotLazy && isRemoteSnapshotter(options.snapshotter)
          ? {onDownload: (index: number, chainId: Digest) => options.onNotLazy!({name, layer: manifest.layers[index]!, index, chainId})}
          : {}),
      })
    }
    await Promise.all([configFetched.stored, manifestLabelled])
    // The GC root of the snapshot chain: image → … → config → top snapshot.
    if (unpack) await setContentLabels(conn, manifest.config.digest, {[`${GC_REF_SNAPSHOT}.${options.snapshotter}`]: unpack.chainId}, lease)
    const image = await putImage(conn, name, top, {labels: options.labels ?? {}, lease})
    const result: PullResult = {image, manifest: manifestDesc, config: manifest.config}
    if (unpack) result.unpack = unpack
    return result
  })
}

/**
 * Unpacks an image already in the content store (e.g. imported, or pulled for another snapshotter)
 * into `snapshotter`; layers must be in the store unless the snapshotter provides them remotely.
 */
export async function unpackStoredImage(conn: ContainerdConnection, name: string, manifestDesc: Descriptor, manifest: ImageManifest, diffIds: readonly Digest[], snapshotter: string): Promise<UnpackResult> {
  return withLease(conn, async (lease) => {
    const remote = {imageRef: name, manifestDigest: manifestDesc.digest, layers: manifest.layers}
    const result = await unpackLayers(conn, {
      snapshotter,
      lease,
      layers: manifest.layers,
      diffIds,
      layerLabels: (i) => remoteSnapshotLabels(snapshotter, remote, i),
      fetchLayer: async (layer) => {
        if (await contentInfo(conn, layer.digest)) return
        throw new LazyError('NOT_FOUND', `layer ${layer.digest} of ${name} is not in containerd's content store`, {hint: `pull the image again: lazyctl pull ${name}`})
      },
    })
    await setContentLabels(conn, manifest.config.digest, {[`${GC_REF_SNAPSHOT}.${snapshotter}`]: result.chainId}, lease)
    return result
  })
}
