// Image factory of the rig: small, real OCI images written without Docker.
//   - writeOciLayout(dir, image): an OCI image layout (oci-layout, index.json, blobs/sha256);
//   - writeOciIndex(dir, {manifests}): a multi-platform image index in a layout;
//   - writeOciArchive(file, image | index): the same as a tar (skopeo's `oci-archive:`);
//   - busyboxRoot()/busyboxImage(): a runnable root from Debian's busybox-static, cached;
//   - pushImage(source, ref, registry): seeds a rig registry with `skopeo copy`.
// Layers are tar streams (tar-stream) compressed with plain gzip — never eStargz, converting is
// lazyctl's job. Everything is streamed through hashes to temp files and renamed into place, so
// big layers take no memory and a half-written blob never sits under its digest. Timestamps are
// fixed, so the same spec gives the same digests on every run.
import {createCipheriv, createHash, randomUUID, type Hash} from 'node:crypto'
import {
  copyFileSync, chmodSync, chownSync, createReadStream, createWriteStream, existsSync, lstatSync, mkdirSync, readdirSync,
  readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs'
import {mkdtemp} from 'node:fs/promises'
import {basename, dirname, join, relative} from 'node:path'
import {Readable, Transform, type TransformCallback, type Writable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {createGzip} from 'node:zlib'
import {execFile, execFileSync} from 'node:child_process'
import {promisify} from 'node:util'
import tar from 'tar-stream'
import {requireCommand} from './process.js'
import type {RegistryRig} from './registry.js'

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  layerTar: 'application/vnd.oci.image.layer.v1.tar',
} as const

/** The fixed time of every entry and config, so digests are reproducible. */
export const FIXED_MTIME = new Date('2024-01-01T00:00:00Z')

/** One entry of a layer given inline. Exactly one of content/random/symlink/hardlink/dir/whiteout/opaque, or none for an empty file. */
export interface FileEntry {
  /** Path inside the image; a leading `/` is dropped (unless rawPath). `..` is kept, for hostile-layer tests. */
  path: string
  /** Write `path` into the tar header exactly as given (e.g. `/abs` or `./x`), for tests of hostile layers. */
  rawPath?: boolean
  /** Extended attributes, written as PAX `SCHILY.xattr.<name>` records (e.g. `security.capability`). */
  xattrs?: Record<string, string>
  content?: string | Buffer
  /** Deterministic pseudo-random bytes (incompressible, streamed: sizes of GiBs are fine). */
  random?: {size: number; seed?: string}
  symlink?: string
  /** A hard link to an earlier path of the same layer. */
  hardlink?: string
  dir?: boolean
  /** A whiteout of `path` (written as `.wh.<name>` beside it). */
  whiteout?: boolean
  /** Marks the directory `path` opaque (writes `<path>/.wh..wh..opq`). */
  opaque?: boolean
  /** Permission bits (incl. setuid etc.); default 0644 files, 0755 dirs, 0777 symlinks. */
  mode?: number
  uid?: number
  gid?: number
  mtime?: Date
}

interface LayerCompression {
  /** Default 'gzip' (application/vnd.oci.image.layer.v1.tar+gzip); 'none' writes a plain tar layer. */
  compression?: 'gzip' | 'none'
  /**
   * gzip level 0-9, default 6. For big random (incompressible) content, level 0 — stored deflate
   * blocks, still valid gzip — is ~10x faster: 256 MiB in 1.6 s vs 16.7 s at level 6 (load ~12).
   */
  compressionLevel?: number
}

export type LayerSpec =
  | ({files: FileEntry[]} & LayerCompression)
  /** A host directory tarred as the layer root (modes, owners, symlinks, hard links kept). */
  | ({dir: string} & LayerCompression)

export interface ImageConfigSpec {
  Env?: string[]
  Entrypoint?: string[]
  Cmd?: string[]
  WorkingDir?: string
  User?: string
  Labels?: Record<string, string>
  ExposedPorts?: Record<string, Record<string, never>>
  StopSignal?: string
}

export interface Platform {
  os: string
  architecture: string
  variant?: string
}

export interface ImageSpec {
  layers: LayerSpec[]
  config?: ImageConfigSpec
  /** Default linux/amd64. */
  platform?: Platform
  /** The `org.opencontainers.image.ref.name` in index.json; default `latest`. */
  tag?: string
  /** Manifest annotations. */
  annotations?: Record<string, string>
}

export interface IndexSpec {
  /** One image per platform; their `tag` is ignored (the index carries the tag). */
  manifests: ImageSpec[]
  /** Leave `platform` out of the index's entries (indexes written by hand or by some tools). */
  omitPlatforms?: boolean
  tag?: string
  annotations?: Record<string, string>
}

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  platform?: Platform
  annotations?: Record<string, string>
}

