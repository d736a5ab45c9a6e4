// Platforms (`os/arch[/variant]`) as in OCI image indexes, and matching them like containerd does.
import {arch as nodeArch} from 'node:os'
import {LazyError} from '../cli/errors.js'
import type {Descriptor} from './descriptor.js'

export interface Platform {
  os: string
  architecture: string
  variant?: string
  'os.version'?: string
  'os.features'?: string[]
}

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  x86: '386',
  i386: '386',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  x64: 'amd64',
  ia32: '386',
}

function normaliseArch(arch: string, variant?: string): {architecture: string; variant?: string} {
  const a = ARCH_ALIASES[arch.toLowerCase()] ?? arch.toLowerCase()
  let v = variant?.toLowerCase()
  if (arch.toLowerCase() === 'armhf') v ??= 'v7'
  if (arch.toLowerCase() === 'armel') v ??= 'v6'
  // arm64's only variant is v8, so it is the same as none (containerd's normalisation).
  if (a === 'arm64' && v === 'v8') v = undefined
  return v ? {architecture: a, variant: v} : {architecture: a}
}

/** Parses `linux/amd64`, `linux/arm/v7`, `linux/arm64/v8`; bad input is a USAGE error. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.length === 0 || !/^[A-Za-z0-9_.-]+$/.test(p))) {
    throw new LazyError('USAGE', `invalid platform "${text}": expected OS/ARCH[/VARIANT], e.g. linux/amd64`)
  }
  return {os: parts[0]!.toLowerCase(), ...normaliseArch(parts[1]!, parts[2])}
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`
}

/** The platform this process runs on (linux/amd64 here). */
export function hostPlatform(): Platform {
  const os = process.platform === 'win32' ? 'windows' : process.platform
  return {os, ...normaliseArch(nodeArch(), process.arch === 'arm' ? 'v7' : undefined)}
}

/** True when an index entry's platform is `wanted` (variants compared only when both set). */
export function platformMatches(wanted: Platform, candidate: Platform | undefined): boolean {
  if (!candidate) return false
  const c = {os: candidate.os.toLowerCase(), ...normaliseArch(candidate.architecture, candidate.variant)}
  if (c.os !== wanted.os || c.architecture !== wanted.architecture) return false
  if (wanted.variant && c.variant && wanted.variant !== c.variant) return false
  return true
}

/** Picks the manifest of `platform` (default: this host's) from an index, as containerd's platform matcher. */
export function selectManifest(manifests: readonly Descriptor[], platform: Platform | undefined, what: string): Descriptor {
  const wanted = platform ?? hostPlatform()
  const found = manifests.find((m) => platformMatches(wanted, m.platform))
  if (found) return found
  // An index written by hand or by a tool may leave `platform` out; with one entry, that is the image.
  if (manifests.length === 1 && !manifests[0]!.platform) return manifests[0]!
  throw noManifestFor(wanted, manifests.map((m) => m.platform), what)
}

/** Reads the platform of a manifest whose index entry names none: its config's os/architecture. */
export type PlatformReader = (manifest: Descriptor) => Promise<Platform | undefined>

/**
 * selectManifest for indexes whose entries may lack `platform`: such an entry's platform is read
 * from its config, as containerd does (images.Manifest), before the match is refused.
 */
export async function selectManifestReading(manifests: readonly Descriptor[], platform: Platform | undefined, what: string, readPlatform: PlatformReader): Promise<Descriptor> {
  const wanted = platform ?? hostPlatform()
  const found = manifests.find((m) => platformMatches(wanted, m.platform))
  if (found) return found
  const seen: Array<Platform | undefined> = []
  for (const m of manifests) {
    const p = m.platform ?? (await readPlatform(m))
    if (!m.platform && platformMatches(wanted, p)) return m
    seen.push(p)
  }
  if (manifests.length === 1 && !manifests[0]!.platform && !seen[0]) return manifests[0]!
  throw noManifestFor(wanted, seen, what)
}

function noManifestFor(wanted: Platform, offered: Array<Platform | undefined>, what: string): LazyError {
  const list = offered.map((p) => (p ? formatPlatform(p) : 'unknown')).join(', ')
  return new LazyError('NOT_FOUND', `${what} has no manifest for ${formatPlatform(wanted)} (it has: ${list || 'none'})`, {hint: 'choose one with --platform'})
}

/** An image config's platform (undefined when it names no os and architecture). */
export function configPlatform(config: {os?: string; architecture?: string; variant?: string}): Platform | undefined {
  if (!config.os || !config.architecture) return undefined
  return {os: config.os.toLowerCase(), ...normaliseArch(config.architecture, config.variant)}
}

/**
 * A single-platform image named with an explicit --platform must be of that platform (nerdctl:
 * "no match for platform in manifest"): running an amd64 binary on an arm64 request is an error.
 */
export function checkImagePlatform(config: {os?: string; architecture?: string; variant?: string}, wanted: Platform | undefined, what: string): void {
  if (!wanted) return
  const actual = configPlatform(config)
  if (actual && !platformMatches(wanted, actual)) {
    throw new LazyError('NOT_FOUND', `${what}: no match for platform ${formatPlatform(wanted)} in manifest (the image is ${formatPlatform(actual)})`, {hint: 'leave out --platform, or choose the image of that platform'})
  }
}
