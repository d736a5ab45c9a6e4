import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {containerLogs} from '../src/run/manage.js'

export default class Logs extends LazyCommand {
  static override summary = 'Show the output of a detached container.'
  static override examples = ['<%= config.bin %> logs web', '<%= config.bin %> logs -f 3f2a']
  static override args = {container: Args.string({description: 'Container ID, ID prefix or name.', required: true})}
  static override flags = {
    ...containerdFlags,
    follow: Flags.boolean({char: 'f', summary: 'Keep printing new output until the container exits.'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Logs)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      await containerLogs(conn, args.container, process.stdout, {follow: flags.follow})
    } finally {
      conn.close()
    }
  }
}
