import * as Args from '@oclif/core/args'
import {LazyCommand} from '../src/cli/base-command.js'
import {imageTransferFlags, imageTransferOptions} from '../src/cli/image-transfer.js'
import {createProgress, exitOnSignals} from '../src/cli/progress.js'
import {pushImage} from '../src/convert/convert.js'
import {splitImageName} from '../src/transport/factory.js'

export default class Push extends LazyCommand {
  static override summary = 'Push an image to a registry unchanged (digests kept).'
  static override description = [
    'SRC is any transport (docker://, oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE, or a bare containerd image name).',
    'DST defaults to SRC\'s own name when SRC is a registry or containerd name. Blobs the registry has are skipped;',
    'blobs from another repository of the same registry are mounted, not uploaded.',
  ].join('\n')
  static override examples = [
    '<%= config.bin %> push oci:./layout:v1 docker://127.0.0.1:5000/app:v1',
    '<%= config.bin %> push docker://registry.example/app:1 docker://registry.example/mirror/app:1',
  ]
  static override args = {
    source: Args.string({required: true, description: 'image to push'}),
    destination: Args.string({required: false, description: 'registry destination (docker://HOST/REPO:TAG)'}),
  }
  static override flags = {
    ...imageTransferFlags('Push'),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Push)
    const json = flags.format === 'json'
    const progress = createProgress({quiet: flags.quiet || json})
    exitOnSignals()
    let result
    try {
      // A bare destination is a registry name here (push always writes to a registry).
      const dst = args.destination && splitImageName(args.destination).scheme === 'containerd' ? `docker://${args.destination}` : args.destination
      result = await pushImage(args.source, dst, {
        ...imageTransferOptions(flags),
        progress,
      })
    } finally {
      await progress.close()
    }
    if (json) this.printJson(result)
    else if (flags.quiet) this.print(result.digest)
    else this.print(`pushed ${result.reference}\n${result.digest}`)
  }
}
