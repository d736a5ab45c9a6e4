// Where and how to reach a registry: https by default, plain http allowed for loopback and for
// `--insecure-registry` hosts, CA files and mirrors from containerd's certs.d layout
// (`<hosts-dir>/<host>/hosts.toml`, plus `*.crt` files in that directory).
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {isAbsolute, join} from 'node:path'
import {parse as parseToml} from 'smol-toml'
import {LazyError} from '../cli/errors.js'
import {registryApiHost} from '../oci/reference.js'

export const DEFAULT_HOSTS_DIR = '/etc/containerd/certs.d'

export type HostCapability = 'pull' | 'resolve' | 'push'

/** One place that serves a registry's API: the registry itself or a mirror. */
export interface RegistryEndpoint {
  /** `https://host:port` (no path). */
  origin: string
  /** Path prefix of the API, normally `/v2`. */
  apiPath: string
  capabilities: HostCapability[]
  /** PEM CA certificates to trust instead of the system store. */
  ca?: string[]
  /** Client certificate/key (mutual TLS). */
  clientCert?: {cert: string; key: string}
  skipVerify: boolean
  /** On a plain-HTTP answer to our TLS hello, retry over http (loopback and insecure hosts). */
  httpFallback: boolean
  headers: Record<string, string>
  /** True for the registry itself (not a mirror). */
  upstream: boolean
}

export interface HostsOptions {
  /** containerd certs.d directory; default /etc/containerd/certs.d. */
  hostsDir?: string
  /** Hosts (`host[:port]`) where TLS is optional and not verified, as nerdctl's --insecure-registry. */
  insecureRegistries?: string[]
}

export function isLoopbackHost(host: string): boolean {
  const name = stripPort(host)
  return name === 'localhost' || name === '[::1]' || name === '::1' || /^127(\.\d{1,3}){3}$/.test(name)
}

function stripPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1)
  const i = host.lastIndexOf(':')
  return i >= 0 ? host.slice(0, i) : host
}

/**
 * The endpoints to try for `registry` (as written in references, e.g. `docker.io`), mirrors first
 * in the order hosts.toml lists them, then the registry itself. Push uses only endpoints with the
 * push capability (by default just the registry).
 */
export function registryEndpoints(registry: string, options: HostsOptions = {}): RegistryEndpoint[] {
  const hostsDir = options.hostsDir ?? DEFAULT_HOSTS_DIR
  const insecure = (options.insecureRegistries ?? []).includes(registry)
  const dirs = [join(hostsDir, registry), join(hostsDir, '_default')]
  const dir = dirs.find((d) => existsSync(d))
  const apiHost = registryApiHost(registry)
  // A loopback registry with no TLS settings of its own speaks plain HTTP, as in containerd. It is
  // not probed with a TLS hello first: a plain Go server may wait forever for the end of a
  // "request line" that a ClientHello never sends.
  const plainLoopback = isLoopbackHost(registry) && !insecure && !existsSync(join(hostsDir, registry))
  const base: RegistryEndpoint = {
    origin: `${plainLoopback ? 'http' : 'https'}://${apiHost}`,
    apiPath: '/v2',
    capabilities: ['pull', 'resolve', 'push'],
    skipVerify: insecure,
    httpFallback: insecure,
    headers: {},
    upstream: true,
  }
  if (!dir) return [base]

  const dirCas = readCertFiles(dir)
  if (dirCas.length > 0) base.ca = dirCas
  const tomlPath = join(dir, 'hosts.toml')
  if (!existsSync(tomlPath)) return [base]

  let doc: Record<string, unknown>
  try {
    doc = parseToml(readFileSync(tomlPath, 'utf8')) as Record<string, unknown>
  } catch (err) {
    throw new LazyError('USAGE', `${tomlPath}: not valid TOML: ${(err as Error).message.split('\n')[0]}`, {cause: err})
  }
  if (typeof doc.server === 'string') {
    const u = parseUrl(doc.server, tomlPath)
    base.origin = u.origin
    if (u.protocol === 'http:') base.httpFallback = false
  }
  applyHostTable(base, doc, dir, tomlPath)

  const mirrors: RegistryEndpoint[] = []
  const hostTables = (doc.host ?? {}) as Record<string, Record<string, unknown>>
  for (const [key, table] of Object.entries(hostTables)) {
    const withScheme = /^[a-z]+:\/\//.test(key) ? key : `https://${key}`
    const u = parseUrl(withScheme, tomlPath)
    const overridePath = table.override_path === true
    const endpoint: RegistryEndpoint = {
      origin: u.origin,
      apiPath: overridePath ? u.pathname.replace(/\/$/, '') : `${u.pathname.replace(/\/$/, '')}/v2`,
      capabilities: ['pull', 'resolve'],
      skipVerify: false,
      httpFallback: false,
      headers: {},
      upstream: u.origin === base.origin,
    }
    if (dirCas.length > 0) endpoint.ca = dirCas
    applyHostTable(endpoint, table, dir, tomlPath)
    mirrors.push(endpoint)
  }
  return [...mirrors.filter((m) => !m.upstream), base]
}

function applyHostTable(endpoint: RegistryEndpoint, table: Record<string, unknown>, dir: string, tomlPath: string): void {
  if (Array.isArray(table.capabilities)) {
    endpoint.capabilities = table.capabilities.filter((c): c is HostCapability => c === 'pull' || c === 'resolve' || c === 'push')
  }
  if (table.skip_verify === true) endpoint.skipVerify = true
  const cas = typeof table.ca === 'string' ? [table.ca] : Array.isArray(table.ca) ? table.ca.filter((c): c is string => typeof c === 'string') : []
  if (cas.length > 0) endpoint.ca = cas.map((f) => readPem(isAbsolute(f) ? f : join(dir, f), tomlPath))
  const client = table.client
  const pair = typeof client === 'string' ? [client, client] : Array.isArray(client) ? (Array.isArray(client[0]) ? client[0] : client) : undefined
  if (Array.isArray(pair) && typeof pair[0] === 'string') {
    const certFile = isAbsolute(pair[0]) ? pair[0] : join(dir, pair[0])
    const keyFile = typeof pair[1] === 'string' ? (isAbsolute(pair[1]) ? pair[1] : join(dir, pair[1])) : certFile
    endpoint.clientCert = {cert: readPem(certFile, tomlPath), key: readPem(keyFile, tomlPath)}
  }
  if (table.header && typeof table.header === 'object') {
    for (const [k, v] of Object.entries(table.header as Record<string, unknown>)) {
      if (typeof v === 'string') endpoint.headers[k.toLowerCase()] = v
      else if (Array.isArray(v)) endpoint.headers[k.toLowerCase()] = v.join(', ')
    }
  }
}

/** Docker-style cert dirs: every `*.crt` is a CA (client pairs are `*.cert` + `*.key`). */
function readCertFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.crt'))
      .sort()
      .map((f) => readFileSync(join(dir, f), 'utf8'))
  } catch {
    return []
  }
}

function readPem(file: string, tomlPath: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new LazyError('TLS', `${tomlPath}: cannot read certificate file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {cause: err})
  }
}

function parseUrl(text: string, tomlPath: string): URL {
  try {
    return new URL(text)
  } catch (err) {
    throw new LazyError('USAGE', `${tomlPath}: "${text}" is not a URL`, {cause: err})
  }
}
