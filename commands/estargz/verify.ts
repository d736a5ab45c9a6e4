import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../../src/cli/base-command.js'
import {formatFlag} from '../../src/cli/flags.js'
import {openFileSource} from '../../src/estargz/random-access.js'
import {verifyEstargz} from '../../src/estargz/verify.js'

export default class EstargzVerify extends LazyCommand {
  static override summary = 'Check an eStargz blob: footer, TOC, every chunk digest, and that it is a tar.gz matching its TOC.'
  static override examples = ['<%= config.bin %> estargz verify layer.esgz --toc-digest sha256:…']
  static override args = {blob: Args.string({required: true, description: 'eStargz blob'})}
  static override flags = {
    'toc-digest': Flags.string({summary: 'Expected TOC digest (the containerd.io/snapshot/stargz/toc.digest annotation).'}),
    ...formatFlag,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(EstargzVerify)
    const source = await openFileSource(args.blob)
    try {
      const result = await verifyEstargz(source, {expectedTocDigest: flags['toc-digest'], label: args.blob})
      if (flags.format === 'json') return this.printJson({ok: true, ...result})
      this.print(`ok: ${result.entries} TOC entries, ${result.chunks} chunks verified; TOC digest ${result.tocDigest}; diffID ${result.diffID}; ${result.uncompressedSize} bytes uncompressed`)
    } finally {
      await source.close()
    }
  }
}
