import {LazyCommand} from '../../src/cli/base-command.js'
import {formatFlag, snapshotterSocketFlag} from '../../src/cli/flags.js'
import {locateSnapshotter} from '../../src/snapshotter/locate.js'
import {renderSnapshotterStatus} from '../../src/snapshotter/status-render.js'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'

export default class SnapshotterStatus extends LazyCommand {
  static override summary = "Show whether lazyctl's snapshotter answers, and the snapshots and lazy layers it holds."
  static override examples = ['<%= config.bin %> snapshotter status', '<%= config.bin %> snapshotter status --format json']
  static override flags = {...snapshotterSocketFlag, ...formatFlag}

  async run(): Promise<void> {
    const {flags} = await this.parse(SnapshotterStatus)
    const location = locateSnapshotter({socket: flags['snapshotter-socket']})
    const status = await querySnapshotterStatus(location.socket)
    if (flags.format === 'json') this.printJson(status)
    else this.print(renderSnapshotterStatus(status))
  }
}
