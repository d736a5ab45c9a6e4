import * as Args from '@oclif/core/args'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {waitContainer} from '../src/run/lifecycle.js'

export default class Wait extends LazyCommand {
  static override summary = 'Wait for containers to exit and print their exit codes.'
  static override strict = false
  static override examples = ['<%= config.bin %> wait web']
  static override args = {container: Args.string({description: 'Container ID, ID prefix or name (several allowed).', required: true})}
  static override flags = {...containerdFlags}

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Wait)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      for (const target of argv as string[]) this.print(String(await waitContainer(conn, target)))
    } finally {
      conn.close()
    }
  }
}
