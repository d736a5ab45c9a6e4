// docker's config.json ($DOCKER_CONFIG/config.json or ~/.docker/config.json): read, and written
// back atomically (temp file + rename, mode 0600) with every field we do not manage preserved.
import {existsSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, join} from 'node:path'
import {randomBytes} from 'node:crypto'
import {LazyError} from '../cli/errors.js'
import {DOCKER_HUB_CONFIG_KEY, DOCKER_HUB_DOMAIN} from '../oci/reference.js'

export interface DockerAuthEntry {
  auth?: string
  username?: string
  password?: string
  identitytoken?: string
  email?: string
}

export interface DockerConfig {
  auths?: Record<string, DockerAuthEntry>
  credHelpers?: Record<string, string>
  credsStore?: string
  [key: string]: unknown
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG ? env.DOCKER_CONFIG : join(env.HOME || homedir(), '.docker')
  return join(dir, 'config.json')
}

export function readDockerConfig(path: string): DockerConfig {
  if (!existsSync(path)) return {}
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new LazyError('IO', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {cause: err})
  }
  if (text.trim() === '') return {}
  try {
    const json = JSON.parse(text) as DockerConfig
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error('not an object')
    return json
  } catch (err) {
    throw new LazyError('USAGE', `${path} is not valid JSON`, {cause: err, hint: 'fix or remove the file'})
  }
}

/** Writes config.json so that a crash leaves either the old or the new file, never half of one. */
export function writeDockerConfig(path: string, config: DockerConfig): void {
  mkdirSync(dirname(path), {recursive: true, mode: 0o700})
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  writeFileSync(tmp, `${JSON.stringify(config, null, '\t')}\n`, {mode: 0o600})
  renameSync(tmp, path)
}

/** The config.json key for a registry (Docker Hub keeps its historical URL). */
export function configKeyFor(registry: string): string {
  return registry === DOCKER_HUB_DOMAIN ? DOCKER_HUB_CONFIG_KEY : registry
}

/** Normalises a config.json key (`https://host/v1/`, `host`) to a bare host. */
export function hostOfConfigKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//, '')
  k = k.split('/')[0] ?? k
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') return DOCKER_HUB_DOMAIN
  return k
}

/** Finds the entry of `map` whose key names `registry`. */
export function lookupByRegistry<T>(map: Record<string, T> | undefined, registry: string): {key: string; value: T} | undefined {
  if (!map) return undefined
  for (const [key, value] of Object.entries(map)) {
    if (hostOfConfigKey(key) === registry) return {key, value}
  }
  return undefined
}
