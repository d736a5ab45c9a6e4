// Results of bench/startup: the per-run numbers, the Markdown table with ratios, and the
// `## Startup` section of bench/RESULTS.md (replaced in place; other sections are other benchmarks').
import {existsSync, mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {dirname} from 'node:path'

export interface ModeRun {
  /** From the start of the pull/run to the container's first stdout byte. */
  firstOutputMs: number
  exitMs: number
  /** GET body bytes the registry served for the image's repository before the first output / until exit. */
  bytesBeforeOutput: number
  bytesUntilExit: number
  /** Blob bytes served from the start until background fetch settled (detailed runs only). */
  totalBytes?: number
  /** From the start to the last blob byte served (detailed runs only). */
  settleMs?: number
  /** Background fetch state of each layer when it settled (lazyctl only). */
  backgroundFetch?: string[]
  /** The most times one blob byte was served (1 = never twice). */
  maxTimesOneByteFetched?: number
  /** CPU time of the client commands (`lazyctl run`; `ctr-remote image rpull` + `ctr run`) until they exited. */
  clientCpuMs?: number
  /** CPU time the snapshotter daemon used from the start until the client exited. */
  snapshotterCpuMs?: number
  /** The snapshotter's VmHWM at the end of the run. */
  peakRssBytes?: number
  output: string
}

export interface ReadResult {
  bytes: number
  /** Bytes per second. The first read through FUSE fetches what is not local yet. */
  fuseFirst: number
  fuseCold: number
  fuseWarm: number
  localCold: number
  localWarm: number
}

export interface ImageResult {
  name: string
  ref: string
  /** Compressed bytes of the eStargz layers. */
  blobBytes: number
  convertMs: number
  lazy: ModeRun[]
  /** Lazy runs with the snapshotter started before the clock (as the reference daemon is). */
  lazyRunning: ModeRun[]
  full: ModeRun[]
  reference: ModeRun[]
  reads?: ReadResult
  /** The same reads through the reference snapshotter's mount (its `fuse*` fields; local ones repeated beside them). */
  referenceReads?: ReadResult
}

const DESCRIPTIONS: Record<string, string> = {
  demo: 'demo: Debian + python3 + 20 × 50 MiB text, 2 layers',
  python: 'python3: Debian + python3, 1 layer',
  'python-record': 'python3, converted with a record of the files it reads',
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(2)} MB`
const mbps = (bytesPerSec: number): string => `${(bytesPerSec / 1e6).toFixed(0)} MB/s`
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(a / b >= 10 ? 0 : 2)}x` : '–')
const spread = (runs: ModeRun[], pick: (r: ModeRun) => number, fmt: (n: number) => string): string =>
  runs.length > 1 ? `${fmt(median(runs.map(pick)))} (${fmt(Math.min(...runs.map(pick)))}–${fmt(Math.max(...runs.map(pick)))})` : fmt(pick(runs[0]!))

