// Image references: `[host[:port]/]path[:tag][@digest]`, normalised as docker and containerd do
// (`busybox` → `docker.io/library/busybox:latest`).
import {LazyError} from '../cli/errors.js'
import {isDigest, type Digest} from './digest.js'

export const DOCKER_HUB_DOMAIN = 'docker.io'
/** Where docker.io's API really lives. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io'
/** The key docker uses for Docker Hub in config.json. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/'

export interface ImageReference {
  /** Registry host, with port when one was given (`127.0.0.1:5000`, `docker.io`). */
  readonly registry: string
  /** Repository path inside the registry (`library/busybox`). */
  readonly repository: string
  readonly tag?: string
  readonly digest?: Digest
}

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*'
const PATH_PATTERN = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`)
const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/
const HOST_PATTERN = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?$/
const MAX_NAME_LENGTH = 255

/**
 * Parses and normalises an image reference. A missing tag and digest mean `latest` (only when
 * `defaultTag` is true, the usual case); bad syntax is an INVALID_REFERENCE error naming the part.
 */
export function parseReference(input: string, options: {defaultTag?: boolean} = {}): ImageReference {
  const bad = (why: string): LazyError =>
    new LazyError('INVALID_REFERENCE', `invalid image reference "${clip(input)}": ${why}`, {
      hint: 'expected [HOST[:PORT]/]NAME[:TAG][@sha256:DIGEST], e.g. 127.0.0.1:5000/demo:v1',
    })
  if (input.length === 0) throw bad('empty')
  if (/\s/.test(input)) throw bad('contains whitespace')

  let rest = input
  let digest: Digest | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    const d = rest.slice(at + 1)
    if (!isDigest(d)) throw bad(`"${clip(d)}" is not a sha256:<64 hex> digest`)
    digest = d
    rest = rest.slice(0, at)
  }

  let tag: string | undefined
  const lastSlash = rest.lastIndexOf('/')
  const lastColon = rest.lastIndexOf(':')
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1)
    rest = rest.slice(0, lastColon)
    if (!TAG_PATTERN.test(tag)) throw bad(`tag "${clip(tag)}" is not valid`)
  }

  let registry = DOCKER_HUB_DOMAIN
  let path = rest
  const firstSlash = rest.indexOf('/')
  if (firstSlash >= 0) {
    const first = rest.slice(0, firstSlash)
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first
      path = rest.slice(firstSlash + 1)
      if (!HOST_PATTERN.test(registry)) throw bad(`registry host "${clip(registry)}" is not valid`)
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API_HOST) registry = DOCKER_HUB_DOMAIN
  if (path.length === 0) throw bad('repository name is empty')
  if (/[A-Z]/.test(path)) throw bad('repository name must be lowercase')
  if (!PATH_PATTERN.test(path)) throw bad(`repository name "${clip(path)}" has characters or separators that are not allowed`)
  if (registry === DOCKER_HUB_DOMAIN && !path.includes('/')) path = `library/${path}`
  if (registry.length + 1 + path.length > MAX_NAME_LENGTH) throw bad(`longer than ${MAX_NAME_LENGTH} characters`)

  if (tag === undefined && digest === undefined && options.defaultTag !== false) tag = 'latest'
  const ref: {registry: string; repository: string; tag?: string; digest?: Digest} = {registry, repository: path}
  if (tag !== undefined) ref.tag = tag
  if (digest !== undefined) ref.digest = digest
  return ref
}

/** `host/repo:tag@digest`, in full form. */
export function formatReference(ref: ImageReference): string {
  let s = `${ref.registry}/${ref.repository}`
  if (ref.tag) s += `:${ref.tag}`
  if (ref.digest) s += `@${ref.digest}`
  return s
}

/** `host/repo` (no tag or digest). */
export function repositoryName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`
}

/** What to ask the registry for: the digest when known (it pins content), else the tag. */
export function referenceTarget(ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest'
}

export function withTag(ref: ImageReference, tag: string): ImageReference {
  return {registry: ref.registry, repository: ref.repository, tag}
}

export function withDigest(ref: ImageReference, digest: Digest): ImageReference {
  const out: {registry: string; repository: string; tag?: string; digest: Digest} = {registry: ref.registry, repository: ref.repository, digest}
  if (ref.tag) out.tag = ref.tag
  return out
}

/** The host that serves a registry's API (docker.io is served by registry-1.docker.io). */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB_DOMAIN ? DOCKER_HUB_API_HOST : registry
}

function clip(text: string, max = 80): string {
  return text.length > max ? `${text.slice(0, max)}…` : text
}
