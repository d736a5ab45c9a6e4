// File-to-file conversion for the CLI: the blob is written to a temp file next to OUT and renamed
// into place only when complete, so a failed run never leaves something that looks finished.
import {createReadStream, createWriteStream} from 'node:fs'
import {rename, rm} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'
import {finished} from 'node:stream/promises'
import {LazyError} from '../cli/errors.js'
import {convertToEstargz, type EstargzResult, type EstargzWriterOptions} from './writer.js'

export async function createEstargzFile(inPath: string, outPath: string, options: EstargzWriterOptions = {}): Promise<EstargzResult> {
  const input = inPath === '-' ? process.stdin : createReadStream(inPath, {highWaterMark: 1 << 20})
  const partial = join(dirname(outPath), `.${basename(outPath)}.partial-${process.pid}`)
  const output = createWriteStream(partial, {flags: 'wx'})
  const opened = new Promise<void>((resolve, reject) => {
    output.once('open', () => resolve())
    // Stays attached: a later write error is seen by the writer (stream.errored), never uncaught.
    output.on('error', reject)
  })
  try {
    await opened.catch((err: NodeJS.ErrnoException) => {
      throw new LazyError(err.code === 'ENOENT' ? 'NOT_FOUND' : 'IO', `cannot write ${outPath}: ${err.message}`, {cause: err})
    })
    const result = await convertToEstargz(readable(input, inPath), output, {label: inPath === '-' ? 'stdin' : inPath, ...options})
    output.end()
    await finished(output)
    await rename(partial, outPath)
    return result
  } catch (err) {
    output.destroy()
    await rm(partial, {force: true})
    throw err
  }
}

async function* readable(stream: NodeJS.ReadableStream, path: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield chunk as Buffer
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new LazyError('NOT_FOUND', `${path}: no such file`, {cause: err})
    if (code === 'EISDIR') throw new LazyError('USAGE', `${path} is a directory, not a tar archive`, {cause: err})
    throw new LazyError('IO', `cannot read ${path}: ${(err as Error).message}`, {cause: err})
  }
}
