// The image pipeline shared by `convert` and `push`: walk the source's index (keeping its
// structure, minus filtered platforms), and for each image either copy its blobs as they are
// (push) or convert each layer to eStargz (convert), then write config, manifests and the root.
// Layers stream through a temp file each (bounded memory); the sink only shows the image once
// the root is committed, and a failure aborts the sink.
import {createReadStream, createWriteStream, mkdtempSync, rmSync} from 'node:fs'
import {availableParallelism, tmpdir} from 'node:os'
import {join} from 'node:path'
import {Readable, pipeline as pipelineCb} from 'node:stream'
import {finished} from 'node:stream/promises'
import {LazyError} from '../cli/errors.js'
import {convertToEstargz} from '../estargz/writer.js'
import {decompressor} from '../estargz/input.js'
import {openEstargz} from '../estargz/reader.js'
import {TOC_DIGEST_ANNOTATION, UNCOMPRESSED_SIZE_ANNOTATION} from '../estargz/toc.js'
import {encodeJson, parseImageConfig, type Descriptor, type ImageIndex, type ImageManifest} from '../oci/descriptor.js'
import {sha256Digest, short, type Digest} from '../oci/digest.js'
import {
  MEDIA_TYPE_DOCKER_CONFIG,
  MEDIA_TYPE_DOCKER_LAYER_GZIP,
  MEDIA_TYPE_DOCKER_LIST,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_OCI_CONFIG,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_LAYER,
  MEDIA_TYPE_OCI_LAYER_GZIP,
  MEDIA_TYPE_OCI_LAYER_ZSTD,
  MEDIA_TYPE_OCI_MANIFEST,
  isIndexMediaType,
  layerCompression,
  type LayerCompression,
} from '../oci/media-types.js'
import {configPlatform, formatPlatform, platformMatches, type Platform} from '../oci/platform.js'
import type {ImageSink, ImageSource, ManifestBlob, PutBlobResult} from '../transport/types.js'
import {concurrencyLimit} from './limit.js'
import {silentProgress, type LayerProgress, type ProgressReporter} from './progress.js'

export interface EstargzOptions {
  chunkSize?: number
  compressionLevel?: number
  /** Files to prioritise (from --estargz-record-in), in order. */
  prioritizedFiles?: string[]
}

export interface TransferOptions {
  /** Convert layers to eStargz; undefined copies them unchanged. */
  estargz?: EstargzOptions
  /** Write OCI media types (manifests, config, layers). */
  oci?: boolean
  /** Keep only these platforms of an index; undefined keeps all. */
  platforms?: Platform[]
  /** Layers converted or transferred at once (default: the core count). */
  jobs?: number
  progress?: ProgressReporter
  /** Where converted layers are spooled before upload (default: the OS temp dir). */
  tempDir?: string
}

export type LayerAction = 'converted' | 'reused-estargz' | 'copied'

export interface LayerReport {
  source: Digest
  digest: Digest
  size: number
  mediaType: string
  action: LayerAction
  transfer: PutBlobResult
  tocDigest?: string
  uncompressedSize?: number
}

export interface ImageReport {
  platform?: string
  manifest: Digest
  config: Digest
  layers: LayerReport[]
}

export interface TransferResult {
  source: string
  destination: string
  digest: string
  mediaType: string
  reference: string
  images: ImageReport[]
}

const ATTESTATION_REFERENCE_TYPE = 'vnd.docker.reference.type'

/** Copies or converts the image `source` names into `sink`. */
export async function transferImage(source: ImageSource, sink: ImageSink, options: TransferOptions = {}): Promise<TransferResult> {
  const progress = options.progress ?? silentProgress
  // Converting is CPU-bound (one layer per core); copying is I/O-bound, so more blobs move at once.
  const jobs = Math.max(1, options.jobs ?? (options.estargz ? availableParallelism() : Math.max(4, availableParallelism())))
  const limit = concurrencyLimit(jobs)
  const spool = mkdtempSync(join(options.tempDir ?? tmpdir(), 'lazyctl-convert-'))
  liveSpools.add(spool)
  const images: ImageReport[] = []
  const ctx: Context = {source, sink, options, progress, limit, spool, images, manifests: new Map()}
  try {
    const root = await source.root()
    await checkSinglePlatform(ctx, root)
    // Walk the manifests first so progress can show every task from the start.
    const titles: string[] = []
    await plan(ctx, root, titles)
    progress.plan?.(titles)
    const written = await writeNode(ctx, root, true)
    const committed = await sink.commit(written.descriptor, written.bytes)
    return {
      source: source.description,
      destination: sink.description,
      digest: committed.digest,
      mediaType: written.descriptor.mediaType,
      reference: committed.reference,
      images,
    }
  } catch (err) {
    await sink.abort().catch(() => undefined)
    throw err
  } finally {
    rmSync(spool, {recursive: true, force: true})
    liveSpools.delete(spool)
  }
}

