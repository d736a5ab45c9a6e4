// `oci-archive:FILE[:TAG]`: an OCI layout packed in a tar. Read in place (no extraction); written
// by staging a layout beside FILE and packing it to a temp file renamed over FILE on commit. An
// existing archive keeps its other tags and blobs (as an `oci:` layout does); an existing file that
// is not an OCI archive is never replaced.
import {createReadStream, createWriteStream, existsSync, readdirSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {mkdtemp} from 'node:fs/promises'
import {randomBytes} from 'node:crypto'
import {basename, dirname, join, relative} from 'node:path'
import {pipeline} from 'node:stream/promises'
import type {Readable} from 'node:stream'
import tar from 'tar-stream'
import {LazyError} from '../cli/errors.js'
import type {Descriptor} from '../oci/descriptor.js'
import type {Digest} from '../oci/digest.js'
import {TarIndex} from './tar-index.js'
import {LayoutSink, LayoutSource, archiveFiles, blobPathOf, stagingDirs} from './oci-layout.js'
import type {CommitResult, ImageSink, PutBlobResult} from './types.js'

export async function openOciArchiveSource(file: string, tag: string | undefined, description: string): Promise<LayoutSource> {
  const index = await TarIndex.open(file)
  return new LayoutSource(archiveFiles(index), tag, description)
}

/**
 * The archive already at `file`, to be updated, or undefined when there is none (or an empty file).
 * Anything else there is refused: replacing it would lose it.
 */
async function existingArchive(file: string, description: string): Promise<TarIndex | undefined> {
  let size: number
  try {
    const st = statSync(file)
    if (!st.isFile()) throw new LazyError('USAGE', `${description}: ${file} exists and is not a file`)
    size = st.size
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  if (size === 0) return undefined
  const notAnArchive = () => new LazyError('USAGE', `${description}: ${file} exists and is not an OCI archive; refusing to replace it`, {hint: 'name another file, or remove this one first'})
  let archive: TarIndex
  try {
    archive = await TarIndex.open(file)
  } catch (err) {
    if (err instanceof LazyError && err.code === 'NOT_A_TAR') throw notAnArchive()
    throw err
  }
  if (!archive.has('oci-layout') || !archive.has('index.json')) {
    await archive.close()
    throw notAnArchive()
  }
  return archive
}

export class OciArchiveSink implements ImageSink {
  private layout: Promise<LayoutSink> | undefined
  private stageDir: string | undefined
  private existing: TarIndex | undefined

  constructor(
    readonly file: string,
    readonly tag: string | undefined,
    readonly description: string,
  ) {}

  /** Set up once on first use; concurrent callers (layers in parallel) share it. */
  private sink(): Promise<LayoutSink> {
    this.layout ??= this.open()
    return this.layout
  }

  private async open(): Promise<LayoutSink> {
    this.existing = await existingArchive(this.file, this.description)
    this.stageDir = await mkdtemp(join(dirname(this.file), `.${basename(this.file)}.staging-`))
    stagingDirs.add(this.stageDir)
    const layout = new LayoutSink(join(this.stageDir, 'layout'), this.tag, this.description)
    // The archive's index, so that the commit replaces only this tag; its blobs are copied
    // straight from it into the new archive (packDirectory), never staged.
    if (this.existing) writeFileSync(join(await layout.stagingDir(), 'index.json'), await this.existing.read('index.json'))
    return layout
  }

  private inExisting(digest: Digest, size: number): boolean {
    return this.existing?.size(blobPathOf(digest)) === size
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await this.sink()).hasBlob(descriptor) || this.inExisting(descriptor.digest, descriptor.size)
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options?: {onProgress?: (n: number) => void}): Promise<PutBlobResult> {
    const layout = await this.sink()
    if (this.inExisting(descriptor.digest, descriptor.size)) return 'exists'
    return layout.putBlob(descriptor, open, options)
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
      await packDirectory(await layout.stagingDir(), tmp, this.existing)
      renameSync(tmp, this.file)
    } finally {
      rmSync(tmp, {force: true})
      stagingDirs.delete(tmp)
      await this.abort()
    }
    return {digest: root.digest, reference: `oci-archive:${this.file}${this.tag ? `:${this.tag}` : ''}`}
  }

  async abort(): Promise<void> {
    await this.existing?.close()
    this.existing = undefined
    if (this.stageDir) {
      rmSync(this.stageDir, {recursive: true, force: true})
      stagingDirs.delete(this.stageDir)
    }
    this.stageDir = undefined
    this.layout = undefined
  }
}

/**
 * Tars a directory (regular files and dirs only, as an OCI layout has), streaming each file, then
 * the blobs of `earlier` (the archive being updated) that the directory does not have.
 */
async function packDirectory(dir: string, out: string, earlier?: TarIndex): Promise<void> {
  const pack = tar.pack()
  const done = pipeline(pack, createWriteStream(out))
  const copy = (name: string, size: number, from: Readable, mtime?: Date) =>
    new Promise<void>((resolve, reject) => {
      const entry = pack.entry({name, type: 'file', size, mode: 0o644, ...(mtime ? {mtime} : {})}, (err) => (err ? reject(err) : resolve()))
      from.on('error', reject).pipe(entry)
    })
  const walk = async (d: string): Promise<void> => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name)
      const rel = relative(dir, full)
      const st = statSync(full)
      if (st.isDirectory()) {
        pack.entry({name: `${rel}/`, type: 'directory', mode: 0o755, mtime: st.mtime})
        await walk(full)
      } else if (st.isFile()) {
        await copy(rel, st.size, createReadStream(full), st.mtime)
      }
    }
  }
  try {
    await walk(dir)
    for (const [name, member] of earlier?.members ?? []) {
      if (name.startsWith('blobs/') && !existsSync(join(dir, name))) await copy(name, member.size, earlier!.stream(name))
    }
    pack.finalize()
    await done
  } catch (err) {
    pack.destroy(err as Error)
    await done.catch(() => undefined)
    throw err
  }
}