export interface WrittenLayer extends Descriptor {
  /** sha256 of the uncompressed tar (the config's diff_id). */
  diffId: string
  uncompressedSize: number
}

export interface WrittenImage {
  /** Descriptor of the manifest (as it appears in an index). */
  descriptor: Descriptor
  manifestDigest: string
  manifest: {schemaVersion: 2; mediaType: string; config: Descriptor; layers: Descriptor[]; annotations?: Record<string, string>}
  configDigest: string
  config: Record<string, unknown>
  layers: WrittenLayer[]
  tag: string
}

export interface WrittenIndex {
  descriptor: Descriptor
  indexDigest: string
  index: {schemaVersion: 2; mediaType: string; manifests: Descriptor[]; annotations?: Record<string, string>}
  images: WrittenImage[]
  tag: string
}

const REF_NAME = 'org.opencontainers.image.ref.name'

type EntryHeader = Partial<tar.Header> & {name: string}

/** Writes `image` into the OCI layout at `dir` (created if missing; other tags already there are kept). */
export async function writeOciLayout(dir: string, image: ImageSpec): Promise<WrittenImage> {
  initLayout(dir)
  const written = await writeImageBlobs(dir, image)
  addToIndexJson(dir, {...written.descriptor, annotations: {[REF_NAME]: written.tag}})
  return written
}

/** Writes a multi-platform image index (and its per-platform images) into the layout at `dir`. */
export async function writeOciIndex(dir: string, spec: IndexSpec): Promise<WrittenIndex> {
  if (spec.manifests.length === 0) throw new Error('an index needs at least one manifest')
  initLayout(dir)
  const images: WrittenImage[] = []
  for (const image of spec.manifests) images.push(await writeImageBlobs(dir, image))
  const index = {
    schemaVersion: 2 as const,
    mediaType: MEDIA_TYPES.index,
    manifests: images.map((image) => {
      if (!spec.omitPlatforms) return image.descriptor
      const {platform: _omitted, ...entry} = image.descriptor
      return entry
    }),
    ...(spec.annotations ? {annotations: spec.annotations} : {}),
  }
  const blob = writeJsonBlob(dir, index)
  const tag = spec.tag ?? 'latest'
  const descriptor: Descriptor = {mediaType: MEDIA_TYPES.index, digest: blob.digest, size: blob.size}
  addToIndexJson(dir, {...descriptor, annotations: {[REF_NAME]: tag}})
  return {descriptor, indexDigest: blob.digest, index, images, tag}
}

/** Writes an OCI archive (a tar of a layout, as `oci-archive:` reads it); the file appears complete or not at all. */
export async function writeOciArchive(file: string, spec: IndexSpec): Promise<WrittenIndex>
export async function writeOciArchive(file: string, spec: ImageSpec): Promise<WrittenImage>
export async function writeOciArchive(file: string, spec: ImageSpec | IndexSpec): Promise<WrittenImage | WrittenIndex> {
  const layoutDir = await mkdtemp(join(dirname(file), `.${basename(file)}.layout-`))
  const tmpFile = `${file}.tmp-${randomUUID()}`
  try {
    const written = 'manifests' in spec ? await writeOciIndex(layoutDir, spec) : await writeOciLayout(layoutDir, spec)
    const pack = tar.pack()
    const done = pipeline(pack as unknown as Readable, createWriteStream(tmpFile))
    await addTree(pack, layoutDir, {ownerOverride: {uid: 0, gid: 0}})
    pack.finalize()
    await done
    renameSync(tmpFile, file)
    return written
  } finally {
    rmSync(tmpFile, {force: true})
    rmSync(layoutDir, {recursive: true, force: true})
  }
}

