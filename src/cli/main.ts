// The CLI's entry (bin/run.js): oclif finds the command through oclif.manifest.json and imports only
// that command's module. In the package this file is bundled with every command (scripts/bundle.ts).
import {execute} from '@oclif/core/execute'
import {PACKAGE_ROOT} from '../paths.js'
import {TRACING, traceMark} from './trace.js'

export async function run(): Promise<void> {
  if (TRACING) traceMark('CLI loaded')
  await execute({dir: PACKAGE_ROOT})
}
