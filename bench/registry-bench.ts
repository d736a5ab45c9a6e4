// Benchmark: moving a ~1 GiB image into a local registry (docker-registry 2.8, plain HTTP on
// loopback), side by side in one run.
//   copy:          lazyctl push oci:DIR docker://…   vs  skopeo copy oci:DIR docker://…
//   convert+push:  lazyctl convert oci:DIR docker://…  vs  ctr-remote image convert --estargz --oci
//                  + ctr push (in a private containerd that already holds the image, import untimed)
// Every measured run gets a fresh registry, so no tool finds blobs already there. Wall time is
// measured around the whole command; the load average is recorded because the machine is shared.
// Prints a Markdown table for bench/RESULTS.md and writes dist/bench/registry-bench.json.
//
// Usage: node dist/bench/registry-bench.js [--runs N] [--convert-runs N] [--only copy|convert]
import {spawn, spawnSync} from 'node:child_process'
import {createCipheriv, createHash} from 'node:crypto'
import {createWriteStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {once} from 'node:events'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import {CLI_ENTRY, PACKAGE_ROOT} from '../src/paths.js'
import {startContainerd} from '../test/rig/containerd.js'
import {busyboxRoot, rigCacheDir, writeOciArchive, writeOciLayout, type WrittenImage} from '../test/rig/images.js'
import {requireCommand} from '../test/rig/process.js'
import {startRegistry} from '../test/rig/registry.js'
import {removeDir, rigTempDir} from '../test/rig/tmp.js'
import {benchOption} from './lib/args.js'

const flag = benchOption
const RUNS = Number(flag('--runs') ?? 3)
const CONVERT_RUNS = Number(flag('--convert-runs') ?? 1)
const ONLY = flag('--only')
const RANDOM_MIB = 512
const TEXT_MIB = 480

/** Text-like files (random words): they compress about as well as logs or source code. */
async function writeWordFiles(dir: string, totalMiB: number, files: number): Promise<void> {
  const words = 'alpha beta gamma delta container image layer registry manifest digest blob chunk index config push pull convert lazy snapshot mount read write file path node cluster service request response token cache prefetch'.split(' ')
  mkdirSync(dir, {recursive: true})
  for (let f = 0; f < files; f++) {
    const size = Math.round((totalMiB << 20) / files)
    const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update(`registry-bench-${f}`).digest(), Buffer.alloc(16))
    const out = createWriteStream(join(dir, `words-${f}.txt`))
    let written = 0
    while (written < size) {
      const r = cipher.update(Buffer.alloc(1 << 15))
      const parts: string[] = []
      for (let i = 0; i < r.length; i++) parts.push(words[r[i]! % words.length]!, r[i]! % 11 === 0 ? '\n' : ' ')
      const piece = Buffer.from(parts.join('')).subarray(0, size - written)
      written += piece.length
      if (!out.write(piece)) await once(out, 'drain')
    }
    out.end()
    await once(out, 'finish')
  }
}

/** The benchmark image, built once into the rig cache: busybox root, 512 MiB random, 480 MiB text. */
async function benchImage(): Promise<{layout: string; archive: string; image: WrittenImage}> {
  const base = join(rigCacheDir(), 'registry-bench-v1')
  const layout = join(base, 'layout')
  const archive = join(base, 'image.tar')
  const meta = join(base, 'image.json')
  if (!existsSync(meta)) {
    rmSync(base, {recursive: true, force: true})
    mkdirSync(base, {recursive: true})
    const textDir = join(base, 'words')
    await writeWordFiles(textDir, TEXT_MIB, 8)
    const spec = {
      tag: 'v1',
      layers: [
        {dir: busyboxRoot()},
        {files: Array.from({length: 4}, (_, i) => ({path: `data/random-${i}.bin`, random: {size: (RANDOM_MIB / 4) << 20, seed: `rb-${i}`}}))},
        {dir: textDir},
      ],
    }
    const image = await writeOciLayout(`${layout}.tmp`, spec)
    renameSync(`${layout}.tmp`, layout)
    await writeOciArchive(archive, spec)
    rmSync(textDir, {recursive: true, force: true})
    writeFileSync(meta, JSON.stringify(image))
  }
  const {readFileSync} = await import('node:fs')
  return {layout, archive, image: JSON.parse(readFileSync(meta, 'utf8')) as WrittenImage}
}

interface Run {
  tool: string
  seconds: number
  loadBefore: number
  loadAfter: number
}

/**
 * Runs a command and measures its wall time. Asynchronous on purpose: the registry's log is pumped
 * by this process, and a blocking spawnSync would let that pipe fill and stall the registry.
 */
async function timed(tool: string, command: string, argv: string[], env?: NodeJS.ProcessEnv): Promise<Run> {
  const loadBefore = loadavg()[0]!
  const start = process.hrtime.bigint()
  const child = spawn(command, argv, {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, ...env}})
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)))
  const [code] = (await once(child, 'close')) as [number | null]
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  if (code !== 0) throw new Error(`${tool} failed (${code}): ${stderr}`)
  return {tool, seconds, loadBefore, loadAfter: loadavg()[0]!}
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