function initLayout(dir: string): void {
  mkdirSync(join(dir, 'blobs', 'sha256'), {recursive: true})
  if (!existsSync(join(dir, 'oci-layout'))) writeFileSync(join(dir, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  if (!existsSync(join(dir, 'index.json'))) atomicWrite(join(dir, 'index.json'), JSON.stringify({schemaVersion: 2, mediaType: MEDIA_TYPES.index, manifests: []}))
}

/** Adds a tagged descriptor to index.json, replacing an entry with the same tag. */
function addToIndexJson(dir: string, descriptor: Descriptor): void {
  const path = join(dir, 'index.json')
  const index = JSON.parse(readFileSync(path, 'utf8')) as {manifests: Descriptor[]}
  const tag = descriptor.annotations?.[REF_NAME]
  index.manifests = index.manifests.filter((d) => d.annotations?.[REF_NAME] !== tag)
  index.manifests.push(descriptor)
  atomicWrite(path, JSON.stringify(index))
}

async function writeImageBlobs(dir: string, image: ImageSpec): Promise<WrittenImage> {
  const platform = image.platform ?? {os: 'linux', architecture: 'amd64'}
  const layers: WrittenLayer[] = []
  for (const spec of image.layers) layers.push(await writeLayerBlob(dir, spec))
  const created = FIXED_MTIME.toISOString()
  const config: Record<string, unknown> = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? {variant: platform.variant} : {}),
    config: image.config ?? {},
    rootfs: {type: 'layers', diff_ids: layers.map((l) => l.diffId)},
    history: layers.map((_, i) => ({created, created_by: `lazyctl test rig layer ${i}`})),
  }
  const configBlob = writeJsonBlob(dir, config)
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: MEDIA_TYPES.manifest,
    config: {mediaType: MEDIA_TYPES.config, digest: configBlob.digest, size: configBlob.size},
    layers: layers.map(({mediaType, digest, size}) => ({mediaType, digest, size})),
    ...(image.annotations ? {annotations: image.annotations} : {}),
  }
  const manifestBlob = writeJsonBlob(dir, manifest)
  return {
    descriptor: {mediaType: MEDIA_TYPES.manifest, digest: manifestBlob.digest, size: manifestBlob.size, platform},
    manifestDigest: manifestBlob.digest,
    manifest,
    configDigest: configBlob.digest,
    config,
    layers,
    tag: image.tag ?? 'latest',
  }
}

function writeJsonBlob(dir: string, value: unknown): {digest: string; size: number} {
  const bytes = Buffer.from(JSON.stringify(value))
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`
  const path = blobPath(dir, digest)
  if (!existsSync(path)) atomicWrite(path, bytes)
  return {digest, size: bytes.length}
}

export function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''))
}

/** Streams the layer: tar → sha256 (diff_id) → gzip → sha256 (digest) → temp file → rename. */
async function writeLayerBlob(dir: string, spec: LayerSpec): Promise<WrittenLayer> {
  const gzip = (spec.compression ?? 'gzip') === 'gzip'
  const tmp = join(dir, 'blobs', `.layer-${randomUUID()}`)
  const tarHash = new HashCounter()
  const blobHash = new HashCounter()
  const pack = tar.pack()
  // tar-stream's streams are streamx streams; Node's pipeline drives them like its own.
  const stages: (Readable | Transform | Writable)[] = [pack as unknown as Readable, tarHash]
  if (gzip) stages.push(createGzip({level: spec.compressionLevel ?? 6}), blobHash)
  stages.push(createWriteStream(tmp))
  const done = pipeline(stages as [Readable, ...Transform[], Writable])
  try {
    if ('dir' in spec) await addTree(pack, spec.dir, {})
    else for (const entry of spec.files) await addEntry(pack, entry)
    pack.finalize()
    await done
  } catch (err) {
    pack.destroy()
    await done.catch(() => undefined)
    rmSync(tmp, {force: true})
    throw err
  }
  const diffId = tarHash.digest()
  const digest = gzip ? blobHash.digest() : diffId
  const size = gzip ? blobHash.bytes : tarHash.bytes
  const path = blobPath(dir, digest)
  if (existsSync(path)) rmSync(tmp)
  else renameSync(tmp, path)
  return {mediaType: gzip ? MEDIA_TYPES.layerGzip : MEDIA_TYPES.layerTar, digest, size, diffId, uncompressedSize: tarHash.bytes}
}

/** A pass-through that hashes and counts what flows through it. */
class HashCounter extends Transform {
  private readonly hash: Hash = createHash('sha256')
  bytes = 0
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk)
    this.bytes += chunk.length
    callback(null, chunk)
  }
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`
  }
}

function normalizePath(path: string): string {
  const clean = path.replace(/^\/+/, '').replace(/\/+$/, '')
  if (!clean) throw new Error(`layer entry path ${JSON.stringify(path)} names the root`)
  return clean
}

