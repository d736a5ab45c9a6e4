import * as Args from '@oclif/core/args'
import {LazyCommand} from '../../src/cli/base-command.js'
import {formatFlag} from '../../src/cli/flags.js'
import {openFileSource} from '../../src/estargz/random-access.js'
import {openEstargz} from '../../src/estargz/reader.js'
import {serializeToc} from '../../src/estargz/toc-codec.js'

export default class EstargzToc extends LazyCommand {
  static override summary = "Print an eStargz blob's table of contents."
  static override examples = ['<%= config.bin %> estargz toc layer.esgz', '<%= config.bin %> estargz toc layer.esgz --format json']
  static override args = {blob: Args.string({required: true, description: 'eStargz blob'})}
  static override flags = {...formatFlag}

  async run(): Promise<void> {
    const {args, flags} = await this.parse(EstargzToc)
    const source = await openFileSource(args.blob)
    try {
      const reader = await openEstargz(source, {label: args.blob})
      if (flags.format === 'json') return this.print(serializeToc(reader.toc).toString('utf8'))
      const lines = [`TOC digest ${reader.tocDigest}, ${reader.toc.entries.length} entries, TOC at ${reader.footer.tocOffset} (${reader.footer.format} footer)`]
      lines.push(['TYPE', 'MODE', 'SIZE', 'OFFSET', 'NAME'].join('\t'))
      for (const e of reader.toc.entries) {
        const size = e.type === 'chunk' ? `+${e.chunkOffset ?? 0}` : String(e.size ?? 0)
        const name = e.linkName ? `${e.name} -> ${e.linkName}` : e.name
        lines.push([e.type, ((e.mode ?? 0) & 0o7777).toString(8).padStart(4, '0'), size, String(e.offset ?? '-'), name].join('\t'))
      }
      this.print(lines.join('\n'))
    } finally {
      await source.close()
    }
  }
}
