import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {stopContainer} from '../src/run/lifecycle.js'

export default class Stop extends LazyCommand {
  static override summary = 'Stop running containers: their stop signal, then SIGKILL after a timeout.'
  static override strict = false
  static override examples = ['<%= config.bin %> stop web', '<%= config.bin %> stop -t 0 web other']
  static override args = {container: Args.string({description: 'Container ID, ID prefix or name (several allowed).', required: true})}
  static override flags = {
    ...containerdFlags,
    time: Flags.integer({char: 't', summary: 'Seconds to wait for the container to exit before killing it.', default: 10, min: 0}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Stop)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      for (const target of argv as string[]) {
        await stopContainer(conn, target, flags.time)
        this.print(target)
      }
    } finally {
      conn.close()
    }
  }
}
