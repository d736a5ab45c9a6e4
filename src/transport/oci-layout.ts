// `oci:DIR[:TAG]` and the reading half of `oci-archive:`: the OCI image layout (oci-layout,
// index.json, blobs/<alg>/<hex>). Writes are staged so a failure never leaves something that
// looks complete: blobs land under a temp name and are renamed once verified, index.json is
// replaced atomically last, and a layout that did not exist is built aside and renamed into place.
import {createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {mkdtemp} from 'node:fs/promises'
import {randomBytes} from 'node:crypto'
import {basename, dirname, join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {pipeline as pipelineCb, type Readable} from 'node:stream'
import {LazyError} from '../cli/errors.js'
import {parseManifest, checkDescriptor, type Descriptor, type ImageIndex} from '../oci/descriptor.js'
import {DigestVerifier, digestAlgorithm, digestHex, short, verifyBuffer, type Digest} from '../oci/digest.js'
import {MEDIA_TYPE_OCI_INDEX} from '../oci/media-types.js'
import type {RandomAccessSource} from '../estargz/random-access.js'
import {openFileSource} from '../estargz/random-access.js'
import type {TarIndex} from './tar-index.js'
import type {CommitResult, ImageSink, ImageSource, ManifestBlob, PutBlobResult} from './types.js'

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name'
const MAX_JSON = 8 << 20

/** Read access to the files of a layout, whether a directory or a tar archive. */
export interface LayoutFiles {
  readonly label: string
  size(path: string): Promise<number | undefined>
  read(path: string): Promise<Buffer>
  stream(path: string): Readable
  range(path: string, size: number): Promise<RandomAccessSource & {close?(): Promise<void>}>
  close(): Promise<void>
}

export function directoryFiles(dir: string): LayoutFiles {
  return {
    label: dir,
    async size(path) {
      try {
        const st = statSync(join(dir, path))
        return st.isFile() ? st.size : undefined
      } catch {
        return undefined
      }
    },
    async read(path) {
      return readFileSync(join(dir, path))
    },
    stream(path) {
      return createReadStream(join(dir, path))
    },
    async range(path) {
      return openFileSource(join(dir, path))
    },
    async close() {},
  }
}

export function archiveFiles(tar: TarIndex): LayoutFiles {
  return {
    label: tar.file,
    async size(path) {
      return tar.size(path)
    },
    read: (path) => tar.read(path),
    stream: (path) => tar.stream(path),
    async range(path, size) {
      return {size, readAt: (offset: number, length: number) => tar.readAt(path, offset, length)}
    },
    close: () => tar.close(),
  }
}

export function blobPathOf(digest: Digest): string {
  return `blobs/${digestAlgorithm(digest)}/${digestHex(digest)}`
}

/** Splits `DIR[:TAG]` (the tag is what follows the last `:` when it holds no `/`). */
export function splitPathAndTag(spec: string): {path: string; tag?: string} {
  const i = spec.lastIndexOf(':')
  if (i > 0 && !spec.slice(i + 1).includes('/')) {
    const tag = spec.slice(i + 1)
    return tag ? {path: spec.slice(0, i), tag} : {path: spec.slice(0, i)}
  }
  return {path: spec}
}

export class LayoutSource implements ImageSource {
  constructor(
    private readonly files: LayoutFiles,
    private readonly tag: string | undefined,
    readonly description: string,
  ) {}

  async root(): Promise<ManifestBlob> {
    if ((await this.files.size('index.json')) === undefined) {
      throw new LazyError('NOT_FOUND', `${this.description}: no index.json (not an OCI layout)`)
    }
    const index = parseIndexJson(await this.files.read('index.json'), `${this.files.label}/index.json`)
    const entries = index.manifests
    let chosen: Descriptor | undefined
    if (this.tag !== undefined) {
      chosen = entries.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === this.tag)
      if (!chosen) {
        throw new LazyError('MANIFEST_UNKNOWN', `${this.description}: no image tagged "${this.tag}" (tags: ${tagsOf(entries) || 'none'})`)
      }
    } else if (entries.length === 1) {
      chosen = entries[0]
    } else if (entries.length === 0) {
      throw new LazyError('MANIFEST_UNKNOWN', `${this.description}: the layout holds no image`)
    } else {
      throw new LazyError('USAGE', `${this.description}: the layout holds ${entries.length} images; name one with :TAG (tags: ${tagsOf(entries) || 'none'})`)
    }
    return this.manifest(chosen!)
  }

  async manifest(descriptor: Descriptor): Promise<ManifestBlob> {
    const what = `${this.description}: manifest ${short(descriptor.digest)}`
    if (descriptor.size > MAX_JSON) throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${what}: manifest larger than ${MAX_JSON} bytes`)
    const bytes = await this.readBlob(descriptor)
    const parsed = parseManifest(bytes, descriptor.mediaType, what)
    return {descriptor: {mediaType: parsed.mediaType, digest: descriptor.digest, size: bytes.length}, bytes, parsed}
  }

  private async readBlob(descriptor: Descriptor): Promise<Buffer> {
    const path = blobPathOf(descriptor.digest)
    if ((await this.files.size(path)) === undefined) throw new LazyError('BLOB_UNKNOWN', `${this.description}: missing blob ${short(descriptor.digest)}`)
    const bytes = await this.files.read(path)
    verifyBuffer(bytes, descriptor.digest, `${this.description}: blob ${short(descriptor.digest)}`)
    return bytes
  }

  async blob(descriptor: Descriptor): Promise<Readable> {
    const path = blobPathOf(descriptor.digest)
    const size = await this.files.size(path)
    if (size === undefined) throw new LazyError('BLOB_UNKNOWN', `${this.description}: missing blob ${short(descriptor.digest)}`)
    const verifier = new DigestVerifier(descriptor.digest, {size: descriptor.size, what: `${this.description}: blob ${short(descriptor.digest)}`})
    pipelineCb(this.files.stream(path), verifier, () => undefined)
    return verifier
  }

  async blobRange(descriptor: Descriptor) {
    const path = blobPathOf(descriptor.digest)
    const size = await this.files.size(path)
    if (size === undefined) throw new LazyError('BLOB_UNKNOWN', `${this.description}: missing blob ${short(descriptor.digest)}`)
    return this.files.range(path, size)
  }

  async close(): Promise<void> {
    await this.files.close()
  }
}

function tagsOf(entries: Descriptor[]): string {
  return entries.map((d) => d.annotations?.[REF_NAME_ANNOTATION]).filter(Boolean).join(', ')
}

function parseIndexJson(bytes: Buffer, where: string): ImageIndex {
  let json: ImageIndex
  try {
    json = JSON.parse(bytes.toString('utf8')) as ImageIndex
  } catch {
    throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${where}: not valid JSON`)
  }
  if (!json || !Array.isArray(json.manifests)) throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${where}: no manifests list`)
  json.manifests.forEach((d, i) => checkDescriptor(d, `${where}: manifests[${i}]`))
  return json
}

/**
 * Writes into an OCI layout directory. When `dir` does not exist yet, everything is staged in a
 * sibling temp directory renamed into place on commit; otherwise blobs are added in place
 * (verified, then renamed to their content address) and index.json is replaced last.
 */
export class LayoutSink implements ImageSink {
  private workDir: string | undefined
  private fresh = false
  private readonly tmpFiles = new Set<string>()

  constructor(
    readonly dir: string,
    readonly tag: string | undefined,
    readonly description: string,
  ) {}

  private async work(): Promise<string> {
    if (this.workDir) return this.workDir
    if (existsSync(this.dir)) {
      if (!statSync(this.dir).isDirectory()) throw new LazyError('USAGE', `${this.description}: ${this.dir} exists and is not a directory`)
      const hasLayout = existsSync(join(this.dir, 'oci-layout'))
      const empty = !hasLayout && readdirSync(this.dir).length === 0
      if (!hasLayout && !empty) throw new LazyError('USAGE', `${this.description}: ${this.dir} is not an OCI layout and not empty`)
      this.workDir = this.dir
      if (empty) initLayout(this.dir)
    } else {
      mkdirSync(dirname(this.dir), {recursive: true})
      this.workDir = await mkdtemp(join(dirname(this.dir), `.${basename(this.dir)}.partial-`))
      stagingDirs.add(this.workDir)
      this.fresh = true
      initLayout(this.workDir)
    }
    return this.workDir
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    const dir = await this.work()
    try {
      return statSync(join(dir, blobPathOf(descriptor.digest))).size === descriptor.size
    } catch {
      return false
    }
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options: {onProgress?: (n: number) => void} = {}): Promise<PutBlobResult> {
    if (await this.hasBlob(descriptor)) return 'exists'
    const dir = await this.work()
    const final = join(dir, blobPathOf(descriptor.digest))
    mkdirSync(dirname(final), {recursive: true})
    const tmp = `${final}.tmp-${randomBytes(6).toString('hex')}`
    this.tmpFiles.add(tmp)
    try {
      const verifier = new DigestVerifier(descriptor.digest, {size: descriptor.size, what: `blob ${short(descriptor.digest)} for ${this.description}`})
      const source = await open()
      if (options.onProgress) {
        const report = options.onProgress
        verifier.on('data', (c: Buffer) => report(c.length))
      }
      await pipeline(source, verifier, createWriteStream(tmp))
      renameSync(tmp, final)
    } finally {
      rmSync(tmp, {force: true})
      this.tmpFiles.delete(tmp)
    }
    return 'uploaded'
  }

  async putManifest(descriptor: Descriptor, bytes: Buffer): Promise<void> {
    verifyBuffer(bytes, descriptor.digest, `manifest ${short(descriptor.digest)}`)
    const dir = await this.work()
    const final = join(dir, blobPathOf(descriptor.digest))
    if (existsSync(final)) return
    mkdirSync(dirname(final), {recursive: true})
    atomicWrite(final, bytes)
  }

  async commit(root: Descriptor, bytes: Buffer): Promise<CommitResult> {
    await this.putManifest(root, bytes)
    const dir = await this.work()
    const indexPath = join(dir, 'index.json')
    const index = parseIndexJson(readFileSync(indexPath), indexPath)
    const entry: Descriptor = {mediaType: root.mediaType, digest: root.digest, size: root.size}
    if (root.platform) entry.platform = root.platform
    if (this.tag !== undefined) {
      entry.annotations = {[REF_NAME_ANNOTATION]: this.tag}
      index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== this.tag)
    } else {
      index.manifests = index.manifests.filter((d) => d.digest !== root.digest || d.annotations?.[REF_NAME_ANNOTATION] !== undefined)
    }
    index.manifests.push(entry)
    atomicWrite(indexPath, Buffer.from(JSON.stringify(Object.assign({schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX}, index, {schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX}))))
    if (this.fresh) {
      renameSync(dir, this.dir)
      stagingDirs.delete(dir)
      this.workDir = this.dir
      this.fresh = false
    }
    return {digest: root.digest, reference: `oci:${this.dir}${this.tag ? `:${this.tag}` : ''}`}
  }

  async abort(): Promise<void> {
    for (const f of this.tmpFiles) rmSync(f, {force: true})
    if (this.fresh && this.workDir) {
      rmSync(this.workDir, {recursive: true, force: true})
      stagingDirs.delete(this.workDir)
    }
    this.workDir = undefined
  }

  /** The staging directory (for the archive sink, which tars it). */
  async stagingDir(): Promise<string> {
    return this.work()
  }
}

function initLayout(dir: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), {recursive: true})
  if (!existsSync(join(dir, 'oci-layout'))) writeFileSync(join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  if (!existsSync(join(dir, 'index.json'))) writeFileSync(join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: []}))
}

/** Staging directories not yet renamed into place, removed if the process exits first. */
export const stagingDirs = new Set<string>()
process.once('exit', () => {
  for (const dir of stagingDirs) rmSync(dir, {recursive: true, force: true})
})

export function atomicWrite(path: string, data: Buffer | string): void {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  try {
    writeFileSync(tmp, data)
    renameSync(tmp, path)
  } finally {
    rmSync(tmp, {force: true})
  }
}

