import {closeSync, writeSync} from 'node:fs'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../../src/cli/base-command.js'
import {LazyError} from '../../src/cli/errors.js'
import {DEFAULT_CONFIG_FILE, loadSnapshotterConfig} from '../../src/snapshotter/config.js'
import {createLayerMounter} from '../../src/snapshotter/layer-mounter-factory.js'
import {CONFIG_FILE_ENV} from '../../src/snapshotter/locate.js'
import {LOG_LEVELS, createJsonLogger, isLogLevel} from '../../src/snapshotter/log.js'
import {preloadHttpClient} from '../../src/registry/http.js'
import {startSnapshotterServer} from '../../src/snapshotter/server.js'

export default class SnapshotterServe extends LazyCommand {
  static override summary = "Serve containerd's Snapshots API with lazily pulled eStargz layers (the `stargz` proxy plugin)."
  static override description =
    'A drop-in for containerd-stargz-grpc: containerd reaches it as the proxy snapshotter `stargz`. Logs are JSON lines on stderr. SIGTERM or SIGINT stops it; lazy layers stay mounted only while it runs and are mounted again when it starts.'

  static override examples = [
    '<%= config.bin %> snapshotter serve',
    '<%= config.bin %> snapshotter serve --socket /run/lazyctl/snapshotter.sock --root /var/lib/lazyctl --log-level debug',
  ]

  static override flags = {
    socket: Flags.string({summary: 'Unix socket to serve on (default: config `socket`, else /run/containerd-stargz-grpc/containerd-stargz-grpc.sock).'}),
    root: Flags.string({summary: 'State directory (default: config `root`, else /var/lib/lazyctl).'}),
    config: Flags.string({summary: `Config file (TOML; default ${DEFAULT_CONFIG_FILE}, optional).`, env: CONFIG_FILE_ENV}),
    'log-level': Flags.string({summary: 'Log level (default: config `log_level`, else info).', options: [...LOG_LEVELS]}),
    'ready-fd': Flags.integer({hidden: true, summary: 'Write "ready" to this inherited file descriptor once serving (used by the spawning lazyctl).'}),
    'metrics-address': Flags.string({summary: 'Serve Prometheus metrics at http://HOST:PORT/metrics (default: config `[metrics] address`, else off).'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(SnapshotterServe)
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
    const {mounter, description} = await createLayerMounter(config, log)
    const running = await startSnapshotterServer({config, configFile, log, mounter, mounterDescription: description})
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
