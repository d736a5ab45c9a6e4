// The daemon: recovers the snapshotter's state, serves containerd's Snapshots service and
// lazyctl.v1.Status on one unix socket, and shuts down in order (stop accepting, let calls
// finish, unmount lazy layers, close the metadata, remove the socket).
import * as grpc from '@grpc/grpc-js'
import {chmod, mkdir, rm} from 'node:fs/promises'
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {LazyError, describeError} from '../cli/errors.js'
import {parsePlatform} from '../oci/platform.js'
import {CLIENT_VERSION} from '../version.js'
import type {SnapshotterConfig} from './config.js'
import {snapshotsHandlers} from './grpc-service.js'
import type {MetricsServer} from './metrics.js'
import {acquireRootLock} from './root-lock.js'
import type {Logger} from './log.js'
import type {RemoteLayerMounter} from './remote-layer-mounter.js'
import {snapshotsService} from './snapshots-proto.js'
import {Snapshotter} from './snapshotter.js'
import {probeSnapshotter, statusHandlers, statusServiceDefinition, type ResolveAheadRequest, type SnapshotterStatus} from './status-service.js'
import {CRI_LAYER_DIGEST_LABEL, STARGZ_DIGEST_LABEL} from './remote-labels.js'
import {addImageServiceProxy} from '../cri/image-service-proxy.js'
import type {CriKeychain} from '../cri/keychain.js'

const MAX_MESSAGE_BYTES = 16 << 20
const SHUTDOWN_GRACE_MS = 10_000

export interface ServeOptions {
  config: SnapshotterConfig
  configFile: string
  log: Logger
  mounter: RemoteLayerMounter
  /** One line for status: how lazy layers are served, or why not. */
  mounterDescription: string
  /** Serve the CRI image service (kubelet's pull secrets for lazy reads) with this keychain. */
  criKeychain?: CriKeychain
}

export interface RunningSnapshotter {
  socket: string
  /** host:port of /metrics, when enabled. */
  metricsAddress?: string
  snapshotter: Snapshotter
  status(): SnapshotterStatus
  stop(): Promise<void>
}

