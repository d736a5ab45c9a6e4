// Benchmark: sequential read throughput of one large file through a lazyfs FUSE mount, cold and
// warm, against the same file on local disk. Everything reads with `dd bs=1M` in a child process
// (the FUSE handlers run in this process). Page caches are dropped per file with
// `dd iflag=nocache count=0` (posix_fadvise DONTNEED), so "cold" really reads the disk.
//   local cold   the plain file, not in the page cache
//   local warm   the plain file again, from the page cache
//   fuse cold    nothing cached: the eStargz blob (a local file, not in the page cache) is range-read,
//                inflated, verified and written to the chunk cache while serving
//   fuse warm    a fresh mount over a full chunk cache whose files are not in the page cache
//   fuse warm*   the same with the chunk files in the page cache
//   fuse hot     the same mount read again (and again, paired with tmpfs): the kernel's page cache of the FUSE file (kernel_cache);
//                the bench checks that no read request reached lazyfs (bytes served unchanged)
//   tmpfs warm   the plain file copied to /dev/shm, from the page cache: a page cache of small
//                folios like FUSE's, where ext4 caches in large folios (the kernel's copy speed
//                differs by 2-3x, which bounds "fuse hot" against "local warm")
// The machine is shared, so every lazyfs reading is paired with a local reading taken just
// before it; the table gives raw speeds and the median of the per-pair ratios.
// The last column is the CPU time (user+system) of this process, where lazyfs runs, during the read.
// Prints a Markdown table for bench/RESULTS.md.
//
// Usage: node dist/bench/fuse-read.js [--mib 256] [--runs 3] [--level 1]
import {execFile} from 'node:child_process'
import {copyFileSync, createWriteStream, createReadStream, mkdirSync, readdirSync, rmSync} from 'node:fs'
import {mkdtemp} from 'node:fs/promises'
import {cpus, tmpdir, loadavg} from 'node:os'
import {join} from 'node:path'
import {once} from 'node:events'
import {finished} from 'node:stream/promises'
import {promisify} from 'node:util'
import {convertToEstargz} from '../src/estargz/writer.js'
import {openEstargz} from '../src/estargz/reader.js'
import {openFileSource} from '../src/estargz/random-access.js'
import {ChunkCache} from '../src/lazyfs/chunk-cache.js'
import {mountLayer, type MountedLayer} from '../src/lazyfs/mount.js'
import {benchNumber} from './lib/args.js'

const run = promisify(execFile)
const flag = benchNumber
const MIB = flag('--mib', 256)
const RUNS = flag('--runs', 3)
const LEVEL = flag('--level', 1)

/** Pseudo-random words (a fixed LCG): text that compresses about as well as logs or source. */
async function writeText(path: string, bytes: number): Promise<void> {
  const words = 'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their has would when if so no will more can who out said them may some up into time than its two about other only new could these then first also any like very after over such what most our made'.split(' ')
  const out = createWriteStream(path)
  let state = 12345
  let written = 0
  while (written < bytes) {
    const parts: string[] = []
    let size = 0
    while (size < 1 << 20) {
      state = (state * 1103515245 + 12345) >>> 0
      const word = words[state % words.length]
      parts.push(word)
      size += word.length + 1
    }
    const block = Buffer.from(parts.join(' ') + '\n').subarray(0, Math.min(1 << 20, bytes - written))
    written += block.length
    if (!out.write(block)) await once(out, 'drain')
  }
  out.end()
  await finished(out)
}

async function dropCache(path: string): Promise<void> {
  await run('dd', [`if=${path}`, 'iflag=nocache', 'count=0', 'status=none'])
}

