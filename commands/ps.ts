import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags, DEFAULT_CONTAINERD_ADDRESS, formatFlag} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {listContainerSummaries} from '../src/run/manage.js'

export default class Ps extends LazyCommand {
  static override summary = 'List containers.'
  static override examples = ['<%= config.bin %> ps', '<%= config.bin %> ps -a --format json']
  static override flags = {
    ...containerdFlags,
    // -a is --all here, as in nerdctl and docker; the address keeps its long form.
    address: Flags.string({summary: "containerd's gRPC socket.", env: 'CONTAINERD_ADDRESS', default: DEFAULT_CONTAINERD_ADDRESS, helpGroup: 'GLOBAL'}),
    ...formatFlag,
    all: Flags.boolean({char: 'a', summary: 'Show all containers (default: running only).'}),
    quiet: Flags.boolean({char: 'q', summary: 'Only print container IDs.'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Ps)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      const rows = await listContainerSummaries(conn, {all: flags.all})
      if (flags.format === 'json') return this.printJson(rows)
      if (flags.quiet) return rows.forEach((r) => this.print(r.id.slice(0, 12)))
      this.print(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'STATUS', 'NAMES'], rows.map((r) => [r.id.slice(0, 12), r.image, JSON.stringify(clip(r.command, 20)), r.status, r.name])))
    } finally {
      conn.close()
    }
  }
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('')
  return [line(header), ...rows.map(line)].join('\n')
}