async function addEntry(pack: tar.Pack, entry: FileEntry): Promise<void> {
  const name = entry.rawPath ? entry.path : normalizePath(entry.path)
  const pax = entry.xattrs ? Object.fromEntries(Object.entries(entry.xattrs).map(([k, v]) => [`SCHILY.xattr.${k}`, v])) : undefined
  const base = {uid: entry.uid ?? 0, gid: entry.gid ?? 0, mtime: entry.mtime ?? FIXED_MTIME, ...(pax ? {pax} : {})}
  if (entry.whiteout) {
    const wh = join(dirname(name), `.wh.${basename(name)}`).replace(/^\.\//, '')
    return addBuffer(pack, {...base, name: wh, type: 'file', mode: 0o644}, Buffer.alloc(0))
  }
  if (entry.opaque) return addBuffer(pack, {...base, name: `${name}/.wh..wh..opq`, type: 'file', mode: 0o644}, Buffer.alloc(0))
  if (entry.dir) return addBuffer(pack, {...base, name, type: 'directory', mode: entry.mode ?? 0o755}, undefined)
  if (entry.symlink !== undefined) return addBuffer(pack, {...base, name, type: 'symlink', linkname: entry.symlink, mode: entry.mode ?? 0o777}, undefined)
  if (entry.hardlink !== undefined) {
    return addBuffer(pack, {...base, name, type: 'link', linkname: normalizePath(entry.hardlink), mode: entry.mode ?? 0o644}, undefined)
  }
  const header: EntryHeader = {...base, name, type: 'file', mode: entry.mode ?? 0o644}
  if (entry.random) return addStream(pack, {...header, size: entry.random.size}, randomStream(entry.random.size, entry.random.seed ?? name))
  const content = typeof entry.content === 'string' ? Buffer.from(entry.content) : (entry.content ?? Buffer.alloc(0))
  return addBuffer(pack, header, content)
}

function addBuffer(pack: tar.Pack, header: EntryHeader, content: Buffer | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()))
  })
}

async function addStream(pack: tar.Pack, header: EntryHeader, source: Readable): Promise<void> {
  let sink!: Writable
  const finished = new Promise<void>((resolve, reject) => {
    sink = pack.entry(header, (err) => (err ? reject(err) : resolve())) as unknown as Writable
  })
  await Promise.all([pipeline(source, sink), finished])
}

/**
 * Deterministic incompressible bytes: AES-256-CTR over zeros with a key from the seed. Fast
 * (GB/s) and reproducible, so a 1 GiB test layer costs seconds and the same digest every run.
 */
export function randomStream(size: number, seed: string): Readable {
  const key = createHash('sha256').update(`lazyctl-rig:${seed}`).digest()
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  const zeros = Buffer.alloc(1 << 20)
  let left = size
  return new Readable({
    read() {
      if (left === 0) {
        this.push(null)
        return
      }
      const n = Math.min(left, zeros.length)
      left -= n
      this.push(cipher.update(zeros.subarray(0, n)))
    },
  })
}

/**
 * Tars a host directory as a layer root: entries sorted by name for reproducible digests, modes,
 * owners, symlinks kept, and hard links (same inode, nlink > 1) written as tar links to the first path.
 */
async function addTree(pack: tar.Pack, root: string, options: {ownerOverride?: {uid: number; gid: number}}): Promise<void> {
  const seenInodes = new Map<string, string>()
  const walk = async (hostDir: string): Promise<void> => {
    for (const name of readdirSync(hostDir).sort()) {
      const hostPath = join(hostDir, name)
      const entryName = relative(root, hostPath)
      const st = lstatSync(hostPath)
      const header = {
        name: entryName,
        mode: st.mode & 0o7777,
        uid: options.ownerOverride?.uid ?? st.uid,
        gid: options.ownerOverride?.gid ?? st.gid,
        mtime: FIXED_MTIME,
      }
      if (st.isDirectory()) {
        await addBuffer(pack, {...header, type: 'directory'}, undefined)
        await walk(hostPath)
      } else if (st.isSymbolicLink()) {
        await addBuffer(pack, {...header, type: 'symlink', linkname: readlinkSync(hostPath)}, undefined)
      } else if (st.isFile()) {
        const inode = `${st.dev}:${st.ino}`
        const first = st.nlink > 1 ? seenInodes.get(inode) : undefined
        if (first !== undefined) {
          await addBuffer(pack, {...header, type: 'link', linkname: first}, undefined)
        } else {
          if (st.nlink > 1) seenInodes.set(inode, entryName)
          await addStream(pack, {...header, type: 'file', size: st.size}, createReadStream(hostPath))
        }
      }
      // Sockets, fifos and devices are not image content the tests need; they are left out.
    }
  }
  await walk(root)
}