/** Seconds dd took to read the whole file (its own measurement). */
async function ddSeconds(path: string): Promise<number> {
  const {stderr} = await run('dd', [`if=${path}`, 'of=/dev/null', 'bs=1M'])
  const m = /copied, ([\d.]+) s/.exec(stderr)
  if (!m) throw new Error(`unexpected dd output: ${stderr}`)
  return Number(m[1])
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'lazyctl-bench-fuse-'))
  const mounts: MountedLayer[] = []
  try {
    const srcDir = join(work, 'src')
    mkdirSync(srcDir)
    const plain = join(srcDir, 'big.txt')
    const bytes = MIB << 20
    await writeText(plain, bytes)
    const tar = join(work, 'layer.tar')
    await run('tar', ['-C', srcDir, '-cf', tar, '.'])
    const blobPath = join(work, 'layer.esgz')
    const out = createWriteStream(blobPath)
    const converted = await convertToEstargz(createReadStream(tar), out, {compressionLevel: LEVEL})
    out.end()
    await finished(out)
    rmSync(tar)
    console.error(`blob: ${(converted.blobSize / 1e6).toFixed(1)} MB for ${MIB} MiB of text (gzip level ${LEVEL}, 4 MiB chunks)`)

    // The machine is shared: each lazyfs measurement is paired with a local one taken right
    // before it, and the table reports the median of the per-pair ratios as well as raw speeds.
    const pairs: Record<string, {local: string; fuse: number[]; base: number[]; cpuMs: number[]}> = {
      'fuse cold': {local: 'local cold', fuse: [], base: [], cpuMs: []},
      'fuse warm': {local: 'local cold', fuse: [], base: [], cpuMs: []},
      'fuse warm*': {local: 'local warm', fuse: [], base: [], cpuMs: []},
      'fuse hot': {local: 'local warm', fuse: [], base: [], cpuMs: []},
      'fuse hot again': {local: 'tmpfs warm', fuse: [], base: [], cpuMs: []},
    }
    const localRuns: Record<string, number[]> = {'local cold': [], 'local warm': [], 'tmpfs warm': []}
    const shm = join('/dev/shm', `lazyctl-bench-fuse-${process.pid}.txt`)
    copyFileSync(plain, shm)
    const blob = await openFileSource(blobPath)
    const reader = await openEstargz(blob, {expectedTocDigest: converted.tocDigest})
    let n = 0
    const mount = async (cacheDir: string): Promise<{mounted: MountedLayer; file: string; cache: ChunkCache}> => {
      const cache = await ChunkCache.open({dir: cacheDir})
      const mountpoint = join(work, `mnt-${n++}`)
      const mounted = await mountLayer({mountpoint, reader, cache})
      mounts.push(mounted)
      return {mounted, file: join(mountpoint, 'big.txt'), cache}
    }
    const chunkFiles = (cacheDir: string): string[] =>
      readdirSync(cacheDir).filter((d) => /^[0-9a-f]{2}$/.test(d)).flatMap((d) => readdirSync(join(cacheDir, d)).map((f) => join(cacheDir, d, f)))
    const local = async (kind: 'local cold' | 'local warm' | 'tmpfs warm'): Promise<number> => {
      const file = kind === 'tmpfs warm' ? shm : plain
      if (kind === 'local cold') await dropCache(file)
      else await ddSeconds(file)
      const speed = bytes / (await ddSeconds(file))
      localRuns[kind].push(speed)
      return speed
    }
    /** Reads a file through lazyfs with dd; speed, and the CPU this process (lazyfs) spent meanwhile. */
    const record = async (name: string, base: number, file: string): Promise<void> => {
      const cpu = process.cpuUsage()
      const seconds = await ddSeconds(file)
      const used = process.cpuUsage(cpu)
      pairs[name].base.push(base)
      pairs[name].fuse.push(bytes / seconds)
      pairs[name].cpuMs.push((used.user + used.system) / 1000)
    }

    const loads: number[] = []
    const hotServed: number[] = []
    for (let r = 0; r < RUNS; r++) {
      loads.push(loadavg()[0])
      const cacheDir = join(work, `cache-${r}`)
      let base = await local('local cold')
      await dropCache(blobPath)
      const cold = await mount(cacheDir)
      await record('fuse cold', base, cold.file)
      await cold.mounted.unmount()
      await cold.cache.close()

      for (const f of chunkFiles(cacheDir)) await dropCache(f)
      const warm = await mount(cacheDir)
      base = await local('local cold')
      await record('fuse warm', base, warm.file)
      const servedWarm = warm.mounted.stats().bytesServed
      base = await local('local warm')
      await record('fuse hot', base, warm.file)
      base = await local('tmpfs warm')
      await record('fuse hot again', base, warm.file)
      const stats = warm.mounted.stats()
      if (stats.bytesFetched !== 0) throw new Error(`warm mount fetched ${stats.bytesFetched} bytes`)
      // kernel_cache: the rereads are the kernel's alone; a read request reaching lazyfs (a page
      // the kernel dropped meanwhile, under memory pressure from other work) counts here.
      hotServed.push(stats.bytesServed - servedWarm)
      await warm.mounted.unmount()
      await warm.cache.close()

      const warmer = await mount(cacheDir)
      base = await local('local warm')
      await record('fuse warm*', base, warmer.file)
      await warmer.mounted.unmount()
      await warmer.cache.close()
      rmSync(cacheDir, {recursive: true, force: true})
      console.error(`run ${r + 1}/${RUNS} done (load ${loadavg()[0].toFixed(2)})`)
    }
    await blob.close()

    const mb = (v: number): string => (v / 1e6).toFixed(0)
    console.log(`${MIB} MiB text file (blob ${(converted.blobSize / 1e6).toFixed(1)} MB, gzip level ${LEVEL}, 4 MiB chunks), dd bs=1M, ${RUNS} runs, load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${cpus().length} cores`)
    console.log('')
    console.log('| read | MB/s median | MB/s per run | paired with | ratio to it (median of pairs) | lazyfs CPU ms (median) |')
    console.log('|---|---|---|---|---|---|')
    for (const [name, values] of Object.entries(localRuns)) console.log(`| ${name} | ${mb(median(values))} | ${values.map(mb).join(', ')} | | | |`)
    for (const [name, p] of Object.entries(pairs)) {
      const ratios = p.fuse.map((v, i) => v / p.base[i])
      console.log(`| ${name} | ${mb(median(p.fuse))} | ${p.fuse.map(mb).join(', ')} | ${p.local} | ${median(ratios).toFixed(2)} (${ratios.map((x) => x.toFixed(2)).join(', ')}) | ${median(p.cpuMs).toFixed(0)} |`)
    }
    console.log('')
    console.log(`Bytes that reached lazyfs during the two hot reads, per run (0 = all from the kernel's page cache): ${hotServed.join(', ')}`)
  } finally {
    for (const m of mounts) await m.unmount().catch(() => undefined)
    rmSync(work, {recursive: true, force: true})
    rmSync(join('/dev/shm', `lazyctl-bench-fuse-${process.pid}.txt`), {force: true})
  }
}

await main()
