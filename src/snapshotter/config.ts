// The snapshotter's configuration: defaults for drop-in use where stargz-snapshotter was set up,
// overridden by /etc/lazyctl/config.toml (TOML, snake_case keys), overridden by flags.
//
// config.toml:
//   socket = "/run/containerd-stargz-grpc/containerd-stargz-grpc.sock"
//   root = "/var/lib/lazyctl"
//   log_level = "info"                 # debug | info | warn | error
//   metrics_address = ""               # host:port for Prometheus /metrics; empty = off
//   [metrics]
//   address = "127.0.0.1:9110"         # the same, as a table (wins over metrics_address)
//   [remote]
//   enable = true                      # false: every layer is a normal snapshot (containerd downloads it)
//   resolve_timeout_sec = 30           # bound on registry resolution + footer/TOC before falling back
//   require_lazy = false               # true: a layer that cannot be lazy fails the pull (no full download)
//   [registry]
//   insecure = ["reg.local:5000"]      # hosts spoken to over plain http (localhost/127.0.0.1/[::1] always)
//   hosts_dir = "/etc/containerd/certs.d"  # mirrors and CAs, containerd's hosts.toml layout
//   request_timeout_sec = 20           # a request that gets no answer (headers, next body chunk) this long fails; retried, then EIO
//   [prefetch]
//   enable = true
//   timeout_sec = 10                   # how long a Prepare waits for the prioritized files
//   [background_fetch]
//   enable = true
//   rate_bytes_per_sec = 10485760      # 10 MiB/s average (0 = unlimited): well under a 1 Gbit
//                                      # link, so on-demand reads of running containers keep most of it
//   start_delay_sec = 5                # after the prefetch, let the container's first reads go first
//   concurrency = 2                    # range reads in flight at once (hides a distant registry's latency)
//   [cache]
//   max_bytes = 0                      # 0 = unbounded; absent = half the size of the root's filesystem
//   [cri_keychain]                     # stargz-snapshotter's keys: kubelet's pull secrets for lazy reads
//   enable_keychain = false            # serve runtime.v1.ImageService (kubelet --image-service-endpoint)
//   image_service_path = "/run/containerd/containerd.sock"  # containerd, where every call is forwarded
//   listen_path = ""                   # a socket of its own; empty = the snapshotter's socket
import {readFileSync} from 'node:fs'
import {parse, TomlError} from 'smol-toml'
import {LazyError} from '../cli/errors.js'
import {isLogLevel, type LogLevel} from './log.js'

export const DEFAULT_SNAPSHOTTER_SOCKET = '/run/containerd-stargz-grpc/containerd-stargz-grpc.sock'
export const DEFAULT_SNAPSHOTTER_ROOT = '/var/lib/lazyctl'
export const DEFAULT_CONFIG_FILE = '/etc/lazyctl/config.toml'
/** The proxy-plugin name containerd knows the snapshotter by (as for stargz-snapshotter). */
export const SNAPSHOTTER_PLUGIN_NAME = 'stargz'

/** Background fetch's default pace: 10 MiB/s. */
export const DEFAULT_BACKGROUND_FETCH_RATE = 10 << 20

export interface RemoteConfig {
  enable: boolean
  resolveTimeoutSec: number
  /** Strict mode: a layer that cannot be lazy fails its Prepare (and the pull) instead of being downloaded. */
  requireLazy: boolean
}

export interface RegistryConfig {
  /** Hosts (host[:port]) reached over plain http. Loopback hosts always are, as in nerdctl. */
  insecure: string[]
  /** Bound on one registry request's wait for headers and between body chunks (then retried, then EIO). */
  requestTimeoutSec: number
  /** containerd's certs.d layout (hosts.toml mirrors, CA files), shared with containerd. */
  hostsDir: string
}

export interface PrefetchConfig {
  enable: boolean
  timeoutSec: number
}

export interface BackgroundFetchConfig {
  enable: boolean
  /** 0 means no limit. */
  rateBytesPerSec: number
  /** Seconds between the end of a layer's prefetch and the start of its background fetch. */
  startDelaySec: number
  concurrency: number
}

