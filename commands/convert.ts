import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {imageTransferFlags, imageTransferOptions} from '../src/cli/image-transfer.js'
import {createProgress, exitOnSignals} from '../src/cli/progress.js'
import {convertImage} from '../src/convert/convert.js'
import {MAX_CHUNK_SIZE} from '../src/estargz/toc.js'

export default class Convert extends LazyCommand {
  static override summary = 'Convert an image to eStargz (lazy-pullable), from any transport to any transport.'
  static override description = [
    'SRC and DST are docker://HOST/REPO[:TAG|@DIGEST], oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE (source only),',
    "or a bare name for containerd's image store. Multi-platform indexes keep their structure; all platforms are",
    'converted unless --platform narrows them. Layers that already are valid eStargz are reused as they are.',
  ].join('\n')
  static override examples = [
    '<%= config.bin %> convert oci-archive:app.tar docker://127.0.0.1:5000/app:esgz',
    '<%= config.bin %> convert --platform linux/amd64 docker://registry.example/app:1 docker://registry.example/app:1-esgz',
  ]
  static override args = {
    source: Args.string({required: true, description: 'image to read'}),
    destination: Args.string({required: true, description: 'image to write'}),
  }
  static override flags = {
    ...imageTransferFlags('Convert'),
    estargz: Flags.boolean({summary: 'Convert layers to eStargz.', default: true, allowNo: true}),
    oci: Flags.boolean({summary: 'Use OCI media types (default: on with --estargz, as Docker manifests drop annotations).', allowNo: true}),
    'estargz-record-in': Flags.string({summary: 'Record file (JSON lines with "path") of files to prioritise for prefetch.'}),
    'estargz-compression-level': Flags.integer({summary: 'gzip level 1-9.', default: 9, min: 1, max: 9}),
    'estargz-chunk-size': Flags.integer({summary: 'eStargz chunk size in bytes (default 4 MiB, at most 64 MiB: what lazy readers accept).', min: 1, max: MAX_CHUNK_SIZE}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Convert)
    const json = flags.format === 'json'
    const progress = createProgress({quiet: flags.quiet || json})
    exitOnSignals()
    let result
    try {
      result = await convertImage(args.source, args.destination, {
        estargz: flags.estargz,
        ...(flags.oci !== undefined ? {oci: flags.oci} : {}),
        ...(flags['estargz-record-in'] ? {recordIn: flags['estargz-record-in']} : {}),
        compressionLevel: flags['estargz-compression-level'],
        ...(flags['estargz-chunk-size'] ? {chunkSize: flags['estargz-chunk-size']} : {}),
        ...imageTransferOptions(flags),
        progress,
      })
    } finally {
      await progress.close()
    }
    if (json) this.printJson(result)
    else if (flags.quiet) this.print(result.digest)
    else this.print(`converted ${result.source} → ${result.reference}\n${result.digest}`)
  }
}