export function formatResults(results: ImageResult[], meta: {command: string; environment: string}): string {
  const lines: string[] = []
  lines.push('```sh', `${meta.command}`, '```', '', `Registry, containerd and snapshotters in one network namespace; ${meta.environment}. Each run from a clean state (fresh containerd root, snapshotter stopped, its root and cache removed, page cache dropped). Median (min–max) of the runs. "lazyctl lazy" includes \`lazyctl run\` starting its snapshotter; "snapshotter running" starts it (fresh root) before the clock, as the reference daemon is started before its clock; the reference's time is \`ctr-remote image rpull\` + \`ctr run\`. Bytes are what the registry's own log says it served for the image.`, '')
  lines.push('Time from the start of the run to the container\'s first output:', '')
  lines.push('| image | full pull (overlayfs) | lazyctl lazy (run starts the snapshotter) | lazyctl lazy, snapshotter running | reference lazy (daemon running) | full ÷ lazyctl | lazyctl ÷ reference | lazyctl running ÷ reference |')
  lines.push('|---|---|---|---|---|---|---|---|')
  for (const r of results) {
    const lazy = median(r.lazy.map((x) => x.firstOutputMs))
    const full = median(r.full.map((x) => x.firstOutputMs))
    const ref = median(r.reference.map((x) => x.firstOutputMs))
    const running = r.lazyRunning.length ? median(r.lazyRunning.map((x) => x.firstOutputMs)) : 0
    const runningCell = r.lazyRunning.length ? spread(r.lazyRunning, (x) => x.firstOutputMs, secs) : '–'
    lines.push(`| ${DESCRIPTIONS[r.name] ?? r.name} | ${spread(r.full, (x) => x.firstOutputMs, secs)} | ${spread(r.lazy, (x) => x.firstOutputMs, secs)} | ${runningCell} | ${spread(r.reference, (x) => x.firstOutputMs, secs)} | ${ratio(full, lazy)} | ${ratio(lazy, ref)} | ${ratio(running, ref)} |`)
  }
  lines.push('', 'Bytes the registry served before the first output, and in all once background fetch settled (first run of each image):', '')
  lines.push('| image | eStargz blobs | full pull | lazyctl before output | lazyctl (running) before output | reference before output | lazyctl ÷ reference | lazyctl total (most times one byte was served) | reference total (most times) |')
  lines.push('|---|---|---|---|---|---|---|---|---|')
  for (const r of results) {
    const lazy = median(r.lazy.map((x) => x.bytesBeforeOutput))
    const ref = median(r.reference.map((x) => x.bytesBeforeOutput))
    const total = (runs: ModeRun[]): string => {
      const first = runs[0]
      return first?.totalBytes !== undefined ? `${mb(first.totalBytes)} in ${secs(first.settleMs ?? 0)} (${first.maxTimesOneByteFetched}x)` : '–'
    }
    const running = r.lazyRunning.length ? mb(median(r.lazyRunning.map((x) => x.bytesBeforeOutput))) : '–'
    lines.push(`| ${r.name} | ${mb(r.blobBytes)} | ${mb(median(r.full.map((x) => x.bytesBeforeOutput)))} | ${mb(lazy)} | ${running} | ${mb(ref)} | ${ratio(lazy, ref)} | ${total(r.lazy)} | ${total(r.reference)} |`)
  }
  lines.push('', 'CPU seconds spent until the client exited (median; GNU time for the clients, /proc/PID/stat for the daemons) — on a shared 2-core machine this, not the link, decides the lazy start:', '')
  lines.push('| image | lazyctl run (spawning) | its snapshotter (incl. start) | lazyctl run (snapshotter running) | its snapshotter | ctr-remote rpull + ctr run | reference daemon | full pull: lazyctl run |')
  lines.push('|---|---|---|---|---|---|---|---|')
  for (const r of results) {
    const cpu = (runs: ModeRun[], pick: (x: ModeRun) => number | undefined): string => {
      const values = runs.map(pick).filter((v): v is number => v !== undefined)
      return values.length ? `${(median(values) / 1000).toFixed(2)} s` : '–'
    }
    lines.push(`| ${r.name} | ${cpu(r.lazy, (x) => x.clientCpuMs)} | ${cpu(r.lazy, (x) => x.snapshotterCpuMs)} | ${cpu(r.lazyRunning, (x) => x.clientCpuMs)} | ${cpu(r.lazyRunning, (x) => x.snapshotterCpuMs)} | ${cpu(r.reference, (x) => x.clientCpuMs)} | ${cpu(r.reference, (x) => x.snapshotterCpuMs)} | ${cpu(r.full, (x) => x.clientCpuMs)} |`)
  }
  lines.push('', 'Snapshotter peak RSS (VmHWM; first run: after background fetch settled):', '')
  lines.push('| image | lazyctl | reference |', '|---|---|---|')
  for (const r of results) {
    const rss = (runs: ModeRun[]): string => (runs.some((x) => x.peakRssBytes !== undefined) ? mb(Math.max(...runs.map((x) => x.peakRssBytes ?? 0))) : '–')
    lines.push(`| ${r.name} | ${rss(r.lazy)} | ${rss(r.reference)} |`)
  }
  const reads = results.find((r) => r.reads)?.reads
  if (reads) {
    lines.push('', `Sequential read (dd bs=1M) of one ${(reads.bytes / 2 ** 20).toFixed(0)} MiB text file of the demo image after the first lazy run; the first FUSE read fetches what is not local yet over the shaped link, then every chunk is in the disk cache; cold = page cache dropped, warm = read again:`, '')
    lines.push('| | first read | cold | warm |', '|---|---|---|---|')
    lines.push(`| local disk | – | ${mbps(reads.localCold)} | ${mbps(reads.localWarm)} |`)
    lines.push(`| lazyctl FUSE mount | ${mbps(reads.fuseFirst)} | ${mbps(reads.fuseCold)} | ${mbps(reads.fuseWarm)} |`)
    lines.push(`| FUSE ÷ local | – | ${ratio(reads.fuseCold, reads.localCold)} | ${ratio(reads.fuseWarm, reads.localWarm)} |`)
    const ref = results.find((r) => r.referenceReads)?.referenceReads
    if (ref) {
      lines.push(`| reference FUSE mount (after its background fetch settled) | ${mbps(ref.fuseFirst)} | ${mbps(ref.fuseCold)} | ${mbps(ref.fuseWarm)} |`)
      lines.push(`| local disk, read right after the reference's | – | ${mbps(ref.localCold)} | ${mbps(ref.localWarm)} |`)
      lines.push(`| reference FUSE ÷ local | – | ${ratio(ref.fuseCold, ref.localCold)} | ${ratio(ref.fuseWarm, ref.localWarm)} |`)
    }
  }
  const lazyBg = results.map((r) => r.lazy[0]?.backgroundFetch?.length ? `${r.name}: ${r.lazy[0].backgroundFetch.join(', ')}` : undefined).filter(Boolean)
  if (lazyBg.length) lines.push('', `lazyctl background fetch when settled (layer:state:% local): ${lazyBg.join('; ')}.`)
  lines.push('', `Conversion (\`lazyctl convert\` to an OCI layout, gzip level 9; cached per converter version, the time is that of the conversion that made it): ${results.map((r) => `${r.name} ${secs(r.convertMs)}`).join(', ')}.`)
  return lines.join('\n')
}

/** Replaces (or appends) the `## <title>` section of a Markdown file, leaving the others as they are. */
export function writeResultsSection(file: string, title: string, body: string): void {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n'
  const heading = `## ${title}`
  const start = text.split('\n').findIndex((line) => line.trim() === heading)
  const lines = text.split('\n')
  const section = [heading, '', body.trimEnd(), '']
  let next: string[]
  if (start < 0) {
    next = [...lines.join('\n').trimEnd().split('\n'), '', ...section]
  } else {
    let end = lines.findIndex((line, i) => i > start && line.startsWith('## '))
    if (end < 0) end = lines.length
    next = [...lines.slice(0, start), ...section, ...lines.slice(end)]
  }
  mkdirSync(dirname(file), {recursive: true})
  const tmp = `${file}.tmp-${process.pid}`
  writeFileSync(tmp, next.join('\n').replace(/\n*$/, '\n'))
  renameSync(tmp, file)
}
