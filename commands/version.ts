import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags, formatFlag} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {serverVersion, type ServerVersion} from '../src/containerd/version.js'
import {CLIENT_VERSION} from '../src/version.js'

export default class Version extends LazyCommand {
  static override summary = "Show lazyctl's version and containerd's."
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version -a /run/containerd/containerd.sock --format json']
  static override flags = {...containerdFlags, ...formatFlag}

  async run(): Promise<void> {
    const {flags} = await this.parse(Version)
    const client = {version: CLIENT_VERSION, node: process.version}
    const json = flags.format === 'json'
    if (!json) this.print(`Client:\n Version:\t${client.version}\n Node.js:\t${client.node}\n`)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    let server: ServerVersion
    try {
      server = await serverVersion(conn)
    } catch (err) {
      if (json) this.printJson({client, server: null})
      throw err
    } finally {
      conn.close()
    }
    if (json) this.printJson({client, server: {containerd: server}})
    else this.print(`Server:\n containerd:\n  Version:\t${server.version}\n  GitCommit:\t${server.revision}`)
  }
}
