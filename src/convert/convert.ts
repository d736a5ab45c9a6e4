// Entry points of `lazyctl convert` and `lazyctl push`: typed options in, transports opened,
// the pipeline run, everything closed. No CLI code here.
import {LazyError} from '../cli/errors.js'
import {readRecordFile} from '../estargz/record.js'
import type {Platform} from '../oci/platform.js'
import {RegistryClient} from '../registry/client.js'
import {openImageSink, openImageSource, splitImageName, type TransportContext} from '../transport/factory.js'
import type {ProgressReporter} from './progress.js'
import {transferImage, type TransferResult} from './pipeline.js'

export interface ImageCommandOptions {
  /** Hosts where TLS is optional/unverified (nerdctl's --insecure-registry). */
  insecureRegistries?: string[]
  /** containerd certs.d directory. */
  hostsDir?: string
  containerd?: {address: string; namespace: string}
  /** Only these platforms of a multi-platform image; empty or undefined means all. */
  platforms?: Platform[]
  progress?: ProgressReporter
  jobs?: number
  tempDir?: string
  /** A client to reuse (tests, long-lived callers); otherwise one is made and closed. */
  registry?: RegistryClient
}

export interface ConvertOptions extends ImageCommandOptions {
  /** Convert layers to eStargz (default true). */
  estargz?: boolean
  /** OCI media types (default true: Docker manifests drop the eStargz annotations). */
  oci?: boolean
  /** A record file (JSON lines of {"path": …}) naming files to prioritise. */
  recordIn?: string
  compressionLevel?: number
  chunkSize?: number
}

async function withTransports<T>(src: string, dst: string, options: ImageCommandOptions, run: (ctx: TransportContext, source: Awaited<ReturnType<typeof openImageSource>>, sink: Awaited<ReturnType<typeof openImageSink>>) => Promise<T>): Promise<T> {
  const registry = options.registry ?? new RegistryClient({...(options.insecureRegistries ? {insecureRegistries: options.insecureRegistries} : {}), ...(options.hostsDir ? {hostsDir: options.hostsDir} : {})})
  const ctx: TransportContext = {registry, ...(options.containerd ? {containerd: options.containerd} : {})}
  try {
    const source = await openImageSource(src, ctx)
    try {
      const sink = await openImageSink(dst, ctx)
      return await run(ctx, source, sink)
    } finally {
      await source.close()
    }
  } finally {
    if (!options.registry) await registry.close()
  }
}

/** `lazyctl convert SRC DST`: eStargz layers, new config and manifests, index structure kept. */
export async function convertImage(src: string, dst: string, options: ConvertOptions = {}): Promise<TransferResult> {
  const estargz = options.estargz ?? true
  const oci = options.oci ?? estargz
  if (!estargz && !oci) throw new LazyError('USAGE', 'nothing to convert: pass --estargz and/or --oci')
  const prioritizedFiles = options.recordIn ? await readRecordFile(options.recordIn) : undefined
  return withTransports(src, dst, options, (_ctx, source, sink) =>
    transferImage(source, sink, {
      ...(estargz
        ? {
            estargz: {
              ...(options.chunkSize !== undefined ? {chunkSize: options.chunkSize} : {}),
              ...(options.compressionLevel !== undefined ? {compressionLevel: options.compressionLevel} : {}),
              ...(prioritizedFiles ? {prioritizedFiles} : {}),
            },
          }
        : {}),
      oci,
      ...common(options),
    }),
  )
}

/** The destination `push SRC` means when DST is left out: the same name in its registry. */
export function defaultPushDestination(src: string): string {
  const {scheme, rest} = splitImageName(src)
  if (scheme === 'containerd') return `docker://${rest}`
  if (scheme === 'docker') return src
  throw new LazyError('USAGE', `push ${src}: name the destination registry (e.g. docker://HOST/REPO:TAG)`)
}

/** `lazyctl push SRC [DST]`: copies an image unchanged (digests kept) to a registry. */
export async function pushImage(src: string, dst: string | undefined, options: ImageCommandOptions = {}): Promise<TransferResult> {
  const destination = dst ?? defaultPushDestination(src)
  if (splitImageName(destination).scheme !== 'docker') throw new LazyError('USAGE', `push: the destination must be a registry (docker://HOST/REPO:TAG), not ${destination}`)
  return withTransports(src, destination, options, (_ctx, source, sink) => transferImage(source, sink, common(options)))
}

function common(options: ImageCommandOptions) {
  return {
    ...(options.platforms && options.platforms.length > 0 ? {platforms: options.platforms} : {}),
    ...(options.progress ? {progress: options.progress} : {}),
    ...(options.jobs ? {jobs: options.jobs} : {}),
    ...(options.tempDir ? {tempDir: options.tempDir} : {}),
  }
}
