import {formatBytes} from '../src/cli/format.js'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags, formatFlag} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {listImageSummaries} from '../src/run/images.js'

export default class Images extends LazyCommand {
  static override summary = "List images in containerd's image store."
  static override examples = ['<%= config.bin %> images', '<%= config.bin %> images --format json']
  static override flags = {...containerdFlags, ...formatFlag}

  async run(): Promise<void> {
    const {flags} = await this.parse(Images)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      const rows = await listImageSummaries(conn)
      if (flags.format === 'json') return this.printJson(rows)
      const header = ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE']
      const cells = rows.map((r) => [r.repository, r.tag, r.digest.replace(/^sha256:/, '').slice(0, 12), r.createdAt ?? '', r.size === undefined ? '' : formatBytes(r.size)])
      const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
      for (const line of [header, ...cells]) this.print(line.map((c, i) => (i === line.length - 1 ? c : c.padEnd(widths[i]! + 3))).join(''))
    } finally {
      conn.close()
    }
  }
}

