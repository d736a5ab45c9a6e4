// Prometheus metrics on an opt-in address (`metrics_address` / `[metrics] address`): what the
// lazy layers fetched and served, how long range reads took, how the cache answered, and why
// layers fell back to a full download. Counters are read from the mounter's own totals at scrape
// time, so they are the same numbers `lazyctl snapshotter status` shows.
import type {Server} from 'node:http'
import {Counter, Gauge, Histogram, Registry} from 'prom-client'
import {LazyError, describeError} from '../cli/errors.js'
import type {Logger} from './log.js'
import type {RemoteLayerMounter} from './remote-layer-mounter.js'

export interface MetricsSources {
  mounter: RemoteLayerMounter
  /** Fallbacks to a full download since start, by coarse reason. */
  fallbacks(): Record<string, number>
}

export interface MetricsServer {
  /** host:port actually bound (port 0 picks one). */
  address: string
  registry: Registry
  close(): Promise<void>
}

const PREFIX = 'lazyctl_snapshotter_'

/** Builds the registry of metrics over `sources`. */
export function createMetricsRegistry(sources: MetricsSources): Registry {
  const registry = new Registry()
  const {mounter} = sources
  const totalCounter = (name: string, help: string, pick: (t: NonNullable<ReturnType<NonNullable<RemoteLayerMounter['totals']>>>) => number): void => {
    new Counter({
      name: PREFIX + name, help, registers: [registry],
      collect() {
        const totals = mounter.totals?.()
        this.reset()
        if (totals) this.inc(pick(totals))
      },
    })
  }
  totalCounter('fetched_bytes_total', 'Bytes read from registries for lazy layers: chunk range reads plus footer and TOC reads at mount.', (t) => t.bytesFetched)
  totalCounter('served_bytes_total', 'Uncompressed bytes returned to readers of lazy layers.', (t) => t.bytesServed)
  totalCounter('range_reads_total', 'Range requests to registries for chunks.', (t) => t.rangeReads)
  totalCounter('fetch_errors_total', 'Range reads that failed after retries.', (t) => t.fetchErrors)
  totalCounter('cache_hits_total', 'Chunk lookups answered from the local cache (memory or disk).', (t) => t.cacheHits)
  totalCounter('cache_misses_total', 'Chunk lookups that needed a fetch.', (t) => t.cacheMisses)
  totalCounter('read_errors_total', 'Reads of lazy layers answered with EIO.', (t) => t.readErrors)
  totalCounter('verify_failures_total', 'Chunks whose bytes did not match their digest (never served).', (t) => t.verifyFailures)

  const latency = new Histogram({
    name: PREFIX + 'fetch_duration_seconds', help: 'Duration of range reads to registries (each attempt of the lazy filesystem).',
    labelNames: ['outcome'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry],
  })
  mounter.observeRangeReads?.((o) => latency.observe({outcome: o.ok ? 'ok' : 'error'}, o.ms / 1000))

  new Counter({
    name: PREFIX + 'fallbacks_total', help: 'Layers served by a full download instead of lazily, by reason.', labelNames: ['reason'], registers: [registry],
    collect() {
      this.reset()
      for (const [reason, count] of Object.entries(sources.fallbacks())) this.inc({reason}, count)
    },
  })
  new Gauge({
    name: PREFIX + 'layers_mounted', help: 'Lazy layers mounted now.', registers: [registry],
    collect() {
      this.set(mounter.status().length)
    },
  })
  new Gauge({
    name: PREFIX + 'layer_local_ratio', help: 'Share of each mounted layer\'s chunks that are local (0–1).', labelNames: ['layer'], registers: [registry],
    collect() {
      this.reset()
      for (const layer of mounter.status()) if (layer.percentLocal !== undefined) this.set({layer: layer.layerDigest}, layer.percentLocal / 100)
    },
  })
  new Gauge({
    name: PREFIX + 'cache_bytes', help: 'Bytes of chunks in the on-disk cache.', registers: [registry],
    collect() {
      this.set(mounter.cacheStatus?.().bytesOnDisk ?? 0)
    },
  })
  new Gauge({
    name: PREFIX + 'cache_max_bytes', help: 'Bound of the on-disk cache (0 = unbounded).', registers: [registry],
    collect() {
      this.set(mounter.cacheStatus?.().maxBytes ?? 0)
    },
  })
  new Counter({
    name: PREFIX + 'cache_evictions_total', help: 'Chunks deleted from the cache to honour its bound.', registers: [registry],
    collect() {
      this.reset()
      this.inc(mounter.cacheStatus?.().evictions ?? 0)
    },
  })
  return registry
}

/** Serves GET /metrics on `address` (host:port; `[::1]:port` for IPv6). */
export async function startMetricsServer(address: string, sources: MetricsSources, log: Logger): Promise<MetricsServer> {
  const {host, port} = parseAddress(address)
  const registry = createMetricsRegistry(sources)
  // Through the builtin loader, not an ES import: importing node:http's namespace evaluates every
  // export, the lazily loaded fetch/WebSocket implementation included (~15 ms of the daemon's start,
  // metrics off or on).
  const server: Server = process.getBuiltinModule('node:http').createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, {'content-type': 'text/plain'}).end('not found: try /metrics\n')
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, {'content-type': registry.contentType}).end(text),
      (err: unknown) => {
        log.warn('metrics scrape failed', {error: describeError(err)})
        res.writeHead(500, {'content-type': 'text/plain'}).end('metrics failed\n')
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new LazyError('SNAPSHOTTER', `cannot serve metrics on ${address}: ${describeError(err)}`, {cause: err, hint: 'pick a free host:port for metrics_address'})))
    server.listen(port, host, () => resolve())
  })
  const bound = server.address()
  const actual = bound && typeof bound === 'object' ? `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}` : address
  log.info('metrics served', {address: actual, path: '/metrics'})
  return {
    address: actual,
    registry,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

function parseAddress(address: string): {host: string; port: number} {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address.trim())
  const port = m ? Number(m[3]) : NaN
  if (!m || port > 65535) throw new LazyError('SNAPSHOTTER_CONFIG', `metrics address ${JSON.stringify(address)}: expected host:port (e.g. 127.0.0.1:9110)`)
  // A bare `:PORT` binds loopback: metrics name images and registries, which a node's other
  // tenants need not see; bind 0.0.0.0 by saying so.
  return {host: m[1] ?? (m[2] || '127.0.0.1'), port}
}
