// Real eStargz blobs for the lazyfs tests: a directory tree written on disk (owners, modes,
// devices, hardlinks, xattrs), archived by GNU tar, converted by lazyctl's eStargz writer.
import {createReadStream, createWriteStream, mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {finished} from 'node:stream/promises'
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {convertToEstargz, type EstargzResult, type EstargzWriterOptions} from '../../src/estargz/writer.js'
import {writePlainLayer} from './plain-layer.js'
import type {SyntheticFile} from './synthetic-layer.js'

const run = promisify(execFile)

export interface EstargzFixture {
  /** The source tree, as extracted. */
  dir: string
  tar: string
  blob: string
  result: EstargzResult
}

export async function buildEstargzFixture(work: string, name: string, files: SyntheticFile[], options: EstargzWriterOptions = {}): Promise<EstargzFixture> {
  const dir = join(work, `${name}-src`)
  mkdirSync(dir)
  await writePlainLayer(dir, files)
  const tar = join(work, `${name}.tar`)
  // GNU tar in POSIX format records xattrs as SCHILY.xattr.* PAX records, as image builders do.
  await run('tar', ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner', '--sort=name', '-C', dir, '-cf', tar, '.'])
  const blob = join(work, `${name}.esgz`)
  const output = createWriteStream(blob)
  const result = await convertToEstargz(createReadStream(tar), output, {compressionLevel: 1, ...options})
  output.end()
  await finished(output)
  return {dir, tar, blob, result}
}
