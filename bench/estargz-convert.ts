// Benchmark: eStargz conversion by lazyctl and by `ctr-remote image convert --estargz --oci`,
// side by side on the same images, same gzip level and chunk size.
//   python3: one layer, a Debian bookworm minbase + python3 root (debootstrap, cached);
//   big:     that layer plus one of large random-text files (base64 lines; ~1.1 GB of tar in all).
// ctr-remote converts inside containerd's content store (a private containerd of the test rig);
// lazyctl converts the very same gzip layer blobs (read from that content store) into files, all
// layers of an image at once in one process. Each run is measured with /usr/bin/time -v (wall
// time, peak RSS, CPU share); the load average is recorded around each run because the machine is
// shared. Prints a Markdown table for bench/RESULTS.md and writes dist/bench/estargz-convert.json.
//
// Usage: node dist/bench/estargz-convert.js [--text-mib N] [--only python3|big]
import {spawnSync} from 'node:child_process'
import {createCipheriv, createHash} from 'node:crypto'
import {createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {mkdtemp} from 'node:fs/promises'
import {cpus, loadavg, tmpdir} from 'node:os'
import {join} from 'node:path'
import {once} from 'node:events'
import {startContainerd} from '../test/rig/containerd.js'
import {debootstrapRoot} from '../test/rig/debootstrap.js'
import {rigCacheDir, writeOciArchive, type ImageSpec, type WrittenImage} from '../test/rig/images.js'
import {benchOption} from './lib/args.js'

const LEVEL = 9
const CHUNK_SIZE = 4 << 20
const flag = benchOption
const TEXT_MIB = Number(flag('--text-mib') ?? 840)
const ONLY = flag('--only')

interface Measured {
  seconds: number
  /** User + system CPU seconds: what the work cost, whatever share of the CPU it got. */
  cpuSeconds: number
  maxRssKiB: number
  cpuPercent: number
  loadBefore: number
  loadAfter: number
}

/**
 * Large files of random text: base64 lines of pseudo-random bytes (what `base64 /dev/urandom`
 * prints), deterministic from a seed so the image is the same on every run.
 */
async function writeTextFiles(dir: string, totalMiB: number): Promise<void> {
  const files = Math.max(1, Math.round(totalMiB / 105))
  for (let f = 0; f < files; f++) {
    const size = Math.round((totalMiB * 1024 * 1024) / files)
    const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(`bench-text-${f}`).digest(), Buffer.alloc(16))
    const out = createWriteStream(join(dir, `text-${f}.txt`))
    let written = 0
    while (written < size) {
      const b64 = cipher.update(Buffer.alloc(57 * 1024)).toString('base64')
      let text = ''
      for (let i = 0; i < b64.length; i += 76) text += `${b64.slice(i, i + 76)}\n`
      const piece = Buffer.from(text).subarray(0, size - written)
      written += piece.length
      if (!out.write(piece)) await once(out, 'drain')
    }
    out.end()
    await once(out, 'finish')
  }
}

async function images(): Promise<{name: string; archive: string; written: WrittenImage}[]> {
  const root = await debootstrapRoot({include: ['python3']})
  const cache = join(rigCacheDir(), `bench-estargz-v2-${TEXT_MIB}`)
  mkdirSync(cache, {recursive: true})
  const textDir = join(cache, 'text')
  if (!existsSync(join(cache, 'text.done'))) {
    rmSync(textDir, {recursive: true, force: true})
    mkdirSync(textDir)
    await writeTextFiles(textDir, TEXT_MIB)
    writeFileSync(join(cache, 'text.done'), '')
  }
  const specs: {name: string; spec: ImageSpec}[] = [
    {name: 'python3', spec: {layers: [{dir: root}], tag: 'python3'}},
    {name: 'big', spec: {layers: [{dir: root}, {dir: textDir}], tag: 'big'}},
  ]
  const out = []
  for (const {name, spec} of specs) {
    if (ONLY && ONLY !== name) continue
    const archive = join(cache, `${name}.oci.tar`)
    const meta = `${archive}.json`
    if (!existsSync(meta)) {
      const written = await writeOciArchive(archive, spec)
      writeFileSync(`${meta}.tmp`, JSON.stringify(written))
      renameSync(`${meta}.tmp`, meta)
    }
    out.push({name, archive, written: JSON.parse(readFileSync(meta, 'utf8')) as WrittenImage})
  }
  return out
}

function timed(command: string, commandArgs: string[]): {measured: Measured; stdout: string} {
  const loadBefore = loadavg()[0]!
  const run = spawnSync('/usr/bin/time', ['-v', command, ...commandArgs], {encoding: 'utf8', maxBuffer: 64 << 20})
  const loadAfter = loadavg()[0]!
  if (run.status !== 0) throw new Error(`${command} failed (${run.status}): ${run.stderr.slice(-2000)}`)
  const field = (re: RegExp): string => re.exec(run.stderr)?.[1] ?? 'NaN'
  const wall = field(/Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)/).split(':').map(Number)
  const seconds = wall.reduce((acc, part) => acc * 60 + part, 0)
  return {
    measured: {seconds, cpuSeconds: Number(field(/User time \(seconds\): ([\d.]+)/)) + Number(field(/System time \(seconds\): ([\d.]+)/)), maxRssKiB: Number(field(/Maximum resident set size \(kbytes\): (\d+)/)), cpuPercent: Number(field(/Percent of CPU this job got: (\d+)%/)), loadBefore, loadAfter},
    stdout: run.stdout,
  }
}

