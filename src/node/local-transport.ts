// The machine lazyctl runs on: commands through /bin/sh, files through node:fs.
import {spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {chmod, mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {dirname, join, basename} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {Readable} from 'node:stream'
import type {ExecOptions, ExecResult, NodeTransport} from './transport.js'

export class LocalTransport implements NodeTransport {
  readonly label = 'local'
  readonly kind = 'local' as const
  readonly streamsStdin = true

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', command], {stdio: ['pipe', 'pipe', 'pipe']})
      const out: Buffer[] = []
      const err: Buffer[] = []
      child.stdout.on('data', (d: Buffer) => out.push(d))
      child.stderr.on('data', (d: Buffer) => err.push(d))
      let timer: NodeJS.Timeout | undefined
      if (options.timeoutMs) {
        timer = setTimeout(() => {
          child.kill('SIGKILL')
          reject(new Error(`command timed out after ${options.timeoutMs} ms`))
        }, options.timeoutMs)
      }
      child.on('error', (e) => {
        if (timer) clearTimeout(timer)
        reject(e)
      })
      child.on('close', (code, signal) => {
        if (timer) clearTimeout(timer)
        resolve({code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8')})
      })
      child.stdin.on('error', () => {
        // the command may exit without reading its stdin; its exit status tells the story
      })
      feedStdin(child.stdin, options.stdin)
    })
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async writeFileAtomic(path: string, data: Buffer | string, mode: number): Promise<void> {
    await mkdir(dirname(path), {recursive: true})
    const tmp = join(dirname(path), `.${basename(path)}.lazyctl-tmp-${randomBytes(4).toString('hex')}`)
    try {
      await writeFile(tmp, data, {mode})
      await chmod(tmp, mode)
      await rename(tmp, path)
    } catch (err) {
      await rm(tmp, {force: true})
      throw err
    }
  }

  async checksum(path: string): Promise<string | undefined> {
    const hash = createHash('sha256')
    try {
      await pipeline(createReadStream(path), hash)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    return hash.digest('hex')
  }

  async close(): Promise<void> {}
}

/** Writes `input` to a child's stdin and ends it; streams are piped, not buffered. */
export function feedStdin(stdin: NodeJS.WritableStream, input: ExecOptions['stdin']): void {
  if (input === undefined) {
    stdin.end()
  } else if (input instanceof Readable) {
    input.pipe(stdin)
  } else {
    stdin.end(input)
  }
}
