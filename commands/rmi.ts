import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {removeImage} from '../src/run/images.js'

export default class Rmi extends LazyCommand {
  static override summary = "Remove images from containerd's image store."
  static override strict = false
  static override examples = ['<%= config.bin %> rmi 127.0.0.1:5000/demo:v1', '<%= config.bin %> rmi 3f5a2b1c9d0e']
  static override args = {image: Args.string({description: 'Image name or IMAGE ID, as `images` prints it (several allowed).', required: true})}
  static override flags = {
    ...containerdFlags,
    force: Flags.boolean({char: 'f', summary: 'Remove even when containers were created from it.'}),
  }

  async run(): Promise<void> {
    const {argv, flags} = await this.parse(Rmi)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      for (const image of argv as string[]) for (const name of await removeImage(conn, image, {force: flags.force})) this.print(`Untagged: ${name}`)
    } finally {
      conn.close()
    }
  }
}