/**
 * Spool directories in use. `finally` does not run when the process is ended by process.exit()
 * (the CLI turns SIGINT/SIGTERM into one), so an exit hook removes what is left.
 */
const liveSpools = new Set<string>()
process.once('exit', () => {
  for (const dir of liveSpools) rmSync(dir, {recursive: true, force: true})
})

interface Context {
  source: ImageSource
  sink: ImageSink
  options: TransferOptions
  progress: ProgressReporter
  limit: <T>(fn: () => Promise<T>) => Promise<T>
  spool: string
  images: ImageReport[]
  /** Child manifests fetched by the planning walk. */
  manifests: Map<string, ManifestBlob>
}

interface Written {
  descriptor: Descriptor
  bytes: Buffer
}

function converting(ctx: Context): boolean {
  return ctx.options.estargz !== undefined || ctx.options.oci === true
}

/** Writes an index or a manifest (and everything under it); the root is left for commit(). */
async function writeNode(ctx: Context, node: ManifestBlob, isRoot: boolean, platform?: Platform): Promise<Written> {
  if (node.parsed.kind === 'index') return writeIndex(ctx, node, node.parsed.index, isRoot)
  return writeImage(ctx, node, node.parsed.manifest, isRoot, platform)
}

async function plan(ctx: Context, node: ManifestBlob, titles: string[], platform?: Platform): Promise<void> {
  if (node.parsed.kind === 'index') {
    for (const d of await selectEntries(ctx, node.parsed.index)) {
      const child = ctx.manifests.get(d.digest) ?? (await ctx.source.manifest(d))
      ctx.manifests.set(d.digest, child)
      await plan(ctx, child, titles, d.platform)
    }
    return
  }
  const m = node.parsed.manifest
  m.layers.forEach((l, i) => titles.push(layerTitle(platform, i, m.layers.length, l.digest)))
  titles.push(configTitle(platform, m.config.digest))
}

function prefix(platform: Platform | undefined): string {
  return platform ? `${formatPlatform(platform)} ` : ''
}

function layerTitle(platform: Platform | undefined, i: number, n: number, digest: string): string {
  return `${prefix(platform)}layer ${i + 1}/${n} ${short(digest)}`
}

function configTitle(platform: Platform | undefined, digest: string): string {
  return `${prefix(platform)}config ${short(digest)}`
}

/**
 * `--platform` on a single-platform image: its config must be one of the platforms asked for
 * (nerdctl refuses too), checked before any layer is converted.
 */
async function checkSinglePlatform(ctx: Context, root: ManifestBlob): Promise<void> {
  const wanted = ctx.options.platforms
  if (!wanted?.length || root.parsed.kind !== 'manifest') return
  const config = parseImageConfig(await readAll(ctx, root.parsed.manifest.config), `${ctx.source.description}: config`)
  const actual = configPlatform(config)
  if (actual && !wanted.some((p) => platformMatches(p, actual))) {
    throw new LazyError('MANIFEST_UNKNOWN', `${ctx.source.description}: no image for platform ${wanted.map(formatPlatform).join(', ')} (the image is ${formatPlatform(actual)})`, {hint: 'leave out --platform, or convert the image of that platform'})
  }
}

async function selectEntries(ctx: Context, index: ImageIndex): Promise<Descriptor[]> {
  const wanted = ctx.options.platforms
  let entries = index.manifests
  if (wanted && wanted.length > 0) {
    // An entry without a platform is matched by its config's os/architecture, as containerd does.
    const platforms = await Promise.all(entries.map((d) => d.platform ?? entryPlatform(ctx, d)))
    entries = entries.filter((d, i) => isIndexMediaType(d.mediaType) || wanted.some((p) => platformMatches(p, platforms[i])))
    const missing = wanted.filter((p) => !platforms.some((q) => platformMatches(p, q)))
    if (missing.length > 0) {
      const have = platforms.map((q) => (q ? formatPlatform(q) : 'unknown')).join(', ')
      throw new LazyError('MANIFEST_UNKNOWN', `${ctx.source.description}: no image for platform ${missing.map(formatPlatform).join(', ')} (has ${have})`)
    }
  }
  // Attestation manifests describe the original images; converted images are new ones, so they go.
  if (ctx.options.estargz) entries = entries.filter((d) => d.annotations?.[ATTESTATION_REFERENCE_TYPE] !== 'attestation-manifest')
  return entries
}