export interface CriKeychainConfig {
  enable: boolean
  /** containerd's socket: the CRI image service every proxied call goes on to. */
  imageServicePath: string
  /** Empty: the proxy shares the snapshotter's socket (as kubelet's endpoint names it). */
  listenPath: string
}

export interface CacheConfig {
  /**
   * Bound on the chunk cache's bytes on disk; 0 means unbounded. Absent: half the size of the
   * filesystem holding the root (cacheBoundFor), so lazy layers cannot fill a node's disk.
   */
  maxBytes?: number
}

export interface SnapshotterConfig {
  socket: string
  root: string
  logLevel: LogLevel
  /** Empty: no metrics endpoint. */
  metricsAddress: string
  remote: RemoteConfig
  registry: RegistryConfig
  prefetch: PrefetchConfig
  backgroundFetch: BackgroundFetchConfig
  cache: CacheConfig
  criKeychain: CriKeychainConfig
}

export function defaultSnapshotterConfig(): SnapshotterConfig {
  return {
    socket: DEFAULT_SNAPSHOTTER_SOCKET,
    root: DEFAULT_SNAPSHOTTER_ROOT,
    logLevel: 'info',
    metricsAddress: '',
    remote: {enable: true, resolveTimeoutSec: 30, requireLazy: false},
    registry: {insecure: [], hostsDir: '/etc/containerd/certs.d', requestTimeoutSec: 20},
    prefetch: {enable: true, timeoutSec: 10},
    backgroundFetch: {enable: true, rateBytesPerSec: DEFAULT_BACKGROUND_FETCH_RATE, startDelaySec: 5, concurrency: 2},
    cache: {},
    criKeychain: {enable: false, imageServicePath: '/run/containerd/containerd.sock', listenPath: ''},
  }
}

export interface LoadedConfig {
  config: SnapshotterConfig
  /** Whether the file existed (a missing default file is fine, as with stargz-snapshotter). */
  fromFile: boolean
  /** Keys the file has that this version does not know (logged, not fatal: newer configs keep working). */
  unknownKeys: string[]
  /** Top-level keys the file sets (so callers can tell a configured value from a default). */
  setKeys: string[]
}

/**
 * Reads `file` over the defaults. A missing file gives the defaults unless `mustExist` (a file named
 * explicitly by the user should exist). A malformed file is an error naming the file and the key.
 */
export function loadSnapshotterConfig(file: string, options: {mustExist?: boolean} = {}): LoadedConfig {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && !options.mustExist) return {config: defaultSnapshotterConfig(), fromFile: false, unknownKeys: [], setKeys: []}
    if (code === 'ENOENT') throw new LazyError('SNAPSHOTTER_CONFIG', `${file}: no such config file`, {cause: err})
    throw new LazyError('SNAPSHOTTER_CONFIG', `${file}: cannot read: ${(err as Error).message}`, {cause: err})
  }
  return {...parseSnapshotterConfig(text, file), fromFile: true}
}

