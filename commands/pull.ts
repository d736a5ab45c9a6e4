import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags, snapshotterFlag} from '../src/cli/flags.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {parsePlatform} from '../src/oci/platform.js'
import {pullImageFromRegistry} from '../src/run/images.js'

export default class Pull extends LazyCommand {
  static override summary = 'Pull an image from a registry into containerd and unpack it.'
  static override description = 'With a lazy snapshotter (a name containing "stargz"), eStargz layers are mounted remotely instead of downloaded.'
  static override examples = ['<%= config.bin %> pull 127.0.0.1:5000/demo:v1', '<%= config.bin %> pull --snapshotter stargz 127.0.0.1:5000/demo:esgz']
  static override args = {reference: Args.string({description: 'Image reference.', required: true})}
  static override flags = {
    ...containerdFlags,
    ...snapshotterFlag,
    platform: Flags.string({summary: 'Platform to pull (os/arch[/variant]); default: this host.'}),
    quiet: Flags.boolean({char: 'q', summary: 'Print only the image name.'}),
    'require-lazy': Flags.boolean({summary: 'Fail instead of downloading a layer the lazy snapshotter cannot mount (strict mode).'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Pull)
    const conn = new ContainerdConnection({address: flags.address, namespace: flags.namespace})
    try {
      const options: Parameters<typeof pullImageFromRegistry>[2] = {snapshotter: flags.snapshotter, requireLazy: flags['require-lazy']}
      if (flags.platform) options.platform = parsePlatform(flags.platform)
      if (!flags.quiet) options.onProgress = (line) => process.stderr.write(`${line}\n`)
      const result = await pullImageFromRegistry(conn, args.reference, options)
      const remote = result.unpack?.remoteLayers.length ?? 0
      if (!flags.quiet && remote > 0) process.stderr.write(`${remote} of ${result.unpack!.chainIds.length} layers mounted remotely by ${flags.snapshotter}\n`)
      this.print(flags.quiet ? result.image.name : `${result.image.name}: ${result.image.target.digest}`)
    } finally {
      conn.close()
    }
  }
}
