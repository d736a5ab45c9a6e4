// Image names → transports. `scheme:rest` picks a registered factory; a bare name (`host/repo:tag`)
// means containerd's image store, whose factory src/transport/containerd-store.ts registers
// under the scheme `containerd` when it is loaded.
import {LazyError} from '../cli/errors.js'
import type {RegistryClient} from '../registry/client.js'
import {openDockerArchiveSource, splitArchiveSpec} from './docker-archive.js'
import {OciArchiveSink, openOciArchiveSource} from './oci-archive.js'
import {LayoutSink, LayoutSource, directoryFiles, splitPathAndTag} from './oci-layout.js'
import {RegistrySink, RegistrySource, parseDockerName} from './registry.js'
import type {ImageSink, ImageSource} from './types.js'

export interface TransportContext {
  /** Shared registry client (one pool, one token cache for the whole command). */
  registry: RegistryClient
  /** containerd connection settings, for the containerd-store transport. */
  containerd?: {address: string; namespace: string}
}

export interface TransportFactory {
  /** Human name, for errors. */
  name: string
  source?(rest: string, description: string, ctx: TransportContext): Promise<ImageSource>
  sink?(rest: string, description: string, ctx: TransportContext): Promise<ImageSink>
}

const factories = new Map<string, TransportFactory>()

/** Registers (or replaces) the transport for `scheme` (`docker`, `oci`, … or `containerd` for bare names). */
export function registerTransport(scheme: string, factory: TransportFactory): void {
  factories.set(scheme, factory)
}

registerTransport('docker', {
  name: 'registry',
  source: async (rest, description, ctx) => new RegistrySource(ctx.registry, parseDockerName(rest), description),
  sink: async (rest, description, ctx) => new RegistrySink(ctx.registry, parseDockerName(rest), description),
})

registerTransport('oci', {
  name: 'OCI layout',
  source: async (rest, description) => {
    const {path, tag} = splitPathAndTag(rest)
    return new LayoutSource(directoryFiles(path), tag, description)
  },
  sink: async (rest, description) => {
    const {path, tag} = splitPathAndTag(rest)
    return new LayoutSink(path, tag, description)
  },
})

registerTransport('oci-archive', {
  name: 'OCI archive',
  source: async (rest, description) => {
    const {file, name} = splitArchiveSpec(rest)
    return openOciArchiveSource(file, name, description)
  },
  sink: async (rest, description) => {
    const {path, tag} = splitPathAndTag(rest)
    return new OciArchiveSink(path, tag, description)
  },
})

registerTransport('docker-archive', {
  name: 'docker save archive',
  source: async (rest, description) => {
    const {file, name} = splitArchiveSpec(rest)
    return openDockerArchiveSource(file, name, description)
  },
})

const SCHEME = /^([a-z][a-z0-9-]*):(.*)$/s

export function splitImageName(name: string): {scheme: string; rest: string} {
  const m = SCHEME.exec(name)
  if (m && factories.has(m[1]!)) return {scheme: m[1]!, rest: m[2]!}
  if (m && ['docker', 'oci', 'oci-archive', 'docker-archive', 'containerd', 'containers-storage', 'dir'].includes(m[1]!)) return {scheme: m[1]!, rest: m[2]!}
  return {scheme: 'containerd', rest: name}
}

async function factoryFor(scheme: string, name: string): Promise<TransportFactory> {
  let f = factories.get(scheme)
  if (!f && scheme === 'containerd') {
    // Loaded lazily: it pulls in the containerd gRPC client, which registry-only commands never need.
    // A literal specifier, so the bundler includes it.
    await import('./containerd-store.js')
    f = factories.get(scheme)
    if (!f) {
      throw new LazyError('USAGE', `"${name}" names an image in containerd's store, which this build cannot read`, {
        hint: `use a transport prefix: docker://${name}, oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker-archive:FILE`,
      })
    }
  }
  if (!f) throw new LazyError('USAGE', `"${name}": unknown transport "${scheme}:" (known: docker://, oci:, oci-archive:, docker-archive:, or a bare name for containerd)`)
  return f
}

export async function openImageSource(name: string, ctx: TransportContext): Promise<ImageSource> {
  const {scheme, rest} = splitImageName(name)
  const f = await factoryFor(scheme, name)
  if (!f.source) throw new LazyError('USAGE', `${f.name} (${scheme}:) cannot be read from`)
  return f.source(rest, name, ctx)
}

export async function openImageSink(name: string, ctx: TransportContext): Promise<ImageSink> {
  const {scheme, rest} = splitImageName(name)
  const f = await factoryFor(scheme, name)
  if (!f.sink) throw new LazyError('USAGE', `${f.name} (${scheme}:) cannot be written to`)
  return f.sink(rest, name, ctx)
}