/** The platform of an index entry that names none: its image config's (undefined for a nested index). */
async function entryPlatform(ctx: Context, d: Descriptor): Promise<Platform | undefined> {
  if (isIndexMediaType(d.mediaType)) return undefined
  const child = ctx.manifests.get(d.digest) ?? (await ctx.source.manifest(d))
  ctx.manifests.set(d.digest, child)
  if (child.parsed.kind !== 'manifest') return undefined
  return configPlatform(parseImageConfig(await readAll(ctx, child.parsed.manifest.config), `${ctx.source.description}: config of ${short(d.digest)}`))
}

async function writeIndex(ctx: Context, node: ManifestBlob, index: ImageIndex, isRoot: boolean): Promise<Written> {
  const entries = await selectEntries(ctx, index)
  const children = await Promise.all(
    entries.map(async (d) => {
      const child = ctx.manifests.get(d.digest) ?? (await ctx.source.manifest(d))
      const written = await writeNode(ctx, child, false, d.platform)
      const out: Descriptor = {...d, mediaType: written.descriptor.mediaType, digest: written.descriptor.digest, size: written.descriptor.size}
      return out
    }),
  )
  const unchanged = !converting(ctx) && entries.length === index.manifests.length
  let written: Written
  if (unchanged) {
    written = {descriptor: {mediaType: node.descriptor.mediaType, digest: node.descriptor.digest, size: node.descriptor.size}, bytes: node.bytes}
  } else {
    const mediaType = ctx.options.oci ? MEDIA_TYPE_OCI_INDEX : (index.mediaType ?? node.descriptor.mediaType)
    const out: ImageIndex = {...index, mediaType, manifests: children}
    if (mediaType === MEDIA_TYPE_DOCKER_LIST) delete out.annotations
    const bytes = encodeJson(out)
    written = {descriptor: {mediaType, digest: sha256Digest(bytes), size: bytes.length}, bytes}
  }
  if (!isRoot) await ctx.sink.putManifest(written.descriptor, written.bytes)
  return written
}

