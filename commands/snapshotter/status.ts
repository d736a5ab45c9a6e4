import {LazyCommand} from '../../src/cli/base-command.js'
import {LazyError, isLazyError} from '../../src/cli/errors.js'
import {formatFlag, snapshotterSocketFlag} from '../../src/cli/flags.js'
import {SNAPSHOTTER_SOCKET_ENV, locateSnapshotter} from '../../src/snapshotter/locate.js'
import {renderSnapshotterStatus} from '../../src/snapshotter/status-render.js'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'

const SOCKET_SOURCES = {flag: '--snapshotter-socket', env: 'LAZYCTL_SNAPSHOTTER_SOCKET', config: 'the config file', default: 'the default'} as const

export default class SnapshotterStatus extends LazyCommand {
  static override summary = "Show whether lazyctl's snapshotter answers, and the snapshots and lazy layers it holds."
  static override examples = ['<%= config.bin %> snapshotter status', '<%= config.bin %> snapshotter status --format json']
  static override flags = {...snapshotterSocketFlag, ...formatFlag}

  async run(): Promise<void> {
    const {flags} = await this.parse(SnapshotterStatus)
    // oclif folds the env var into the flag; tell them apart so messages name the right source.
    const flagSocket = flags['snapshotter-socket'] === process.env[SNAPSHOTTER_SOCKET_ENV] ? undefined : flags['snapshotter-socket']
    const location = locateSnapshotter({socket: flagSocket})
    let status
    try {
      status = await querySnapshotterStatus(location.socket)
    } catch (err) {
      // Say where the socket path came from: a stale env var is the usual surprise.
      if (isLazyError(err) && location.socketFrom !== 'default') {
        throw new LazyError(err.code, `${err.message} (socket from ${SOCKET_SOURCES[location.socketFrom]})`, {hint: err.hint, cause: err})
      }
      throw err
    }
    if (flags.format === 'json') this.printJson(status)
    else this.print(renderSnapshotterStatus(status))
  }
}
