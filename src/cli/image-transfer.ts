// What the commands that copy an image (convert, push) share: their flags, and turning those
// flags into the options of src/convert/. Each command keeps only what is its own.
import * as Flags from '@oclif/core/flags'
import type {ImageCommandOptions} from '../convert/convert.js'
import {parsePlatform} from '../oci/platform.js'
import {containerdFlags, registryFlags} from './flags.js'

/** `verb` names the command's action in the flag summaries ("Convert", "Push"). */
export function imageTransferFlags(verb: string) {
  return {
    ...containerdFlags,
    ...registryFlags,
    platform: Flags.string({summary: `${verb} only this platform (os/arch[/variant]) of a multi-platform image; repeatable.`, multiple: true, multipleNonGreedy: true}),
    'all-platforms': Flags.boolean({summary: `${verb} every platform (the default; kept for nerdctl compatibility).`, exclusive: ['platform']}),
    format: Flags.string({summary: 'Output format.', options: ['text', 'json'], default: 'text'}),
    quiet: Flags.boolean({char: 'q', summary: 'Print only the resulting digest, no progress.'}),
  }
}

interface ImageTransferFlagValues {
  address: string
  namespace: string
  platform?: string[]
  'insecure-registry'?: string[]
  'hosts-dir': string
}

export function imageTransferOptions(flags: ImageTransferFlagValues): ImageCommandOptions {
  return {
    platforms: (flags.platform ?? []).map(parsePlatform),
    insecureRegistries: flags['insecure-registry'] ?? [],
    hostsDir: flags['hosts-dir'],
    containerd: {address: flags.address, namespace: flags.namespace},
  }
}