async function main(): Promise<void> {
  requireCommand('skopeo', 'skopeo')
  requireCommand('ctr-remote', 'stargz-snapshotter')
  const {layout, archive, image} = await benchImage()
  const imageBytes = image.layers.reduce((n, l) => n + l.size, 0)
  const tarBytes = image.layers.reduce((n, l) => n + l.uncompressedSize, 0)
  // Warm the page cache so the first measured tool does not pay for cold reads alone.
  spawnSync('sh', ['-c', `cat ${layout}/blobs/sha256/* > /dev/null`])
  const runs: Array<Run & {kind: string}> = []
  const env = {HOME: rigTempDir('bench-home')}

  if (ONLY !== 'convert') {
    for (let r = 0; r < RUNS; r++) {
      // Alternate who goes first so neither always meets a warmer page cache.
      const order = r % 2 === 0 ? ['lazyctl', 'skopeo'] : ['skopeo', 'lazyctl']
      for (const tool of order) {
        const registry = await startRegistry({auth: 'none'})
        try {
          const dest = `docker://${registry.host}/bench/copy:v1`
          const run = tool === 'lazyctl'
            ? await timed('lazyctl push', process.execPath, [CLI_ENTRY, 'push', '-q', `oci:${layout}:v1`, dest], env)
            : await timed('skopeo copy', 'skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:v1`, dest], env)
          runs.push({...run, kind: 'copy'})
          process.stderr.write(`copy ${run.tool}: ${run.seconds.toFixed(1)} s\n`)
        } finally {
          await registry.stop()
        }
      }
    }
  }

  if (ONLY !== 'copy') {
    const rig = await startContainerd()
    try {
      await timed('ctr import', 'ctr', ['-a', rig.address, '-n', rig.namespace, 'images', 'import', '--no-unpack', '--index-name', 'bench/src:v1', archive])
      for (let r = 0; r < CONVERT_RUNS; r++) {
        const order = r % 2 === 0 ? ['lazyctl', 'ctr-remote'] : ['ctr-remote', 'lazyctl']
        for (const tool of order) {
          const registry = await startRegistry({auth: 'none'})
          try {
            let run: Run
            if (tool === 'lazyctl') {
              run = await timed('lazyctl convert', process.execPath, [CLI_ENTRY, 'convert', '-q', `oci:${layout}:v1`, `docker://${registry.host}/bench/esgz:v1`], env)
            } else {
              const dst = `${registry.host}/bench/esgz:v1`
              const loadBefore = loadavg()[0]!
              const start = process.hrtime.bigint()
              await timed('ctr-remote', 'ctr-remote', ['-a', rig.address, '-n', rig.namespace, 'image', 'convert', '--oci', '--estargz', 'bench/src:v1', dst])
              const pushed = await timed('ctr push', 'ctr', ['-a', rig.address, '-n', rig.namespace, 'images', 'push', '--plain-http', dst, dst])
              process.stderr.write(`  of which ctr push: ${pushed.seconds.toFixed(1)} s\n`)
              run = {tool: 'ctr-remote convert + ctr push', seconds: Number(process.hrtime.bigint() - start) / 1e9, loadBefore, loadAfter: loadavg()[0]!}
              await timed('ctr rm', 'ctr', ['-a', rig.address, '-n', rig.namespace, 'images', 'rm', dst])
            }
            runs.push({...run, kind: 'convert+push'})
            process.stderr.write(`convert+push ${run.tool}: ${run.seconds.toFixed(1)} s\n`)
          } finally {
            await registry.stop()
          }
        }
      }
    } finally {
      await rig.stop()
    }
  }
  removeDir(env.HOME)

  const mb = (n: number): string => (n / 1e6).toFixed(0)
  const lines = [
    `Image: ${image.layers.length} gzip layers, ${mb(imageBytes)} MB compressed, ${mb(tarBytes)} MB of tar (busybox root, ${RANDOM_MIB} MiB random, ${TEXT_MIB} MiB text).`,
    '',
    '| operation | tool | runs | median wall | each run | MB/s (compressed in) | load avg before → after |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ]
  for (const kind of ['copy', 'convert+push']) {
    for (const tool of [...new Set(runs.filter((r) => r.kind === kind).map((r) => r.tool))]) {
      const mine = runs.filter((r) => r.kind === kind && r.tool === tool)
      const m = median(mine.map((r) => r.seconds))
      lines.push(`| ${kind} | ${tool} | ${mine.length} | ${m.toFixed(1)} s | ${mine.map((r) => r.seconds.toFixed(1)).join(', ')} | ${mb(imageBytes / m)} | ${mine.map((r) => `${r.loadBefore.toFixed(1)}→${r.loadAfter.toFixed(1)}`).join(', ')} |`)
    }
    const [a, b] = [...new Set(runs.filter((r) => r.kind === kind).map((r) => r.tool))]
    if (a && b) {
      const ma = median(runs.filter((r) => r.kind === kind && r.tool === a).map((r) => r.seconds))
      const mbb = median(runs.filter((r) => r.kind === kind && r.tool === b).map((r) => r.seconds))
      lines.push(`| ${kind} | ratio ${b} / ${a} | | ${(mbb / ma).toFixed(2)}× | | | |`)
    }
  }
  const table = lines.join('\n')
  process.stdout.write(`${table}\n`)
  mkdirSync(join(PACKAGE_ROOT, 'dist', 'bench'), {recursive: true})
  writeFileSync(join(PACKAGE_ROOT, 'dist', 'bench', 'registry-bench.json'), JSON.stringify({imageBytes, tarBytes, runs}, null, 2))
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`)
  process.exit(1)
})
