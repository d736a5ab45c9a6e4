import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../../src/cli/base-command.js'
import {DEFAULT_CONFIG_FILE} from '../../src/snapshotter/config.js'
import {CONFIG_FILE_ENV} from '../../src/snapshotter/locate.js'
import {LOG_LEVELS} from '../../src/snapshotter/log.js'
import {serveSnapshotter} from '../../src/snapshotter/serve-command.js'

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
    await serveSnapshotter(flags)
  }
}