async function writeImage(ctx: Context, node: ManifestBlob, manifest: ImageManifest, isRoot: boolean, platform?: Platform): Promise<Written> {
  const layerCount = manifest.layers.length
  const reports: InternalLayerReport[] = await Promise.all(
    manifest.layers.map((layer, i) => ctx.limit(() => writeLayer(ctx, layer, layerTitle(platform, i, layerCount, layer.digest)))),
  )

  let written: Written
  let configDigest: Digest
  if (!converting(ctx)) {
    await copyBlob(ctx, manifest.config, configTitle(platform, manifest.config.digest))
    written = {descriptor: {mediaType: node.descriptor.mediaType, digest: node.descriptor.digest, size: node.descriptor.size}, bytes: node.bytes}
    configDigest = manifest.config.digest
  } else {
    const configBytes = await readAll(ctx, manifest.config)
    const config = parseImageConfig(configBytes, `${ctx.source.description}: config ${short(manifest.config.digest)}`)
    if (config.rootfs.diff_ids.length !== layerCount) {
      throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${ctx.source.description}: config lists ${config.rootfs.diff_ids.length} diff_ids for ${layerCount} layers`)
    }
    const diffIds = reports.map((r, i) => (r.action === 'converted' ? r.diffId! : config.rootfs.diff_ids[i]!))
    const newConfig = {...config, rootfs: {...config.rootfs, diff_ids: diffIds}}
    const newConfigBytes = encodeJson(newConfig)
    const oci = ctx.options.oci === true || manifest.mediaType === MEDIA_TYPE_OCI_MANIFEST || manifest.mediaType === undefined
    const configDesc: Descriptor = {mediaType: oci ? MEDIA_TYPE_OCI_CONFIG : MEDIA_TYPE_DOCKER_CONFIG, digest: sha256Digest(newConfigBytes), size: newConfigBytes.length}
    const task = ctx.progress.task(configTitle(platform, manifest.config.digest))
    try {
      task.phase('upload', newConfigBytes.length)
      const how = await ctx.sink.putBlob(configDesc, async () => bufferStream(newConfigBytes))
      task.done(how)
    } catch (err) {
      task.failed(err)
      throw err
    }
    const out: ImageManifest = {
      schemaVersion: 2,
      mediaType: oci ? MEDIA_TYPE_OCI_MANIFEST : MEDIA_TYPE_DOCKER_MANIFEST,
      config: configDesc,
      layers: reports.map((r, i) => layerDescriptor(manifest.layers[i]!, r)),
      ...(manifest.annotations && oci ? {annotations: manifest.annotations} : {}),
    }
    const bytes = encodeJson(out)
    written = {descriptor: {mediaType: out.mediaType!, digest: sha256Digest(bytes), size: bytes.length}, bytes}
    configDigest = configDesc.digest
  }
  ctx.images.push({
    ...(platform ? {platform: formatPlatform(platform)} : {}),
    manifest: written.descriptor.digest,
    config: configDigest,
    layers: reports.map(publicReport),
  })
  if (!isRoot) await ctx.sink.putManifest(written.descriptor, written.bytes)
  if (platform) written.descriptor.platform = platform
  return written
}

interface InternalLayerReport extends LayerReport {
  diffId?: Digest
}

function publicReport(r: InternalLayerReport): LayerReport {
  const out: InternalLayerReport = {...r}
  delete out.diffId
  return out
}

function layerDescriptor(original: Descriptor, r: LayerReport): Descriptor {
  const d: Descriptor = {mediaType: r.mediaType, digest: r.digest, size: r.size}
  const annotations = {...(original.annotations ?? {})}
  if (r.tocDigest) annotations[TOC_DIGEST_ANNOTATION] = r.tocDigest
  if (r.uncompressedSize !== undefined) annotations[UNCOMPRESSED_SIZE_ANNOTATION] = String(r.uncompressedSize)
  if (Object.keys(annotations).length > 0) d.annotations = annotations
  if (original.urls && r.action !== 'converted') d.urls = original.urls
  return d
}

/** The OCI media type of a layer blob kept as it is. */
function ociLayerType(mediaType: string): string {
  switch (layerCompression(mediaType)) {
    case 'gzip':
      return MEDIA_TYPE_OCI_LAYER_GZIP
    case 'zstd':
      return MEDIA_TYPE_OCI_LAYER_ZSTD
    case 'none':
      return MEDIA_TYPE_OCI_LAYER
    default:
      return mediaType
  }
}

async function writeLayer(ctx: Context, layer: Descriptor, title: string): Promise<InternalLayerReport> {
  const task = ctx.progress.task(title)
  try {
    const report = await writeLayerTask(ctx, layer, task)
    task.done(report.action === 'converted' ? `converted, ${report.transfer}` : report.transfer)
    return report
  } catch (err) {
    task.failed(err)
    throw err
  }
}

async function writeLayerTask(ctx: Context, layer: Descriptor, task: LayerProgress): Promise<InternalLayerReport> {
  const keepType = ctx.options.oci ? ociLayerType(layer.mediaType) : layer.mediaType
  if (!ctx.options.estargz || layer.urls?.length) {
    const transfer = await copyBlob(ctx, layer, undefined, task)
    return {source: layer.digest, digest: layer.digest, size: layer.size, mediaType: keepType, action: 'copied', transfer}
  }
  if (layerCompression(layer.mediaType) === undefined) {
    throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${ctx.source.description}: layer ${short(layer.digest)} has media type ${layer.mediaType}, which is not a tar layer`)
  }
  const toc = layer.annotations?.[TOC_DIGEST_ANNOTATION]
  if (toc && layerCompression(layer.mediaType) === 'gzip' && ctx.source.blobRange && (await isValidEstargz(ctx, layer, toc, task))) {
    const transfer = await copyBlob(ctx, layer, undefined, task)
    const size = Number(layer.annotations?.[UNCOMPRESSED_SIZE_ANNOTATION])
    return {
      source: layer.digest,
      digest: layer.digest,
      size: layer.size,
      mediaType: ctx.options.oci ? MEDIA_TYPE_OCI_LAYER_GZIP : layer.mediaType,
      action: 'reused-estargz',
      transfer,
      tocDigest: toc,
      ...(Number.isSafeInteger(size) ? {uncompressedSize: size} : {}),
    }
  }

  const file = join(ctx.spool, `${layer.digest.replace(':', '-')}.estargz`)
  try {
    task.phase('convert', layer.size)
    const blob = await ctx.source.blob(layer)
    blob.on('data', (c: Buffer) => task.bytes(c.length))
    blob.pause()
    const tarStream = decompressed(blob, layerCompression(layer.mediaType)!)
    // The blob's digest is only known good once the whole stream has ended, and the writer may
    // stop at the tar's end-of-archive marker: so the rest is drained and the end awaited below.
    const blobEnded = new Promise<void>((resolve, reject) => {
      tarStream.on('error', reject)
      tarStream.once('end', resolve)
    })
    blobEnded.catch(() => undefined)
    const out = createWriteStream(file)
    const est = ctx.options.estargz
    let result
    try {
      result = await convertToEstargz(tarStream.iterator({destroyOnReturn: false}), out, {
        ...(est.chunkSize !== undefined ? {chunkSize: est.chunkSize} : {}),
        ...(est.compressionLevel !== undefined ? {compressionLevel: est.compressionLevel} : {}),
        ...(est.prioritizedFiles ? {prioritizedFiles: est.prioritizedFiles} : {}),
        tempDir: ctx.spool,
        label: `${ctx.source.description}: layer ${short(layer.digest)}`,
      })
    } catch (err) {
      blob.destroy()
      out.destroy()
      throw err
    }
    tarStream.resume()
    await blobEnded
    out.end()
    await finished(out)
    const descriptor: Descriptor = {mediaType: ctx.options.oci === false ? MEDIA_TYPE_DOCKER_LAYER_GZIP : MEDIA_TYPE_OCI_LAYER_GZIP, digest: result.blobDigest as Digest, size: result.blobSize}
    task.phase('upload', result.blobSize)
    const transfer = await ctx.sink.putBlob(descriptor, async () => createReadStream(file), {onProgress: (n) => task.bytes(n), sourceVerified: true})
    return {
      source: layer.digest,
      digest: descriptor.digest,
      size: descriptor.size,
      mediaType: descriptor.mediaType,
      action: 'converted',
      transfer,
      tocDigest: result.tocDigest,
      uncompressedSize: result.uncompressedSize,
      diffId: result.diffID as Digest,
    }
  } finally {
    rmSync(file, {force: true})
  }
}