function atomicWrite(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${randomUUID()}`
  writeFileSync(tmp, data)
  renameSync(tmp, path)
}

// ---------------------------------------------------------------------------------------------
// busybox

/** Where rig caches that outlive a test run live (busybox root, debootstrap roots). */
export function rigCacheDir(): string {
  return process.env.LAZYCTL_TEST_CACHE ?? '/var/cache/lazyctl-test'
}

const BUSYBOX_BINARY = '/bin/busybox'

/**
 * A runnable root: /bin/busybox (Debian's busybox-static) with every applet as a symlink at its
 * usual place (/bin/sh, /bin/ls, /usr/bin/sha256sum ...), /etc/passwd and /etc/group with root,
 * nobody and `user` (uid/gid 1000), /tmp (1777), /root, /home/user, and mount points. Built once
 * per busybox binary into the rig cache dir (built aside, then renamed, so never half-built).
 */
export function busyboxRoot(): string {
  requireCommand('busybox', 'busybox-static')
  if (!isStaticBinary(BUSYBOX_BINARY)) throw new Error(`${BUSYBOX_BINARY} is not the static busybox: apt-get install busybox-static`)
  const hash = createHash('sha256').update(readFileSync(BUSYBOX_BINARY)).update('layout-v1').digest('hex').slice(0, 16)
  const target = join(rigCacheDir(), `busybox-${hash}`)
  if (existsSync(target)) return target
  mkdirSync(rigCacheDir(), {recursive: true})
  const tmp = `${target}.tmp-${randomUUID()}`
  try {
    buildBusyboxRoot(tmp)
    renameSync(tmp, target)
  } catch (err) {
    rmSync(tmp, {recursive: true, force: true})
    // Another test process may have won the race to build it; theirs is as good as ours.
    if (!existsSync(target)) throw new Error(`building the busybox root in ${tmp} failed`, {cause: err})
  }
  return target
}

function buildBusyboxRoot(root: string): void {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'var', 'home']) mkdirSync(join(root, d), {recursive: true})
  copyFileSync(BUSYBOX_BINARY, join(root, 'bin/busybox'))
  chmodSync(join(root, 'bin/busybox'), 0o755)
  const applets = execFileSync(BUSYBOX_BINARY, ['--list-full'], {encoding: 'utf8'}).split('\n').filter(Boolean)
  for (const applet of applets) {
    const path = join(root, applet)
    if (applet === 'bin/busybox' || existsSync(path)) continue
    mkdirSync(dirname(path), {recursive: true})
    symlinkSync('/bin/busybox', path)
  }
  writeFileSync(join(root, 'etc/passwd'), [
    'root:x:0:0:root:/root:/bin/sh',
    'user:x:1000:1000:user:/home/user:/bin/sh',
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  ].join('\n') + '\n')
  writeFileSync(join(root, 'etc/group'), ['root:x:0:', 'user:x:1000:', 'nogroup:x:65534:'].join('\n') + '\n')
  mkdirSync(join(root, 'tmp'))
  chmodSync(join(root, 'tmp'), 0o1777)
  mkdirSync(join(root, 'root'), {mode: 0o700})
  mkdirSync(join(root, 'home/user'))
  chownSync(join(root, 'home/user'), 1000, 1000)
}

/** True for a 64-bit little-endian ELF without a PT_INTERP program header (no dynamic loader). */
function isStaticBinary(path: string): boolean {
  const elf = readFileSync(path)
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) return false
  const phoff = Number(elf.readBigUInt64LE(32))
  const phentsize = elf.readUInt16LE(54)
  const phnum = elf.readUInt16LE(56)
  const PT_INTERP = 3
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === PT_INTERP) return false
  }
  return true
}

/** An image spec whose first layer is the busybox root; `Cmd` defaults to `sh`. */
export function busyboxImage(extra: Partial<ImageSpec> = {}): ImageSpec {
  return {
    ...extra,
    layers: [{dir: busyboxRoot()}, ...(extra.layers ?? [])],
    config: {Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], ...extra.config},
  }
}

// ---------------------------------------------------------------------------------------------
// skopeo

// Asynchronous on purpose: with a token-auth registry, skopeo calls the token endpoint that runs
// in this very process, so a synchronous spawn would deadlock.
const execFileAsync = promisify(execFile)

/**
 * skopeo flags to reach `registry` as source or destination: cert dir for TLS (the rig CA),
 * tls-verify=false for plain HTTP, and an auth file (never credentials on the command line).
 */
export function skopeoRegistryFlags(registry: RegistryRig, side: 'src' | 'dest'): string[] {
  const flags = registry.tls ? [`--${side}-cert-dir`, registry.certDir!] : [`--${side}-tls-verify=false`]
  if (registry.username !== undefined && registry.password !== undefined) {
    const authFile = join(registry.dir, 'skopeo-auth.json')
    if (!existsSync(authFile)) {
      const auth = Buffer.from(`${registry.username}:${registry.password}`).toString('base64')
      writeFileSync(authFile, JSON.stringify({auths: {[registry.host]: {auth}}}), {mode: 0o600})
    }
    flags.push(`--${side}-authfile`, authFile)
  }
  return flags
}

/** `oci:DIR[:TAG]` for a layout dir, `oci-archive:FILE` for an archive; transport-prefixed strings pass through. */
export function skopeoSource(source: string, tag?: string): string {
  if (/^(oci|oci-archive|docker|docker-archive|dir):/.test(source)) return source
  if (statSync(source).isDirectory()) return `oci:${source}${tag ? `:${tag}` : ''}`
  return `oci-archive:${source}${tag ? `:${tag}` : ''}`
}

/**
 * Copies an image (layout dir, archive file, or transport string) to `registry` as `ref`
 * (`repo:tag`, relative to the registry host) with skopeo, keeping digests and every platform
 * of an index. Returns the pushed manifest (or index) digest.
 */
export async function pushImage(source: string, ref: string, registry: RegistryRig, options: {sourceTag?: string} = {}): Promise<string> {
  requireCommand('skopeo', 'skopeo')
  const digestFile = join(registry.dir, `digest-${randomUUID()}`)
  try {
    await execFileAsync('skopeo', [
      '--insecure-policy', 'copy', '--quiet', '--all', '--preserve-digests', '--digestfile', digestFile,
      ...skopeoRegistryFlags(registry, 'dest'),
      skopeoSource(source, options.sourceTag), `docker://${registry.host}/${ref}`,
    ])
    return readFileSync(digestFile, 'utf8').trim()
  } catch (err) {
    const stderr = (err as {stderr?: string}).stderr ?? ''
    throw new Error(`skopeo copy to ${registry.host}/${ref} failed: ${stderr || String(err)}`, {cause: err})
  } finally {
    rmSync(digestFile, {force: true})
  }
}

