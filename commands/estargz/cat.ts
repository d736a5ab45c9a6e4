import * as Args from '@oclif/core/args'
import {LazyCommand} from '../../src/cli/base-command.js'
import {openFileSource} from '../../src/estargz/random-access.js'
import {openEstargz} from '../../src/estargz/reader.js'

export default class EstargzCat extends LazyCommand {
  static override summary = 'Write one file of an eStargz blob to stdout, read through the TOC.'
  static override description = 'Only the chunks of that file are read and inflated; each is checked against its chunkDigest before it is written.'
  static override examples = ['<%= config.bin %> estargz cat layer.esgz /etc/os-release']
  static override args = {
    blob: Args.string({required: true, description: 'eStargz blob'}),
    path: Args.string({required: true, description: 'file inside the layer'}),
  }

  async run(): Promise<void> {
    const {args} = await this.parse(EstargzCat)
    const source = await openFileSource(args.blob)
    try {
      const reader = await openEstargz(source, {label: args.blob})
      for await (const chunk of reader.fileChunks(args.path)) {
        if (!process.stdout.write(chunk)) await new Promise((resolve) => process.stdout.once('drain', resolve))
      }
    } finally {
      await source.close()
    }
  }
}
