import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {killContainer, parseSignal} from '../src/run/lifecycle.js'

export default class Kill extends LazyCommand {
  static override summary = 'Send a signal to running containers (SIGKILL by default).'
  static override strict = false
  static override examples = ['<%= config.bin %> kill web', '<%= config.bin %> kill -s HUP web']
  static override args = {container: Args.string({description: 'Container ID, ID prefix or name (several allowed).', required: true})}
  static override flags = {
    ...containerdFlags,
    signal: Flags.string({char: 's', summary: 'Signal: a name (TERM, SIGHUP) or a number.', default: 'SIGKILL'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Kill)
    const signal = parseSignal(flags.signal)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      for (const target of argv as string[]) {
        await killContainer(conn, target, signal)
        this.print(target)
      }
    } finally {
      conn.close()
    }
  }
}