/**
 * A `docker save`-style archive (docker-archive:) of `image`, tagged `ref` (e.g. `demo:latest`):
 * written as an OCI layout, then converted by skopeo (Docker media types, manifest.json, repositories).
 * skopeo records RepoTags fully qualified (`docker.io/demo:latest`), where `docker save` writes `demo:latest`.
 */
export async function writeDockerArchive(file: string, image: ImageSpec, ref: string): Promise<WrittenImage> {
  requireCommand('skopeo', 'skopeo')
  const layoutDir = await mkdtemp(join(dirname(file), `.${basename(file)}.layout-`))
  const tmpFile = `${file}.tmp-${randomUUID()}`
  try {
    const written = await writeOciLayout(layoutDir, image)
    await execFileAsync('skopeo', ['--insecure-policy', 'copy', '--quiet', `oci:${layoutDir}:${written.tag}`, `docker-archive:${tmpFile}:${ref}`])
    renameSync(tmpFile, file)
    return written
  } finally {
    rmSync(tmpFile, {force: true})
    rmSync(layoutDir, {recursive: true, force: true})
  }
}

/** `skopeo inspect --raw` of an image in `registry`: the manifest bytes as the registry serves them. */
export async function inspectRaw(ref: string, registry: RegistryRig): Promise<string> {
  requireCommand('skopeo', 'skopeo')
  const {stdout} = await execFileAsync('skopeo', ['--insecure-policy', 'inspect', '--raw',
    ...skopeoRegistryFlags(registry, 'src').map((f) => f.replace('--src-', '--')), `docker://${registry.host}/${ref}`])
  return stdout
}
