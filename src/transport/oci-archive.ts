// `oci-archive:FILE[:TAG]`: an OCI layout packed in a tar. Read in place (no extraction); written
// by staging a layout beside FILE and packing it to a temp file renamed over FILE on commit.
import {createReadStream, createWriteStream, readdirSync, renameSync, rmSync, statSync} from 'node:fs'
import {mkdtemp} from 'node:fs/promises'
import {randomBytes} from 'node:crypto'
import {basename, dirname, join, relative} from 'node:path'
import {pipeline} from 'node:stream/promises'
import type {Readable} from 'node:stream'
import tar from 'tar-stream'
import type {Descriptor} from '../oci/descriptor.js'
import {TarIndex} from './tar-index.js'
import {LayoutSink, LayoutSource, archiveFiles, stagingDirs} from './oci-layout.js'
import type {CommitResult, ImageSink, PutBlobResult} from './types.js'

export async function openOciArchiveSource(file: string, tag: string | undefined, description: string): Promise<LayoutSource> {
  const index = await TarIndex.open(file)
  return new LayoutSource(archiveFiles(index), tag, description)
}

export class OciArchiveSink implements ImageSink {
  private layout: LayoutSink | undefined
  private stageDir: string | undefined

  constructor(
    readonly file: string,
    readonly tag: string | undefined,
    readonly description: string,
  ) {}

  private async sink(): Promise<LayoutSink> {
    if (!this.layout) {
      this.stageDir = await mkdtemp(join(dirname(this.file), `.${basename(this.file)}.staging-`))
      stagingDirs.add(this.stageDir)
      this.layout = new LayoutSink(join(this.stageDir, 'layout'), this.tag, this.description)
    }
    return this.layout
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await this.sink()).hasBlob(descriptor)
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options?: {onProgress?: (n: number) => void}): Promise<PutBlobResult> {
    return (await this.sink()).putBlob(descriptor, open, options)
  }

  async putManifest(descriptor: Descriptor, bytes: Buffer): Promise<void> {
    await (await this.sink()).putManifest(descriptor, bytes)
  }

  async commit(root: Descriptor, bytes: Buffer): Promise<CommitResult> {
    const layout = await this.sink()
    await layout.commit(root, bytes)
    const tmp = `${this.file}.tmp-${randomBytes(6).toString('hex')}`
    stagingDirs.add(tmp)
    try {
      await packDirectory(layout.dir, tmp)
      renameSync(tmp, this.file)
    } finally {
      rmSync(tmp, {force: true})
      stagingDirs.delete(tmp)
      await this.abort()
    }
    return {digest: root.digest, reference: `oci-archive:${this.file}${this.tag ? `:${this.tag}` : ''}`}
  }

  async abort(): Promise<void> {
    if (this.stageDir) {
      rmSync(this.stageDir, {recursive: true, force: true})
      stagingDirs.delete(this.stageDir)
    }
    this.stageDir = undefined
    this.layout = undefined
  }
}

/** Tars a directory (regular files and dirs only, as an OCI layout has), streaming each file. */
async function packDirectory(dir: string, out: string): Promise<void> {
  const pack = tar.pack()
  const done = pipeline(pack, createWriteStream(out))
  const walk = async (d: string): Promise<void> => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name)
      const rel = relative(dir, full)
      const st = statSync(full)
      if (st.isDirectory()) {
        pack.entry({name: `${rel}/`, type: 'directory', mode: 0o755, mtime: st.mtime})
        await walk(full)
      } else if (st.isFile()) {
        await new Promise<void>((resolve, reject) => {
          const entry = pack.entry({name: rel, type: 'file', size: st.size, mode: 0o644, mtime: st.mtime}, (err) => (err ? reject(err) : resolve()))
          createReadStream(full).on('error', reject).pipe(entry)
        })
      }
    }
  }
  try {
    await walk(dir)
    pack.finalize()
    await done
  } catch (err) {
    pack.destroy(err as Error)
    await done.catch(() => undefined)
    throw err
  }
}
