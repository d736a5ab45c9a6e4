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
  if (!found) {
    const offered = manifests.map((m) => (m.platform ? formatPlatform(m.platform) : 'unknown')).join(', ')
    throw new LazyError('NOT_FOUND', `${what} has no manifest for ${formatPlatform(wanted)} (it has: ${offered || 'none'})`, {
      hint: 'choose one with --platform',
    })
  }
  return found
}
