import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {removeContainer} from '../src/run/manage.js'

export default class Rm extends LazyCommand {
  static override summary = 'Remove containers (task, rootfs snapshot, record and log files).'
  static override strict = false
  static override examples = ['<%= config.bin %> rm web', '<%= config.bin %> rm -f web other']
  static override args = {container: Args.string({description: 'Container ID, ID prefix or name (several allowed).', required: true})}
  static override flags = {
    ...containerdFlags,
    force: Flags.boolean({char: 'f', summary: 'Kill a running container first.'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Rm)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      // As docker: every container is tried; the first failure is reported once the others are done.
      let failure: unknown
      for (const target of argv as string[]) {
        try {
          await removeContainer(conn, target, {force: flags.force})
          this.print(target)
        } catch (err) {
          failure ??= err
        }
      }
      if (failure) throw failure
    } finally {
      conn.close()
    }
  }
}
