// Benchmark: CPU time of opening one eStargz layer the way the snapshotter does at Prepare,
// without the network: footer → TOC inflate → digest check → parse/validate → reader tree
// (`openEstargz`), then the FUSE tree lazyfs builds from it (`buildFsTree` + the chunk list).
// The layer is the rig's cached Debian root (test/rig/debootstrap.ts; bookworm minbase + python3,
// ~8,350 entries, the demo image's base layer), tarred and converted once and kept in the rig
// cache dir. Only the blob's tail (TOC member and footer) is read into memory, once, before the
// clock starts: the snapshotter never holds a whole layer either, and the numbers are CPU, not disk.
//
// The machine is shared, so every number is process CPU time (user+system, process.cpuUsage:
// GC and the zlib thread pool included), median of the runs.
//   cold  each open in a fresh `node` process (what the daemon pays: it opens a layer once)
//   warm  repeated opens in one process after the first (JIT-compiled code)
// With --baseline PATH (this benchmark compiled in another tree, e.g. a copy of dist/ from before
// a change), the cold runs of both alternate, so both see the same load; the table gets a row each.
// Prints a Markdown table for bench/RESULTS.md.
//
// Usage: node dist/bench/toc-open.js [--cold 9] [--warm 15] [--baseline /tmp/old/dist/bench/toc-open.js]
import {execFile, spawn} from 'node:child_process'
import {closeSync, createWriteStream, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {basename, join} from 'node:path'
import {finished} from 'node:stream/promises'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'
import {convertToEstargz} from '../src/estargz/writer.js'
import {openEstargz} from '../src/estargz/reader.js'
import type {RandomAccessSource} from '../src/estargz/random-access.js'
import {buildFsTree} from '../src/lazyfs/fs-tree.js'
import {layerContentFromReader} from '../src/lazyfs/from-estargz-reader.js'
import {benchNumber, benchOption} from './lib/args.js'

const run = promisify(execFile)
const args = process.argv.slice(2)
const flag = benchNumber

interface Layer {
  path: string
  tocDigest: string
  tocOffset: number
}

interface Sample {
  /** CPU ms of openEstargz (footer, TOC inflate, digest, parse, reader tree). */
  open: number
  /** CPU ms of the FUSE tree and chunk list. */
  tree: number
  /** CPU ms of then listing every directory of the FUSE tree once (`find /`; dirs made on first use pay here). */
  walk: number
  entries: number
  inodes: number
  /** Names in the FUSE tree (hard links count once per name). */
  names: number
}

/** The converted Debian root, built on first use and kept beside the root in the rig cache. */
async function benchLayer(): Promise<Layer> {
  // Imported here: the child processes that measure must not load (and collect) the rig's modules.
  const {debootstrapRoot} = await import('../test/rig/debootstrap.js')
  const {rigCacheDir} = await import('../test/rig/images.js')
  const root = await debootstrapRoot()
  const path = join(rigCacheDir(), `bench-toc-open-${basename(root)}.estargz`)
  const meta = `${path}.json`
  if (existsSync(path) && existsSync(meta)) return {path, ...(JSON.parse(readFileSync(meta, 'utf8')) as {tocDigest: string; tocOffset: number})}
  const tmp = `${path}.tmp-${process.pid}`
  try {
    const tar = spawn('tar', ['-C', root, '--sort=name', '-cf', '-', '.'], {stdio: ['ignore', 'pipe', 'inherit']})
    const tarExit = new Promise<number | null>((resolve) => tar.once('close', resolve))
    const output = createWriteStream(tmp)
    const result = await convertToEstargz(tar.stdout, output, {label: 'debootstrap root'})
    output.end()
    await finished(output)
    const code = await tarExit
    if (code !== 0) throw new Error(`tar of ${root} exited with ${code}`)
    writeFileSync(meta, JSON.stringify({tocDigest: result.tocDigest, tocOffset: result.tocOffset}))
    renameSync(tmp, path)
    return {path, tocDigest: result.tocDigest, tocOffset: result.tocOffset}
  } finally {
    rmSync(tmp, {force: true})
  }
}

const cpuMs = (start: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000
}

/** The blob as a source that holds only its bytes from the TOC member on (all that opening reads). */
function tailSource(layer: Layer): RandomAccessSource {
  const size = statSync(layer.path).size
  const tail = Buffer.alloc(size - layer.tocOffset)
  const fd = openSync(layer.path, 'r')
  try {
    readSync(fd, tail, 0, tail.length, layer.tocOffset)
  } finally {
    closeSync(fd)
  }
  return {
    size,
    async readAt(offset: number, length: number): Promise<Buffer> {
      if (offset < layer.tocOffset || offset + length > size) throw new Error(`bench: read of [${offset}, ${offset + length}) outside the TOC and footer`)
      return tail.subarray(offset - layer.tocOffset, offset - layer.tocOffset + length)
    },
  }
}

async function openOnce(source: RandomAccessSource, tocDigest: string): Promise<Sample> {
  let start = process.cpuUsage()
  const reader = await openEstargz(source, {expectedTocDigest: tocDigest, label: 'bench layer'})
  const open = cpuMs(start)
  start = process.cpuUsage()
  const content = layerContentFromReader(reader)
  const tree = buildFsTree(content.tree)
  content.allChunks()
  const treeMs = cpuMs(start)
  start = process.cpuUsage()
  const dirs = [tree.root]
  let names = 0
  while (dirs.length > 0) {
    for (const child of dirs.pop()!.children!.values()) {
      names++
      if (child.kind === 'dir') dirs.push(child)
    }
  }
  return {open, tree: treeMs, walk: cpuMs(start), entries: reader.toc.entries.length, inodes: tree.inodeCount, names}
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
const fmt = (n: number): string => n.toFixed(1)

async function main(): Promise<void> {
  if (args[0] === '--child') {
    const layer = JSON.parse(args[1]!) as Layer
    process.stdout.write(JSON.stringify(await openOnce(tailSource(layer), layer.tocDigest)))
    return
  }
  const layer = await benchLayer()
  const source = tailSource(layer)
  const coldRuns = flag('--cold', 9)
  const warmRuns = flag('--warm', 15)
  const baseline = benchOption('--baseline')
  const load = loadavg()[0]!.toFixed(2)
  const coldRun = async (script: string): Promise<Sample> => {
    const {stdout} = await run(process.execPath, [script, '--child', JSON.stringify(layer)])
    return JSON.parse(stdout) as Sample
  }
  const cold: Sample[] = []
  const baselineCold: Sample[] = []
  for (let i = 0; i < coldRuns; i++) {
    cold.push(await coldRun(fileURLToPath(import.meta.url)))
    if (baseline) baselineCold.push(await coldRun(baseline))
  }
  const warm: Sample[] = []
  await openOnce(source, layer.tocDigest)
  for (let i = 0; i < warmRuns; i++) warm.push(await openOnce(source, layer.tocDigest))
  const first = cold[0] ?? warm[0]!
  console.log(`layer: ${layer.path} (${(source.size / 1e6).toFixed(1)} MB, TOC member ${((source.size - layer.tocOffset) / 1e3).toFixed(0)} kB, ${first.entries} TOC entries, ${first.inodes} inodes); load average ${load} → ${loadavg()[0]!.toFixed(2)}`)
  console.log('')
  console.log('| CPU ms (median) | openEstargz | FUSE tree | total (open + tree) | then listing every dir |')
  console.log('|---|---|---|---|---|')
  const rows: [string, Sample[]][] = [[`cold (${coldRuns} processes)`, cold], [`warm (${warmRuns} runs)`, warm]]
  if (baseline) rows.unshift([`baseline cold (${coldRuns} processes, alternating)`, baselineCold])
  for (const [name, samples] of rows) {
    if (samples.length === 0) continue
    const open = median(samples.map((s) => s.open))
    const tree = median(samples.map((s) => s.tree))
    const total = median(samples.map((s) => s.open + s.tree))
    const walk = median(samples.map((s) => s.walk ?? 0))
    console.log(`| ${name} | ${fmt(open)} | ${fmt(tree)} | ${fmt(total)} | ${fmt(walk)} |`)
  }
  if (baseline) {
    const total = (samples: Sample[]): number => median(samples.map((s) => s.open + s.tree))
    console.log('')
    console.log(`cold: baseline / this = ${(total(baselineCold) / total(cold)).toFixed(2)}x`)
  }
}

await main()
