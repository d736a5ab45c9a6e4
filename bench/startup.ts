// Benchmark: container start, lazy (lazyctl's snapshotter, spawned by `lazyctl run`) vs full pull
// (overlayfs) vs the reference stargz snapshotter, with registry, containerd and snapshotters in a
// network namespace whose loopback is shaped with tc tbf (default 100 Mbit/s).
//
// Per image and run, from a clean state (fresh containerd root, snapshotter stopped with its root
// and cache removed, page cache dropped):
//   - time from the start of `lazyctl run` (reference: of `ctr-remote image rpull`, then
//     `ctr run --seccomp`: the same seccomp profile as lazyctl's)
//     to the container's first output on stdout;
//   - bytes the registry served before that first output, and until exit (its own log);
//   - on the first lazy run of each image: total bytes served once background fetch settles,
//     against the blob sizes (a byte should never be fetched twice), and the snapshotters' peak
//     RSS (VmHWM);
//   - demo image: sequential read of one 50 MiB text file through the FUSE mount, page cache
//     dropped (cold) and again (warm), against the same file on local disk; the same through the
//     reference's mount once its background fetch has settled.
// Images are converted with `lazyctl convert` into OCI layouts cached per converter version
// (/var/cache/lazyctl-demo/esgz-*) and pushed before the link is shaped.
//
// Usage: node dist/bench/startup.js [--runs 3] [--rate-mbit 100] [--images demo,python,python-record]
//        [--modes lazy,running,reference,full] [--settle]
//        ("python" means python and python-record; a subset of modes prints medians and writes no
//        report; --settle still measures settling and peak RSS on each image's first run).
//        Writes bench/RESULTS.md `## Startup` and dist/bench/startup.json. Run as root on an otherwise idle machine.
import {existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import Run from '../commands/run.js'
import {ContainerdConnection} from '../src/containerd/connection.js'
import {containerdReachesSnapshotter} from '../src/run/lazy-snapshotter.js'
import {ensureSnapshotter} from '../src/snapshotter/spawn.js'
import {querySnapshotterStatus} from '../src/snapshotter/status-service.js'
import {PACKAGE_ROOT} from '../src/paths.js'
import {debootstrapRoot} from '../test/rig/debootstrap.js'
import type {RegistryRequest} from '../test/rig/registry.js'
import {buildDemoImage, buildPythonImage, demoCacheDir, DEMO_COMMAND} from './lib/demo-image.js'
import {convertCached, pushedLayers} from './lib/converted-image.js'
import {NETNS_ENV, reexecInNamespace, shapeNamespace} from './lib/netns.js'
import {PYTHON_COMMAND, pythonRecordFile} from './lib/python-record.js'
import {startReferenceStack, type ReferenceStack} from './lib/reference.js'
import {bytesServedBetween, completedAt} from './lib/registry-window.js'
import {cpuTimeMs, dropPageCache, peakRss, startLazyctlStack, type LazyctlStack} from './lib/stack.js'
import {onSignalsTearDown} from './lib/teardown.js'
import {assertSucceeded, runTimed, type TimedRun} from './lib/timed-run.js'
import {formatResults, median, writeResultsSection, type ImageResult, type ModeRun, type ReadResult} from './lib/startup-report.js'
import {benchOption} from './lib/args.js'

interface Options {
  runs: number
  rateMbit: number
  images: string[]
  /** Which kinds of run to time; a subset is for quick A/B work and writes no report. */
  modes: Mode[]
  /** With a subset of modes, still measure settling and peak RSS on each image's first run. */
  settle: boolean
}

const MODES = ['lazy', 'running', 'reference', 'full'] as const
type Mode = (typeof MODES)[number]

const IMAGE_NAMES = ['demo', 'python', 'python-record']

function parseArgs(argv: string[]): Options {
  const value = (name: string): string | undefined => benchOption(name, argv)
  const runs = Number(value('--runs') ?? 3)
  const rateMbit = Number(value('--rate-mbit') ?? 100)
  const images = (value('--images') ?? 'demo,python')
    .split(',')
    .flatMap((name) => (name === 'python' ? ['python', 'python-record'] : [name]))
  const unknown = images.filter((name) => !IMAGE_NAMES.includes(name))
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: want a positive integer, got ${value('--runs')}`)
  if (!Number.isFinite(rateMbit) || rateMbit < 0) throw new Error(`--rate-mbit: want a number ≥ 0, got ${value('--rate-mbit')}`)
  if (unknown.length) throw new Error(`--images: unknown ${unknown.join(', ')} (known: ${IMAGE_NAMES.join(', ')}, python = python + python-record)`)
  const modes = (value('--modes') ?? MODES.join(',')).split(',')
  const unknownModes = modes.filter((m) => !(MODES as readonly string[]).includes(m))
  if (unknownModes.length) throw new Error(`--modes: unknown ${unknownModes.join(', ')} (choose from ${MODES.join(', ')})`)
  return {runs, rateMbit, images: [...new Set(images)], modes: modes as Mode[], settle: argv.includes('--settle')}
}

const t0 = performance.now()
function say(line: string): void {
  process.stderr.write(`startup [${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)
}

interface BenchImage {
  name: string
  repository: string
  ref: string
  command: string[]
  /** Layer digests and sizes of the pushed eStargz image. */
  layers: {digest: string; size: number}[]
  convertMs: number
}

async function main(): Promise<number> {
  rmSync(LOG_DIR, {recursive: true, force: true})
  const options = parseArgs(process.argv.slice(2))
  if (process.getuid?.() !== 0) throw new Error('run as root (containerd, FUSE, network namespaces, drop_caches)')
  const netns = process.env[NETNS_ENV]
  if (!netns) return reexecInNamespace(`lazyctl-bench-${process.pid}`)
  const command = `node dist/bench/startup.js --runs ${options.runs} --rate-mbit ${options.rateMbit} --images ${options.images.join(',')}`

  let stack: LazyctlStack | undefined
  let reference: ReferenceStack | undefined
  // One teardown, whoever asks first (a signal or the end of main); later callers wait for the same one.
  let tearingDown: Promise<void> | undefined
  const teardown = (): Promise<void> =>
    (tearingDown ??= (async () => {
      await stack?.stop().catch((err: unknown) => say(`teardown of the lazyctl stack: ${String(err)}`))
      await reference?.stop().catch((err: unknown) => say(`teardown of the reference stack: ${String(err)}`))
    })())
  onSignalsTearDown(teardown, say)
  try {
    say('building images (cached in ' + demoCacheDir() + ')')
    const demo = options.images.includes('demo') ? await buildDemoImage({onProgress: say}) : undefined
    const python = options.images.some((n) => n.startsWith('python')) ? await buildPythonImage({onProgress: say}) : undefined
    const record = options.images.includes('python-record') ? pythonRecordFile(await debootstrapRoot({include: ['python3']}), join(demoCacheDir(), 'python3-record-v1.jsonl')) : undefined

    say('starting registry, containerd + lazyctl config, reference containerd + stargz snapshotter')
    stack = await startLazyctlStack({logLevel: 'debug'})
    reference = await startReferenceStack()
    const s = stack
    const ref = reference

    const images: BenchImage[] = []
    for (const name of options.images) {
      const source = name === 'demo' ? `oci-archive:${demo!.archive}:demo` : `oci-archive:${python!.archive}:python3`
      const repository = name === 'demo' ? 'demo' : 'python3'
      const tag = name === 'python-record' ? 'esgz-record' : 'esgz'
      const imageRef = `${s.registry.host}/${repository}:${tag}`
      const extra = name === 'python-record' ? ['--estargz-record-in', record!] : []
      const converted = await convertCached(s, {name, source, extra, repository, tag}, say)
      const layers = await pushedLayers(s, repository, tag)
      say(`  ${name}: ${layers.length} layers, ${mb(layers.reduce((sum, l) => sum + l.size, 0))}${converted.cached ? ' (conversion cached)' : ''}, converted in ${(converted.ms / 1000).toFixed(1)} s`)
      images.push({name, repository, ref: imageRef, command: name === 'demo' ? DEMO_COMMAND : PYTHON_COMMAND, layers, convertMs: converted.ms})
    }

    if (options.rateMbit > 0) {
      shapeNamespace(netns, options.rateMbit)
      say(`link shaped to ${options.rateMbit} Mbit/s (tbf on lo of ${netns})`)
    }
    // run finds the socket in containerd's proxy-plugin config and spawns the snapshotter there.
    const socketFlag = 'snapshotter-socket' in Run.flags ? ['--snapshotter-socket', s.snapshotterSocket] : []

    const results: ImageResult[] = []
    for (const image of images) {
      const result: ImageResult = {name: image.name, ref: image.ref, blobBytes: image.layers.reduce((sum, l) => sum + l.size, 0), convertMs: image.convertMs, lazy: [], lazyRunning: [], full: [], reference: []}
      for (let run = 1; run <= options.runs; run++) {
        // The first run of a full report also measures settling, RSS and read speed (minutes).
        const detailed = run === 1 && (options.modes.length === MODES.length || options.settle)
        const want = (mode: Mode): boolean => options.modes.includes(mode)
        if (want('lazy')) {
          say(`${image.name} run ${run}/${options.runs}: lazy`)
          result.lazy.push(await lazyRun(s, image, {socketFlag, detailed, result}))
          say(`  ${describeRun(result.lazy.at(-1)!)}`)
        }
        if (want('running')) {
          say(`${image.name} run ${run}/${options.runs}: lazy, snapshotter already running`)
          result.lazyRunning.push(await lazyRun(s, image, {socketFlag, detailed: false, preStarted: true, result}))
          say(`  ${describeRun(result.lazyRunning.at(-1)!)}`)
        }
        if (want('reference')) {
          say(`${image.name} run ${run}/${options.runs}: reference`)
          result.reference.push(await referenceRun(ref, s, image, {detailed, run, result}))
          say(`  ${describeRun(result.reference.at(-1)!)}`)
        }
        if (want('full')) {
          say(`${image.name} run ${run}/${options.runs}: full pull`)
          result.full.push(await fullRun(s, image))
          say(`  ${describeRun(result.full.at(-1)!)}`)
        }
      }
      results.push(result)
    }

    if (options.modes.length < MODES.length) {
      say('a subset of --modes: no report written')
      for (const r of results) {
        const med = (runs: ModeRun[]): string => (runs.length ? `${(median(runs.map((x) => x.firstOutputMs)) / 1000).toFixed(2)} s` : '–')
        say(`  ${r.name}: median first output: lazy ${med(r.lazy)}, running ${med(r.lazyRunning)}, reference ${med(r.reference)}, full ${med(r.full)}`)
      }
      return 0
    }
    const environment = `${options.rateMbit > 0 ? `${options.rateMbit} Mbit/s tbf` : 'unshaped'} loopback, ${options.runs} runs, load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`
    const report = formatResults(results, {command, environment})
    process.stdout.write(report + '\n')
    mkdirSync(join(PACKAGE_ROOT, 'dist/bench'), {recursive: true})
    writeFileSync(join(PACKAGE_ROOT, 'dist/bench/startup.json'), JSON.stringify({command, environment, results}, null, 2) + '\n')
    writeResultsSection(join(PACKAGE_ROOT, 'bench/RESULTS.md'), 'Startup', report)
    say('results written to bench/RESULTS.md (## Startup) and dist/bench/startup.json')
    return 0
  } finally {
    say('tearing down')
    await teardown()
  }
}

async function cleanLazyctl(s: LazyctlStack): Promise<void> {
  await s.stopSnapshotter({wipe: true})
  await s.restartContainerd()
  dropPageCache()
}

/**
 * A lazy run from a clean state. `preStarted`: the snapshotter is started (fresh root) before the
 * clock starts, as the reference daemon is — the steady state of a node; otherwise `lazyctl run`
 * starts it inside the timed window.
 */
async function lazyRun(s: LazyctlStack, image: BenchImage, o: {socketFlag: string[]; detailed: boolean; preStarted?: boolean; result: ImageResult}): Promise<ModeRun> {
  await cleanLazyctl(s)
  if (o.preStarted) {
    // Steady state: the daemon answers and containerd's connection to it is up (a fresh containerd
    // may still be backing off its dial), as on a node where both have run for a while.
    const conn = new ContainerdConnection({address: s.containerd.address, namespace: s.containerd.namespace})
    try {
      await ensureSnapshotter({
        socket: s.snapshotterSocket,
        root: s.snapshotterRoot,
        config: s.configFile,
        logFile: join(s.dir, 'snapshotter.log'),
        readyCheck: () => containerdReachesSnapshotter(conn, 'stargz'),
      })
    } finally {
      conn.close()
    }
    dropPageCache()
  }
  const prePid = s.snapshotterPid()
  const cpuBefore = prePid !== undefined ? (cpuTimeMs(prePid) ?? 0) : 0
  const startedAt = Date.now()
  // --network none: the network `ctr run` gives the reference (a namespace with only lo).
  const [cmd, args] = s.lazyctl(['run', '--rm', '--network', 'none', '--snapshotter', 'stargz', ...o.socketFlag, image.ref, ...image.command])
  const run = assertSucceeded(await runTimed(cmd, args, {env: s.env, cpu: true}), `lazy run of ${image.name}`)
  // LAZYCTL_TRACE=1 in the bench's environment: the client's containerd call timings.
  if (process.env.LAZYCTL_TRACE) say(run.stderr.trimEnd())
  const pid = s.snapshotterPid()
  const cpuAfter = pid !== undefined ? cpuTimeMs(pid) : undefined
  const measured = await measure(s, image, run, startedAt)
  measured.clientCpuMs = run.cpuMs
  if (cpuAfter !== undefined) measured.snapshotterCpuMs = cpuAfter - cpuBefore
  if (o.detailed && pid !== undefined) {
    const settled = await settleBackgroundFetch(s, image, startedAt)
    measured.totalBytes = settled.bytes
    measured.settleMs = settled.ms
    measured.backgroundFetch = settled.states
    measured.maxTimesOneByteFetched = settled.maxOverlap
    if (image.name === 'demo') o.result.reads = await readThroughput(s)
  }
  if (pid !== undefined) measured.peakRssBytes = peakRss(pid)
  await s.stopSnapshotter({wipe: true})
  const log = join(s.dir, 'snapshotter.log')
  if (existsSync(log)) {
    renameSync(log, join(LOG_DIR, `${String(timelineCount).padStart(2, '0')}-${image.name}-snapshotter.log`))
  }
  return measured
}

async function fullRun(s: LazyctlStack, image: BenchImage): Promise<ModeRun> {
  await cleanLazyctl(s)
  const startedAt = Date.now()
  const [cmd, args] = s.lazyctl(['run', '--rm', '--network', 'none', '--snapshotter', 'overlayfs', image.ref, ...image.command])
  const run = assertSucceeded(await runTimed(cmd, args, {env: s.env, cpu: true}), `full-pull run of ${image.name}`)
  const measured = await measure(s, image, run, startedAt)
  measured.clientCpuMs = run.cpuMs
  return measured
}

async function referenceRun(ref: ReferenceStack, s: LazyctlStack, image: BenchImage, o: {detailed: boolean; run: number; result: ImageResult}): Promise<ModeRun> {
  const daemon = await ref.restart()
  dropPageCache()
  const daemonPid = daemon.child.pid
  const cpuBefore = daemonPid !== undefined ? (cpuTimeMs(daemonPid) ?? 0) : 0
  const startedAt = Date.now()
  const [pullCmd, pullArgs] = ref.ctrRemote(['image', 'rpull', '--plain-http', image.ref])
  const pull = assertSucceeded(await runTimed(pullCmd, pullArgs, {cpu: true}), `ctr-remote image rpull of ${image.name}`)
  // --seccomp: containerd's default profile, which `lazyctl run` applies as nerdctl does (runc
  // compiles and loads it, ~15 ms): both sides start the same kind of container.
  const [runCmd, runArgs] = ref.ctr(['run', '--rm', '--seccomp', '--snapshotter', 'stargz', image.ref, `bench-${o.run}`, ...image.command])
  const run = assertSucceeded(await runTimed(runCmd, runArgs, {cpu: true}), `ctr run of ${image.name} on the reference`)
  const cpuAfter = daemonPid !== undefined ? cpuTimeMs(daemonPid) : undefined
  const measured = await measure(s, image, run, startedAt)
  measured.clientCpuMs = (pull.cpuMs ?? 0) + (run.cpuMs ?? 0)
  if (cpuAfter !== undefined) measured.snapshotterCpuMs = cpuAfter - cpuBefore
  if (o.detailed && daemon.child.pid !== undefined) {
    const settled = await settleByRegistry(s, image, startedAt)
    measured.totalBytes = settled.bytes
    measured.settleMs = settled.ms
    measured.maxTimesOneByteFetched = settled.maxOverlap
    // Its mount, every chunk local now: the same reads as lazyctl's, for a warm-read comparison.
    if (image.name === 'demo') o.result.referenceReads = await readThroughputIn(fuseMountsUnder(ref.root))
  }
  if (daemon.child.pid !== undefined) measured.peakRssBytes = peakRss(daemon.child.pid)
  await ref.stopSnapshotter({wipe: true})
  return measured
}

const LOG_DIR = join(PACKAGE_ROOT, 'dist/bench/startup-logs')
let timelineCount = 0

/**
 * Keeps, for analysis, each run's timeline: the registry's requests for the image since the start
 * (ms offsets, status, bytes, range) and the first output; and the lazyctl snapshotter's log.
 */
function keepTimeline(image: BenchImage, requests: RegistryRequest[], startedAt: number, run: TimedRun): void {
  mkdirSync(LOG_DIR, {recursive: true})
  const name = `${String(++timelineCount).padStart(2, '0')}-${image.name}`
  const lines = requests
    .filter((r) => r.repository === image.repository && completedAt(r) >= startedAt)
    .map((r) => `${completedAt(r) - startedAt} ms  ${r.method} ${r.kind} ${r.status} ${r.written} ${r.range ? `${r.range.start}-${r.range.end}` : ''} ${r.userAgent}`)
  lines.push(`${run.firstOutputAt! - startedAt} ms  first output`, `${run.exitedAt - startedAt} ms  exit`)
  writeFileSync(join(LOG_DIR, `${name}-registry.txt`), lines.join('\n') + '\n')
}

/** Time to first output from `startedAt`, and bytes the registry served for the image before it and until exit. */
async function measure(s: LazyctlStack, image: BenchImage, run: TimedRun, startedAt: number): Promise<ModeRun> {
  if (run.firstOutputAt === undefined) throw new Error(`${image.name}: the container printed nothing: ${run.stderr.slice(-500)}`)
  const requests = await s.registry.requests()
  keepTimeline(image, requests, startedAt, run)
  const mine = (r: RegistryRequest): boolean => r.repository === image.repository
  return {
    firstOutputMs: run.firstOutputAt - startedAt,
    exitMs: run.exitedAt - startedAt,
    bytesBeforeOutput: bytesServedBetween(requests, startedAt, run.firstOutputAt, mine),
    bytesUntilExit: bytesServedBetween(requests, startedAt, run.exitedAt, mine),
    output: run.stdout.trim(),
  }
}

/**
 * Waits until no lazy layer's background fetch is running (status), then until the registry has
 * served nothing more for QUIET_MS; returns blob bytes served since `since` and the states seen.
 */
async function settleBackgroundFetch(s: LazyctlStack, image: BenchImage, since: number): Promise<{bytes: number; ms: number; states: string[]; maxOverlap: number}> {
  const deadline = Date.now() + 15 * 60_000
  let states: string[] = []
  while (Date.now() < deadline) {
    const status = await querySnapshotterStatus(s.snapshotterSocket).catch(() => undefined)
    states = (status?.layers ?? []).map((l) => `${l.layerDigest.slice(7, 19)}:${l.backgroundFetch ?? '?'}:${l.percentLocal ?? '?'}%`)
    if (status && !status.layers.some((l) => l.backgroundFetch === 'running')) break
    // Paces the status poll; the condition is the daemon reporting no running background fetch.
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
  const settled = await settleByRegistry(s, image, since)
  // Background fetch may start only after a delay (start_delay_sec): the states worth reporting are the final ones.
  const final = await querySnapshotterStatus(s.snapshotterSocket).catch(() => undefined)
  if (final) states = final.layers.map((l) => `${l.layerDigest.slice(7, 19)}:${l.backgroundFetch ?? '?'}:${l.percentLocal ?? '?'}%`)
  return {...settled, states}
}

/**
 * How long the registry must serve nothing more for the image before background fetch counts as
 * settled: the reference starts its background fetch about 5 s after the mount.
 */
const QUIET_MS = 15_000

/** Polls the registry's log until no blob bytes for the image were served for QUIET_MS (or 15 min pass). */
async function settleByRegistry(s: LazyctlStack, image: BenchImage, since: number): Promise<{bytes: number; ms: number; maxOverlap: number}> {
  const deadline = Date.now() + 15 * 60_000
  let last = -1
  let lastChange = Date.now()
  let requests: RegistryRequest[] = []
  while (Date.now() < deadline) {
    requests = await s.registry.requests()
    const bytes = blobBytes(requests, image, since)
    if (bytes !== last) {
      last = bytes
      lastChange = Date.now()
    } else if (Date.now() - lastChange > QUIET_MS) break
    // Paces the poll of the registry's log; the condition is its byte count standing still.
    await new Promise((resolve) => setTimeout(resolve, 500))
  }
  const lastRequest = Math.max(since, ...requests.filter((r) => r.repository === image.repository && completedAt(r) >= since).map(completedAt))
  return {bytes: last, ms: lastRequest - since, maxOverlap: maxTimesFetched(requests, image, since)}
}

function blobBytes(requests: RegistryRequest[], image: BenchImage, since: number): number {
  const digests = new Set(image.layers.map((l) => l.digest))
  return requests.filter((r) => r.method === 'GET' && r.kind === 'blob' && digests.has(r.reference ?? '') && completedAt(r) >= since).reduce((sum, r) => sum + r.written, 0)
}

/** Highest number of times any single blob byte was served since `since` (from the served ranges; full GETs cover all). */
function maxTimesFetched(requests: RegistryRequest[], image: BenchImage, since: number): number {
  let max = 0
  for (const layer of image.layers) {
    const events: [number, number][] = []
    for (const r of requests) {
      if (r.method !== 'GET' || r.kind !== 'blob' || r.reference !== layer.digest || completedAt(r) < since || r.written === 0) continue
      const start = r.range?.start ?? (r.status === 200 ? 0 : (r.readOffsets[0] ?? 0))
      events.push([start, 1], [start + r.written, -1])
    }
    events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    let depth = 0
    for (const [, delta] of events) {
      depth += delta
      max = Math.max(max, depth)
    }
  }
  return max
}

/**
 * Sequential read of the sample text file through the lazy mount and from local disk: the first
 * read through FUSE (what is not local yet comes from the registry over the shaped link), then,
 * with every chunk in the disk cache, cold (page cache dropped) and warm (read again).
 */
async function readThroughput(s: LazyctlStack): Promise<ReadResult | undefined> {
  const status = await querySnapshotterStatus(s.snapshotterSocket)
  return readThroughputIn(status.layers.map((l) => l.mountpoint))
}

/** The FUSE mounts under `root` (the reference snapshotter's layers), from /proc/self/mountinfo. */
function fuseMountsUnder(root: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')).filter((f) => f.length > 9 && f[4]!.startsWith(`${root}/`) && (f[f.indexOf('-') + 1] ?? '').startsWith('fuse')).map((f) => f[4]!.replace(/\\040/g, ' '))
}

async function readThroughputIn(mounts: string[]): Promise<ReadResult | undefined> {
  const demo = await buildDemoImage()
  const relative = demo.sampleFile.image.replace(/^\//, '')
  const mount = mounts.find((mp) => existsSync(join(mp, relative)))
  if (!mount) return undefined
  const read = async (file: string, cold: boolean): Promise<number> => {
    if (cold) dropPageCache()
    const run = assertSucceeded(await runTimed('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M']), `dd ${file}`)
    const m = /(\d+) bytes .* copied, ([\d.e-]+) s/.exec(run.stderr)
    if (!m) throw new Error(`dd printed no statistics: ${run.stderr}`)
    return Number(m[1]) / Number(m[2])
  }
  const fuseFile = join(mount, relative)
  const local = demo.sampleFile.host
  return {
    bytes: statSync(local).size,
    fuseFirst: await read(fuseFile, true),
    fuseCold: await read(fuseFile, true),
    fuseWarm: await read(fuseFile, false),
    localCold: await read(local, true),
    localWarm: await read(local, false),
  }
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`
}

function describeRun(r: ModeRun): string {
  const extra = r.totalBytes !== undefined ? `, total after settling ${mb(r.totalBytes)} (a byte at most ${r.maxTimesOneByteFetched}x)` : ''
  const rss = r.peakRssBytes !== undefined ? `, peak RSS ${mb(r.peakRssBytes)}` : ''
  const cpu = r.clientCpuMs !== undefined ? `, CPU client ${(r.clientCpuMs / 1000).toFixed(2)} s${r.snapshotterCpuMs !== undefined ? ` snapshotter ${(r.snapshotterCpuMs / 1000).toFixed(2)} s` : ''}` : ''
  return `first output ${(r.firstOutputMs / 1000).toFixed(2)} s, exit ${(r.exitMs / 1000).toFixed(2)} s, ${mb(r.bytesBeforeOutput)} before first output, ${mb(r.bytesUntilExit)} until exit${extra}${rss}${cpu}`
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`startup: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
