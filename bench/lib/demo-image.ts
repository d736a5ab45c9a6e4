// The demo image of scripts/demo and bench/startup: a Debian root (bookworm minbase + python3, from
// the rig's cached debootstrap) plus twenty 50 MiB files of random text in a second layer — the
// shape of a model-serving image, where a few small files start the server and big weight files
// are read later, if at all. The text is base64 lines of a seeded AES-CTR stream: printable,
// incompressible beyond base64's 6 bits per byte, so gzip keeps about 75% of it, as with real data.
//
// Everything is deterministic, so it is built once and cached under /var/cache/lazyctl-demo
// (env LAZYCTL_DEMO_CACHE): the text files (kept: the benchmark reads one from local disk to
// compare with the FUSE mount) and the gzip OCI archive. Each piece is written beside its place
// and renamed, so an interrupted build never leaves a half-written file that a later run trusts.
import {createHash, randomUUID} from 'node:crypto'
import {createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {Transform, type TransformCallback} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {debootstrapRoot} from '../../test/rig/debootstrap.js'
import {randomStream, writeOciArchive, type WrittenImage} from '../../test/rig/images.js'

export const DEMO_FILE_COUNT = 20
export const DEMO_FILE_BYTES = 50 << 20
/** Where the text files sit in the image. */
export const DEMO_MODELS_DIR = '/srv/models'
/** The small files the demo's command reads: what a server reads at start, before any weights. */
export const DEMO_COMMAND = ['sh', '-c', 'cat /etc/debian_version /srv/models/manifest.json']
const LAYOUT_VERSION = 'v1'

export interface DemoImage {
  /** The OCI archive (gzip layers), tag `demo`: `oci-archive:<archive>`. */
  archive: string
  /** Host dir whose `srv/models/model-NN.txt` are byte for byte the image's text files. */
  modelsLayerDir: string
  /** Host path of one text file (for local-disk read comparisons) and its path in the image. */
  sampleFile: {host: string; image: string}
  manifestDigest: string
  /** Compressed bytes of all layers of the gzip image (what a full pull downloads, plus JSON). */
  layersBytes: number
  /** Uncompressed bytes of all layers. */
  uncompressedBytes: number
}

export interface BuildOptions {
  cacheDir?: string
  /** Progress lines ("writing text files"), for the demo's output. */
  onProgress?: (line: string) => void
}

export function demoCacheDir(): string {
  return process.env.LAZYCTL_DEMO_CACHE ?? '/var/cache/lazyctl-demo'
}

/** The demo image, built on first use and cached. */
export async function buildDemoImage(options: BuildOptions = {}): Promise<DemoImage> {
  const cache = options.cacheDir ?? demoCacheDir()
  const say = options.onProgress ?? (() => undefined)
  mkdirSync(cache, {recursive: true})
  const base = await debootstrapRoot({include: ['python3']})
  const modelsLayerDir = join(cache, `models-${LAYOUT_VERSION}`)
  if (!existsSync(modelsLayerDir)) {
    say(`writing ${DEMO_FILE_COUNT} text files of ${DEMO_FILE_BYTES >> 20} MiB (once; cached in ${cache})`)
    await writeModelsLayerDir(modelsLayerDir)
  }
  const archive = join(cache, `demo-${LAYOUT_VERSION}.tar`)
  const metaFile = `${archive}.json`
  if (!existsSync(archive) || !existsSync(metaFile)) {
    say('writing the OCI archive (gzip layers; once)')
    const written = (await writeOciArchive(archive, {
      layers: [{dir: base}, {dir: modelsLayerDir}],
      config: {Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'], WorkingDir: '/'},
      tag: 'demo',
    })) as WrittenImage
    atomicWrite(metaFile, JSON.stringify(describe(written), null, 2) + '\n')
  }
  const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as ReturnType<typeof describe>
  return {
    archive,
    modelsLayerDir,
    sampleFile: {host: join(modelsLayerDir, 'srv/models/model-07.txt'), image: `${DEMO_MODELS_DIR}/model-07.txt`},
    ...meta,
  }
}

/** The python3 image of the benchmark: the same Debian root as one layer. Cached beside the demo. */
export async function buildPythonImage(options: BuildOptions = {}): Promise<{archive: string; manifestDigest: string; layersBytes: number; uncompressedBytes: number}> {
  const cache = options.cacheDir ?? demoCacheDir()
  mkdirSync(cache, {recursive: true})
  const base = await debootstrapRoot({include: ['python3']})
  const archive = join(cache, `python3-${LAYOUT_VERSION}.tar`)
  const metaFile = `${archive}.json`
  if (!existsSync(archive) || !existsSync(metaFile)) {
    options.onProgress?.('writing the python3 OCI archive (once)')
    const written = (await writeOciArchive(archive, {
      layers: [{dir: base}],
      config: {Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['python3'], WorkingDir: '/'},
      tag: 'python3',
    })) as WrittenImage
    atomicWrite(metaFile, JSON.stringify(describe(written), null, 2) + '\n')
  }
  return {archive, ...(JSON.parse(readFileSync(metaFile, 'utf8')) as ReturnType<typeof describe>)}
}

function describe(written: WrittenImage): {manifestDigest: string; layersBytes: number; uncompressedBytes: number} {
  return {
    manifestDigest: written.manifestDigest,
    layersBytes: written.layers.reduce((sum, l) => sum + l.size, 0),
    uncompressedBytes: written.layers.reduce((sum, l) => sum + l.uncompressedSize, 0),
  }
}

async function writeModelsLayerDir(target: string): Promise<void> {
  const tmp = `${target}.tmp-${randomUUID()}`
  try {
    const models = join(tmp, 'srv/models')
    mkdirSync(models, {recursive: true, mode: 0o755})
    const files: {name: string; bytes: number; sha256: string}[] = []
    for (let i = 0; i < DEMO_FILE_COUNT; i++) {
      const name = `model-${String(i).padStart(2, '0')}.txt`
      const hash = createHash('sha256')
      await pipeline(randomStream(Math.ceil(DEMO_FILE_BYTES / 77) * 57, `lazyctl-demo:${name}`), new Base64Lines(DEMO_FILE_BYTES, hash), createWriteStream(join(models, name)))
      files.push({name, bytes: statSync(join(models, name)).size, sha256: hash.digest('hex')})
    }
    writeFileSync(join(models, 'manifest.json'), JSON.stringify({model: 'lazyctl-demo', files: files.length, bytes: files.reduce((s, f) => s + f.bytes, 0)}) + '\n')
    writeFileSync(join(models, 'SHA256SUMS'), files.map((f) => `${f.sha256}  ${f.name}\n`).join(''))
    renameSync(tmp, target)
  } finally {
    rmSync(tmp, {recursive: true, force: true})
  }
}

/** Random bytes → base64 lines of 76 characters (57 input bytes each), cut at exactly `limit` bytes. */
class Base64Lines extends Transform {
  private pending: Buffer = Buffer.alloc(0)
  private left: number

  constructor(limit: number, private readonly hash: ReturnType<typeof createHash>) {
    super()
    this.left = limit
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk
    const whole = data.length - (data.length % 57)
    this.pending = data.subarray(whole)
    const lines: string[] = []
    for (let off = 0; off < whole; off += 57) lines.push(data.toString('base64', off, off + 57))
    this.pushLimited(Buffer.from(lines.join('\n') + (lines.length ? '\n' : '')))
    callback()
  }

  override _flush(callback: TransformCallback): void {
    if (this.pending.length) this.pushLimited(Buffer.from(this.pending.toString('base64') + '\n'))
    callback()
  }

  private pushLimited(bytes: Buffer): void {
    const out = bytes.subarray(0, Math.max(0, this.left))
    this.left -= out.length
    if (out.length) {
      this.hash.update(out)
      this.push(out)
    }
  }
}

function atomicWrite(path: string, data: string): void {
  const tmp = `${path}.tmp-${randomUUID()}`
  writeFileSync(tmp, data)
  renameSync(tmp, path)
}

/**
 * A key for eStargz conversions cached across runs (the demo and the benchmark share them): it
 * covers what was converted and how (`description`, e.g. the source and flags, and `extra`, e.g. a
 * record file's text) and lazyctl's converter code (dist/src/estargz, dist/src/convert), so a
 * changed writer never reuses an old blob.
 */
export function converterKey(packageRoot: string, description: string, extra: string | Buffer = ''): string {
  const code = createHash('sha256')
  for (const dir of ['dist/src/estargz', 'dist/src/convert']) {
    for (const file of readdirSync(join(packageRoot, dir)).filter((f) => f.endsWith('.js')).sort()) code.update(file).update(readFileSync(join(packageRoot, dir, file)))
  }
  return createHash('sha256').update(description).update(extra).update(code.digest()).digest('hex').slice(0, 16)
}

/** The OCI layout where the eStargz conversion with `key` is cached, and the file holding its conversion time. */
export function convertedLayout(name: string, key: string): {layout: string; timeFile: string} {
  const layout = join(demoCacheDir(), `esgz-${name}-${key}`)
  return {layout, timeFile: `${layout}.convert-ms`}
}

/** Removes cached conversions of `name` other than the one with `keepKey` (each demo one is ~1 GB). */
export function pruneConvertedLayouts(name: string, keepKey: string): void {
  const keep = `esgz-${name}-${keepKey}`
  for (const entry of readdirSync(demoCacheDir())) {
    const m = /^esgz-(.+)-([0-9a-f]{16})(\.convert-ms)?$/.exec(entry)
    if (m && m[1] === name && !entry.startsWith(keep)) rmSync(join(demoCacheDir(), entry), {recursive: true, force: true})
  }
}