export async function startSnapshotterServer(options: ServeOptions): Promise<RunningSnapshotter> {
  const {config, log} = options
  const socket = config.socket
  await mkdir(join(config.root, 'snapshotter'), {recursive: true, mode: 0o700})
  const lock = acquireRootLock(join(config.root, 'snapshotter', 'daemon.pid'))
  let snapshotter: Snapshotter
  try {
    await claimSocket(socket)
    snapshotter = await Snapshotter.open({root: config.root, mounter: options.mounter, log, remote: config.remote})
  } catch (err) {
    lock.release()
    throw err
  }
  const startedAt = new Date().toISOString()
  let server: grpc.Server | undefined
  let criServer: grpc.Server | undefined
  let closeCriBackend: (() => void) | undefined
  let metrics: MetricsServer | undefined
  try {
    const recovered = await snapshotter.recover()
    if (recovered.remounted + recovered.failed > 0) log.info('recovered remote snapshots', recovered)
    const status = (): SnapshotterStatus => {
      const summary = snapshotter.summary()
      return {
        version: CLIENT_VERSION,
        pid: process.pid,
        startedAt,
        socket,
        root: config.root,
        configFile: options.configFile,
        remote: {enabled: config.remote.enable, mounter: options.mounterDescription},
        snapshots: summary.snapshots.map((s) => {
          const item = {name: s.name, parent: s.parent, kind: s.kind, id: s.id, remote: s.remote, createdAt: new Date(s.createdAtUs / 1000).toISOString(), labels: s.labels}
          return s.mounted === undefined ? item : {...item, mounted: s.mounted}
        }),
        layers: options.mounter.status(),
        cache: options.mounter.cacheStatus?.(),
        recentRemoteAttempts: summary.recentRemoteAttempts,
      }
    }
    server = new grpc.Server({'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES})
    server.addService(snapshotsService().service, snapshotsHandlers(snapshotter, log))
    // Layers already committed need no TOC (their Prepare answers ALREADY_EXISTS): not resolved ahead.
    const resolveAhead = async (request: ResolveAheadRequest): Promise<number> => {
      const {mounter} = options
      if (!mounter.resolveAhead) return 0
      // A hint without layers names the image only: its manifest says which layers are lazy.
      const layers = request.layers?.length ? request.layers : ((await mounter.lazyLayersOf?.(request.image, request.platform === undefined ? undefined : parsePlatform(request.platform))) ?? [])
      const committed = new Set(snapshotter.summary().snapshots.filter((s) => s.remote && s.kind === 'COMMITTED').flatMap((s) => [s.labels[STARGZ_DIGEST_LABEL], s.labels[CRI_LAYER_DIGEST_LABEL]]))
      return mounter.resolveAhead(request.image, layers.filter((layer) => !committed.has(layer)))
    }
    server.addService(statusServiceDefinition, statusHandlers(status, resolveAhead))
    const {criKeychain} = options
    const criSocket = config.criKeychain.listenPath && config.criKeychain.listenPath !== socket ? config.criKeychain.listenPath : socket
    if (criKeychain) {
      // kubelet's image-service endpoint names the snapshotter's socket, unless listen_path gives the proxy its own.
      if (criSocket !== socket) {
        await claimSocket(criSocket)
        criServer = new grpc.Server({'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES})
      }
      closeCriBackend = addImageServiceProxy(criServer ?? server, {
        backendSocket: config.criKeychain.imageServicePath,
        keychain: criKeychain,
        log,
        // As `lazyctl run`'s early hint does: TOCs are read while containerd resolves the image.
        onPullImage: (image) => {
          resolveAhead({image}).then(
            (layers) => log.debug('PullImage: resolving ahead', {image, layers}),
            (err: unknown) => log.debug('PullImage: not resolved ahead', {image, error: describeError(err)}),
          )
        },
      })
    }
    await bind(server, socket)
    // containerd runs as root; nobody else has business on this socket.
    await chmod(socket, 0o660)
    if (criServer) {
      await bind(criServer, criSocket)
      await chmod(criSocket, 0o660)
    }
    log.info('serving', {socket, root: config.root, version: CLIENT_VERSION, remote: options.mounterDescription, ...(criKeychain ? {criImageService: criSocket, criBackend: config.criKeychain.imageServicePath} : {})})
    const open = snapshotter
    // prom-client is loaded only when metrics are asked for (off by default).
    metrics = config.metricsAddress ? await (await import('./metrics.js')).startMetricsServer(config.metricsAddress, {mounter: options.mounter, fallbacks: () => open.fallbackCounts()}, log) : undefined
    const metricsServer = metrics
    const live = server
    const liveCri = criServer
    const closeBackend = closeCriBackend
    let stopping: Promise<void> | undefined
    return {
      socket,
      metricsAddress: metricsServer?.address,
      snapshotter,
      status,
      stop() {
        stopping ??= (async () => {
          log.info('shutting down', {socket})
          await metricsServer?.close()
          await Promise.all([shutdown(live), liveCri ? shutdown(liveCri) : undefined])
          closeBackend?.()
          if (liveCri) await rm(criSocket, {force: true})
          await snapshotter.close()
          await rm(socket, {force: true})
          lock.release()
          log.info('stopped')
        })()
        return stopping
      },
    }
  } catch (err) {
    server?.forceShutdown()
    criServer?.forceShutdown()
    closeCriBackend?.()
    await metrics?.close()
    await snapshotter.close().catch(() => {})
    lock.release()
    throw err
  }
}

/** Refuses to start over a live snapshotter; removes a socket file a dead one left. */
async function claimSocket(socket: string): Promise<void> {
  await mkdir(dirname(socket), {recursive: true, mode: 0o711})
  if (!existsSync(socket)) return
  const probe = await probeSnapshotter(socket, 1000)
  if (probe.state !== 'absent') {
    throw new LazyError('SNAPSHOTTER', `a snapshotter already serves ${socket}`, {hint: 'stop it first, or serve on another --socket'})
  }
  await rm(socket, {force: true})
}

function bind(server: grpc.Server, socket: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new LazyError('SNAPSHOTTER', `cannot listen on ${socket}: ${describeError(err)}`, {cause: err}))
      else resolve()
    })
  })
}

/** Stops accepting calls and waits (bounded) for the ones in flight. */
function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown()
      resolve()
    }, SHUTDOWN_GRACE_MS)
    server.tryShutdown(() => {
      clearTimeout(timer)
      resolve()
    })
  })
}