const mb = (bytes: number): string => (bytes / 1e6).toFixed(1)

async function main(): Promise<void> {
  const prepared = await images()
  const rig = await startContainerd()
  const work = await mkdtemp(join(tmpdir(), 'lazyctl-bench-estargz-'))
  const rows: string[] = []
  const json: unknown[] = []
  try {
    for (const {name, archive, written} of prepared) {
      rig.ctr(['images', 'import', '--no-unpack', '--index-name', `bench/${name}:src`, archive])
      const tarBytes = written.layers.reduce((n, l) => n + l.uncompressedSize, 0)
      const blobs = written.layers.map((l) => join(rig.root, 'io.containerd.content.v1.content/blobs/sha256', l.digest.replace('sha256:', '')))
      // Alternate the order so neither tool always runs first (page cache, load swings).
      const ctrRemote = (): Measured =>
        timed('ctr-remote', ['-a', rig.address, '-n', rig.namespace, 'image', 'convert', '--oci', '--estargz', '--estargz-compression-level', String(LEVEL), '--estargz-chunk-size', String(CHUNK_SIZE), `bench/${name}:src`, `bench/${name}:esgz`]).measured
      const lazyctl = (): {measured: Measured; results: {blobSize: number}[]} => {
        const out = join(work, name)
        rmSync(out, {recursive: true, force: true})
        mkdirSync(out)
        const run = timed('node', ['dist/bench/estargz-convert-layers.js', out, String(LEVEL), String(CHUNK_SIZE), ...blobs])
        return {measured: run.measured, results: JSON.parse(run.stdout)}
      }
      const lazy = lazyctl()
      const reference = ctrRemote()
      const esgzManifest = rig.ctr(['images', 'ls']).split('\n').find((l) => l.startsWith(`bench/${name}:esgz `))!.split(/\s+/)[2]!
      const esgzSize = esgzBlobBytes(rig.root, esgzManifest)
      rig.ctr(['images', 'rm', `bench/${name}:esgz`, `bench/${name}:src`])
      const lazySize = lazy.results.reduce((n, r) => n + r.blobSize, 0)
      const ratio = reference.seconds / lazy.measured.seconds
      const cpuRatio = reference.cpuSeconds / lazy.measured.cpuSeconds
      rows.push(
        `| ${name} (${written.layers.length} layer${written.layers.length > 1 ? 's' : ''}, ${mb(tarBytes)} MB tar) | ctr-remote | ${reference.seconds.toFixed(1)} s | ${mb(tarBytes / reference.seconds)} MB/s | ${(reference.maxRssKiB / 1024).toFixed(0)} MiB | ${reference.cpuSeconds.toFixed(1)} s (${reference.cpuPercent}%) | ${mb(esgzSize)} MB | ${reference.loadBefore.toFixed(1)} → ${reference.loadAfter.toFixed(1)} |`,
        `| | lazyctl | ${lazy.measured.seconds.toFixed(1)} s | ${mb(tarBytes / lazy.measured.seconds)} MB/s | ${(lazy.measured.maxRssKiB / 1024).toFixed(0)} MiB | ${lazy.measured.cpuSeconds.toFixed(1)} s (${lazy.measured.cpuPercent}%) | ${mb(lazySize)} MB | ${lazy.measured.loadBefore.toFixed(1)} → ${lazy.measured.loadAfter.toFixed(1)} |`,
        `| | **ratio** | **${ratio.toFixed(2)}x faster** | | | **${cpuRatio.toFixed(2)}x less CPU** | | |`,
      )
      json.push({name, tarBytes, layers: written.layers.length, ctrRemote: {...reference, blobBytes: esgzSize}, lazyctl: {...lazy.measured, blobBytes: lazySize}, speedup: ratio, cpuRatio})
    }
  } finally {
    await rig.stop()
    rmSync(work, {recursive: true, force: true})
  }
  const table = [
    `gzip level ${LEVEL}, chunk ${CHUNK_SIZE >> 20} MiB, ${cpus().length} cores, ${new Date().toISOString()}`,
    '',
    '| image | tool | wall time | throughput (tar) | peak RSS | CPU time (share) | eStargz bytes | load avg (1 min) before → after |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n')
  mkdirSync('dist/bench', {recursive: true})
  writeFileSync('dist/bench/estargz-convert.json', JSON.stringify(json, null, 2) + '\n')
  process.stdout.write(table + '\n')
}

/** Total size of the layer blobs of the (single-platform) image whose manifest or index is `digest`. */
function esgzBlobBytes(root: string, digest: string): number {
  const blob = (d: string): {manifests?: {digest: string}[]; layers?: {size: number}[]} =>
    JSON.parse(readFileSync(join(root, 'io.containerd.content.v1.content/blobs/sha256', d.replace('sha256:', '')), 'utf8'))
  let doc = blob(digest)
  if (doc.manifests) doc = blob(doc.manifests[0]!.digest)
  return (doc.layers ?? []).reduce((n, l) => n + l.size, 0)
}

await main()