export function parseSnapshotterConfig(text: string, file = 'config'): {config: SnapshotterConfig; unknownKeys: string[]; setKeys: string[]} {
  let table: Record<string, unknown>
  try {
    table = parse(text) as Record<string, unknown>
  } catch (err) {
    const where = err instanceof TomlError ? ` (line ${err.line}, column ${err.column})` : ''
    const first = describeFirstLine(err)
    throw new LazyError('SNAPSHOTTER_CONFIG', `${file}: not valid TOML${where}: ${first}`, {cause: err})
  }
  const config = defaultSnapshotterConfig()
  const reader = new TableReader(file, table)
  config.socket = reader.string('socket', config.socket)
  config.root = reader.string('root', config.root)
  const level = reader.string('log_level', config.logLevel)
  if (!isLogLevel(level)) throw new LazyError('SNAPSHOTTER_CONFIG', `${file}: log_level must be debug, info, warn or error, not ${JSON.stringify(level)}`)
  config.logLevel = level
  config.metricsAddress = reader.string('metrics_address', config.metricsAddress)
  config.metricsAddress = reader.table('metrics').string('address', config.metricsAddress)

  const remote = reader.table('remote')
  config.remote.enable = remote.boolean('enable', config.remote.enable)
  config.remote.resolveTimeoutSec = remote.number('resolve_timeout_sec', config.remote.resolveTimeoutSec, {min: 1})
  config.remote.requireLazy = remote.boolean('require_lazy', config.remote.requireLazy)

  const registry = reader.table('registry')
  config.registry.insecure = registry.stringList('insecure', config.registry.insecure)
  config.registry.hostsDir = registry.string('hosts_dir', config.registry.hostsDir)
  config.registry.requestTimeoutSec = registry.number('request_timeout_sec', config.registry.requestTimeoutSec, {min: 1})

  const prefetch = reader.table('prefetch')
  config.prefetch.enable = prefetch.boolean('enable', config.prefetch.enable)
  config.prefetch.timeoutSec = prefetch.number('timeout_sec', config.prefetch.timeoutSec, {min: 0})

  const background = reader.table('background_fetch')
  config.backgroundFetch.enable = background.boolean('enable', config.backgroundFetch.enable)
  config.backgroundFetch.rateBytesPerSec = background.number('rate_bytes_per_sec', config.backgroundFetch.rateBytesPerSec, {min: 0})
  config.backgroundFetch.startDelaySec = background.number('start_delay_sec', config.backgroundFetch.startDelaySec, {min: 0})
  config.backgroundFetch.concurrency = background.number('concurrency', config.backgroundFetch.concurrency, {min: 1})

  const cache = reader.table('cache')
  const maxBytes = cache.optionalNumber('max_bytes', {min: 0})
  if (maxBytes !== undefined) config.cache.maxBytes = maxBytes

  const keychain = reader.table('cri_keychain')
  config.criKeychain.enable = keychain.boolean('enable_keychain', config.criKeychain.enable)
  config.criKeychain.imageServicePath = keychain.string('image_service_path', config.criKeychain.imageServicePath)
  config.criKeychain.listenPath = keychain.string('listen_path', config.criKeychain.listenPath)

  return {config, unknownKeys: reader.unknownKeys(), setKeys: Object.keys(table)}
}

function describeFirstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err)
  return text.split('\n')[0] ?? text
}

/** Reads typed keys out of one TOML table, remembering which keys were used. */
class TableReader {
  private readonly used = new Set<string>()
  private readonly children: TableReader[] = []

  constructor(
    private readonly file: string,
    private readonly values: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  private take(key: string): unknown {
    this.used.add(key)
    return this.values[key]
  }

  private fail(key: string, expected: string, value: unknown): never {
    throw new LazyError('SNAPSHOTTER_CONFIG', `${this.file}: ${this.prefix}${key} must be ${expected}, not ${JSON.stringify(value)}`)
  }

  string(key: string, fallback: string): string {
    const value = this.take(key)
    if (value === undefined) return fallback
    if (typeof value !== 'string') this.fail(key, 'a string', value)
    return value
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.take(key)
    if (value === undefined) return fallback
    if (typeof value !== 'boolean') this.fail(key, 'true or false', value)
    return value
  }

  number(key: string, fallback: number, bounds: {min: number}): number {
    return this.optionalNumber(key, bounds) ?? fallback
  }

  /** A number, or undefined when the key is absent (for defaults computed later). */
  optionalNumber(key: string, bounds: {min: number}): number | undefined {
    let value = this.take(key)
    if (value === undefined) return undefined
    if (typeof value === 'bigint') value = Number(value)
    if (typeof value !== 'number' || !Number.isFinite(value) || value < bounds.min) this.fail(key, `a number ≥ ${bounds.min}`, value)
    return value
  }

  stringList(key: string, fallback: string[]): string[] {
    const value = this.take(key)
    if (value === undefined) return fallback
    if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) this.fail(key, 'a list of strings', value)
    return value as string[]
  }

  table(key: string): TableReader {
    const value = this.take(key)
    if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) this.fail(key, 'a table', value)
    const child = new TableReader(this.file, (value ?? {}) as Record<string, unknown>, `${this.prefix}${key}.`)
    this.children.push(child)
    return child
  }

  unknownKeys(): string[] {
    const own = Object.keys(this.values)
      .filter((key) => !this.used.has(key))
      .map((key) => `${this.prefix}${key}`)
    return [...own, ...this.children.flatMap((child) => child.unknownKeys())]
  }
}