/** A layer that claims to be eStargz is reused only when its footer and TOC (digest included) check out. */
async function isValidEstargz(ctx: Context, layer: Descriptor, toc: string, task: LayerProgress): Promise<boolean> {
  task.phase('check')
  const range = await ctx.source.blobRange!(layer)
  try {
    await openEstargz(range, {expectedTocDigest: toc, label: `layer ${short(layer.digest)}`})
    return true
  } catch (err) {
    if (err instanceof LazyError && err.code.startsWith('ESTARGZ_')) return false
    throw err
  } finally {
    await range.close?.()
  }
}

async function copyBlob(ctx: Context, d: Descriptor, title?: string, existing?: LayerProgress): Promise<PutBlobResult> {
  const task = existing ?? ctx.progress.task(title ?? short(d.digest))
  try {
    task.phase('upload', d.size)
    const how = await ctx.sink.putBlob(d, () => ctx.source.blob(d), {
      sourceVerified: true,
      ...(ctx.source.registryLocation ? {mountFrom: ctx.source.registryLocation} : {}),
      onProgress: (n) => task.bytes(n),
    })
    if (!existing) task.done(how)
    return how
  } catch (err) {
    if (!existing) task.failed(err)
    throw err
  }
}

/**
 * The layer's tar, decompressed here rather than by the writer so that a source error (a digest
 * mismatch found at the end of the blob) reaches the writer's reader as an ordinary stream error.
 */
function decompressed(blob: Readable, compression: LayerCompression): Readable {
  if (compression === 'none') return blob
  const decoder = decompressor(compression)
  pipelineCb(blob, decoder, () => undefined)
  return decoder
}

async function readAll(ctx: Context, d: Descriptor): Promise<Buffer> {
  if (d.size > 64 << 20) throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${ctx.source.description}: config ${short(d.digest)} is larger than 64 MiB`)
  const chunks: Buffer[] = []
  for await (const c of await ctx.source.blob(d)) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

function bufferStream(bytes: Buffer): Readable {
  return Readable.from([bytes])
}
