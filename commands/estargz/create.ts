import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../../src/cli/base-command.js'
import {formatFlag} from '../../src/cli/flags.js'
import {createEstargzFile} from '../../src/estargz/create-file.js'
import {readRecordFile} from '../../src/estargz/record.js'
import {DEFAULT_CHUNK_SIZE, DEFAULT_COMPRESSION_LEVEL, MAX_CHUNK_SIZE} from '../../src/estargz/toc.js'

export default class EstargzCreate extends LazyCommand {
  static override summary = 'Convert a layer tar (plain, gzip or zstd) into an eStargz blob.'
  static override description =
    'Every file and every chunk of a large file starts a gzip member, the TOC (stargz.index.json) is the last tar entry and a 51-byte footer points at it. ' +
    'Prints the blob digest and size, the TOC digest (containerd.io/snapshot/stargz/toc.digest), the uncompressed size (io.containers.estargz.uncompressed-size) and the new diffID.'
  static override examples = [
    '<%= config.bin %> estargz create layer.tar layer.esgz',
    '<%= config.bin %> estargz create layer.tar.gz layer.esgz --record-in record.json --format json',
  ]
  static override args = {
    in: Args.string({required: true, description: "input tar, tar.gz or tar.zst ('-' for stdin)"}),
    out: Args.string({required: true, description: 'output eStargz blob (written whole or not at all)'}),
  }
  static override flags = {
    'chunk-size': Flags.integer({summary: 'Uncompressed bytes per chunk (at most 64 MiB: what lazy readers accept).', default: DEFAULT_CHUNK_SIZE, min: 1, max: MAX_CHUNK_SIZE}),
    'compression-level': Flags.integer({summary: 'gzip level, 1 (fast) to 9 (small).', default: DEFAULT_COMPRESSION_LEVEL, min: 1, max: 9}),
    'record-in': Flags.string({summary: 'Prioritized files: JSON lines {"path": ...} (as nerdctl --estargz-record-in).'}),
    ...formatFlag,
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(EstargzCreate)
    const prioritizedFiles = flags['record-in'] ? await readRecordFile(flags['record-in']) : []
    const result = await createEstargzFile(args.in, args.out, {
      chunkSize: flags['chunk-size'],
      compressionLevel: flags['compression-level'],
      prioritizedFiles,
    })
    if (flags.format === 'json') return this.printJson(result)
    this.print(
      [
        `blob digest:        ${result.blobDigest}`,
        `blob size:          ${result.blobSize}`,
        `TOC digest:         ${result.tocDigest}`,
        `uncompressed size:  ${result.uncompressedSize}`,
        `diffID:             ${result.diffID}`,
      ].join('\n'),
    )
    if (result.missingPrioritized.length > 0) process.stderr.write(`warning: ${result.missingPrioritized.length} prioritized path(s) not in the layer: ${result.missingPrioritized.slice(0, 5).join(', ')}\n`)
  }
}
