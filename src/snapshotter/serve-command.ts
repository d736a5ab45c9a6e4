// `lazyctl snapshotter serve` from its parsed flags: config, logger, mounter, server, signals. Shared
// by the oclif command (commands/snapshotter/serve.ts) and the start without oclif (src/cli/lean.ts):
// a daemon spawned by `run` or started by systemd does not pay for loading the CLI framework.
import {closeSync, writeSync} from 'node:fs'
import {LazyError} from '../cli/errors.js'
import {CriKeychain} from '../cri/keychain.js'
import {preloadHttpClient} from '../registry/http.js'
import {DEFAULT_CONFIG_FILE, loadSnapshotterConfig} from './config.js'
import {createLayerMounter} from './layer-mounter-factory.js'
import {createJsonLogger, isLogLevel} from './log.js'
import {startSnapshotterServer} from './server.js'

export interface ServeFlags {
  socket?: string | undefined
  root?: string | undefined
  config?: string | undefined
  'log-level'?: string | undefined
  'ready-fd'?: number | undefined
  'metrics-address'?: string | undefined
}

/** Serves until SIGTERM or SIGINT, then stops cleanly. */
export async function serveSnapshotter(flags: ServeFlags): Promise<void> {
  const configFile = flags.config ?? DEFAULT_CONFIG_FILE
  const loaded = loadSnapshotterConfig(configFile, {mustExist: flags.config !== undefined})
  const config = loaded.config
  if (flags.socket) config.socket = flags.socket
  if (flags.root) config.root = flags.root
  if (flags['metrics-address'] !== undefined) config.metricsAddress = flags['metrics-address']
  if (flags['log-level']) {
    if (!isLogLevel(flags['log-level'])) throw new LazyError('USAGE', `--log-level ${flags['log-level']}: not a level`)
    config.logLevel = flags['log-level']
  }
  const log = createJsonLogger({level: config.logLevel})
  if (loaded.unknownKeys.length > 0) log.warn('config keys not understood by this version (ignored)', {file: configFile, keys: loaded.unknownKeys})
  // A stray rejection in one request's path must not take every lazy mount down with the process.
  process.on('unhandledRejection', (reason) => log.error('unhandled rejection (kept serving)', {error: reason instanceof Error ? reason.message : String(reason)}))
  // Pull secrets kubelet sends through the CRI image service, for the lazy reads of their images.
  const keychain = config.criKeychain.enable ? new CriKeychain({file: CriKeychain.fileUnder(config.root), onError: (message) => log.warn(`CRI keychain: ${message}`)}) : undefined
  const {mounter, description} = await createLayerMounter(config, log, keychain ? [keychain.locator()] : [])
  if (keychain) keychain.onChange = (registry) => mounter.credentialsChanged?.(registry)
  const running = await startSnapshotterServer({config, configFile, log, mounter, mounterDescription: description, ...(keychain ? {criKeychain: keychain} : {})})
  if (flags['ready-fd'] !== undefined) signalReady(flags['ready-fd'])
  // The first remote Prepare will fetch from a registry: load the HTTP client while containerd dials.
  preloadHttpClient()
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log.info('signal received', {signal})
      running.stop().then(resolve, (err: unknown) => {
        log.error('shutdown failed', {error: err instanceof Error ? err.message : String(err)})
        resolve()
      })
    }
    process.once('SIGTERM', () => stop('SIGTERM'))
    process.once('SIGINT', () => stop('SIGINT'))
  })
}

/** Tells the process that spawned us that the socket answers now, so it need not poll. */
function signalReady(fd: number): void {
  try {
    writeSync(fd, 'ready\n')
    closeSync(fd)
  } catch {
    // The spawner is gone or stopped listening: nobody to tell.
  }
}
