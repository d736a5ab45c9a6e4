// oclif.manifest.json, read once per process: the flag definitions the early snapshotter hint and the
// commands run without oclif parse with (oclif itself reads the same file to find a command).
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {PACKAGE_ROOT} from '../paths.js'
import type {ManifestFlag} from './argv.js'

export interface ManifestCommand {
  flags: Record<string, ManifestFlag>
  args?: Record<string, {required?: boolean}>
}

export interface CliManifest {
  version: string
  commands: Record<string, ManifestCommand>
}

let manifest: CliManifest | undefined

export function cliManifest(): CliManifest {
  manifest ??= JSON.parse(readFileSync(join(PACKAGE_ROOT, 'oclif.manifest.json'), 'utf8')) as CliManifest
  return manifest
}
