// Benchmark: pod start through containerd's CRI plugin, as kubelet starts a pod, on a node whose
// snapshotter is already running: lazyctl's snapshotter vs the reference stargz snapshotter
// (../shared/tools/stargz-reference), on images converted by lazyctl and by `ctr-remote image
// convert --estargz --oci`, and a full pull through CRI with overlayfs. No CLI is in this path.
//
// Registry, containerd and snapshotters run in a network namespace whose loopback is shaped with
// tc tbf (default 100 Mbit/s). Each run starts from a clean node: the snapshotter on a fresh root,
// a fresh containerd (CRI plugin, `stargz` or `overlayfs`, the offline pause image imported as EKS
// does), page cache dropped; then the kubelet-like client of test/rig/cri.ts makes kubelet's
// calls: RunPodSandbox (hostNetwork), ImageStatus, PullImage, CreateContainer, StartContainer.
// Measured: RunPodSandbox's start to the container's first line in its CRI log file; PullImage's
// time; blob bytes the registry's own log says it served before that first line; the
// snapshotter's CPU time over the run and its peak RSS.
//
// Usage: node dist/bench/pod-start.js [--runs 3] [--rate-mbit 100] [--images demo,python]
//        [--nodes lazyctl,lazyctl-cri,reference,full]
//        Writes bench/RESULTS.md `## Pod start through CRI`. Run as root on an otherwise idle machine.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, renameSync, statSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import {CLI_ENTRY, PACKAGE_ROOT} from '../src/paths.js'
import {startContainerd, unmountUnder, type ContainerdRig} from '../test/rig/containerd.js'
import {CriClient, plainHttpHostsDir, readCriLog, startCriContainerd, type CriRig} from '../test/rig/cri.js'
import {pushImage} from '../test/rig/images.js'
import {startService, waitUntilReady, type ServiceProcess} from '../test/rig/process.js'
import {startRegistry, type RegistryRig, type RegistryRequest} from '../test/rig/registry.js'
import {removeDir, rigTempDir} from '../test/rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from '../test/snapshotter/daemon.js'
import {benchOption} from './lib/args.js'
import {convertCached, pushedLayers} from './lib/converted-image.js'
import {buildDemoImage, buildPythonImage, demoCacheDir, DEMO_COMMAND} from './lib/demo-image.js'
import {NETNS_ENV, reexecInNamespace, shapeNamespace} from './lib/netns.js'
import {PYTHON_COMMAND} from './lib/python-record.js'
import {ensureReferenceBinary} from './lib/reference.js'
import {bytesServedBetween, completedAt} from './lib/registry-window.js'
import {cpuTimeMs, dropPageCache, peakRss} from './lib/stack.js'
import {median, writeResultsSection} from './lib/startup-report.js'
import {onSignalsTearDown} from './lib/teardown.js'

/** lazyctl-cri: kubelet's image calls go to the snapshotter's socket ([cri_keychain]), as `node setup --cri-keychain --kubelet-config` leaves a node. */
type Node = 'lazyctl' | 'lazyctl-cri' | 'reference' | 'full'

interface Variant {
  /** demo or python */
  base: string
  /** Who converted it: lazyctl or ctr-remote. */
  converter: 'lazyctl' | 'ctr-remote'
  repository: string
  ref: string
  command: string[]
  layers: {digest: string; size: number}[]
}

interface PodRun {
  firstLineMs: number
  pullMs: number
  bytesBeforeFirstLine: number
  snapshotterCpuMs?: number
  peakRssBytes?: number
}

const t0 = performance.now()
function say(line: string): void {
  process.stderr.write(`pod-start [${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`)
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2)
  const runs = Number(benchOption('--runs', argv) ?? 3)
  const rateMbit = Number(benchOption('--rate-mbit', argv) ?? 100)
  const bases = (benchOption('--images', argv) ?? 'demo,python').split(',')
  // A subset of nodes is for quick checks: the report then has gaps.
  const nodes = (benchOption('--nodes', argv) ?? 'lazyctl,lazyctl-cri,reference,full').split(',') as Node[]
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs: want a positive integer')
  if (bases.some((b) => b !== 'demo' && b !== 'python')) throw new Error('--images: demo and/or python')
  if (process.getuid?.() !== 0) throw new Error('run as root (containerd, FUSE, network namespaces, drop_caches)')
  const netns = process.env[NETNS_ENV]
  if (!netns) return reexecInNamespace(`lazyctl-pods-${process.pid}`)
  const command = `node dist/bench/pod-start.js --runs ${runs} --rate-mbit ${rateMbit} --images ${bases.join(',')}${benchOption('--nodes', argv) ? ` --nodes ${nodes.join(',')}` : ''}`
  const referenceBinary = ensureReferenceBinary()

  const dir = rigTempDir('pod-bench')
  let registry: RegistryRig | undefined
  let node: RunningNode | undefined
  let tearingDown: Promise<void> | undefined
  const teardown = (): Promise<void> =>
    (tearingDown ??= (async () => {
      await node?.stop().catch((err: unknown) => say(`teardown of the node: ${String(err)}`))
      await registry?.stop().catch((err: unknown) => say(`teardown of the registry: ${String(err)}`))
      unmountUnder(dir)
      removeDir(dir)
    })())
  onSignalsTearDown(teardown, say)
  try {
    registry = await startRegistry()
    const reg = registry
    const hostsDir = plainHttpHostsDir(dir, reg.host)
    const lazyctl = (args: string[]): [string, string[]] => [process.execPath, [CLI_ENTRY, ...args]]
    const converter = {lazyctl, env: process.env, registry: reg}

    const variants: Variant[] = []
    for (const base of bases) {
      say(`building ${base} (cached in ${demoCacheDir()})`)
      const archive = base === 'demo' ? (await buildDemoImage({onProgress: say})).archive : (await buildPythonImage({onProgress: say})).archive
      const tag = base === 'demo' ? 'demo' : 'python3'
      const repository = base === 'demo' ? 'demo' : 'python3'
      const commandOf = base === 'demo' ? DEMO_COMMAND : PYTHON_COMMAND
      await convertCached(converter, {name: base, source: `oci-archive:${archive}:${tag}`, extra: [], repository, tag: 'esgz'}, say)
      variants.push({base, converter: 'lazyctl', repository, ref: `${reg.host}/${repository}:esgz`, command: commandOf, layers: await pushedLayers(converter, repository, 'esgz')})
      await convertWithCtrRemote(dir, reg, archive, tag, repository)
      variants.push({base, converter: 'ctr-remote', repository, ref: `${reg.host}/${repository}:ctr-remote`, command: commandOf, layers: await pushedLayers(converter, repository, 'ctr-remote')})
    }
    if (rateMbit > 0) {
      shapeNamespace(netns, rateMbit)
      say(`link shaped to ${rateMbit} Mbit/s (tbf on lo of ${netns})`)
    }

    const results = new Map<string, PodRun[]>()
    const record = (key: string, run: PodRun): void => {
      results.set(key, [...(results.get(key) ?? []), run])
      say(`  first line ${(run.firstLineMs / 1000).toFixed(2)} s (PullImage ${(run.pullMs / 1000).toFixed(2)} s), ${mb(run.bytesBeforeFirstLine)} before it${run.snapshotterCpuMs !== undefined ? `, snapshotter CPU ${(run.snapshotterCpuMs / 1000).toFixed(2)} s, peak RSS ${mb(run.peakRssBytes ?? 0)}` : ''}`)
    }
    for (let run = 1; run <= runs; run++) {
      for (const variant of variants) {
        for (const kind of (['lazyctl', 'lazyctl-cri', 'reference'] as const).filter((k) => nodes.includes(k))) {
          say(`${variant.base} (${variant.converter}-converted) run ${run}/${runs}: ${kind}`)
          node = await startNode(kind, dir, hostsDir, referenceBinary)
          record(`${variant.base}|${variant.converter}|${kind}`, await podRun(node, reg, variant, `${kind}-${run}`))
          await node.stop()
          node = undefined
        }
        if (variant.converter === 'lazyctl' && nodes.includes('full')) {
          say(`${variant.base} run ${run}/${runs}: full pull (overlayfs)`)
          node = await startNode('full', dir, hostsDir, referenceBinary)
          record(`${variant.base}|lazyctl|full`, await podRun(node, reg, variant, `full-${run}`))
          await node.stop()
          node = undefined
        }
      }
    }

    const environment = `${rateMbit > 0 ? `${rateMbit} Mbit/s tbf` : 'unshaped'} loopback, ${runs} runs per cell from a clean node, load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`
    const report = formatReport(variants, results, {command, environment})
    process.stdout.write(report + '\n')
    writeResultsSection(join(PACKAGE_ROOT, 'bench/RESULTS.md'), 'Pod start through CRI', report)
    say('results written to bench/RESULTS.md (## Pod start through CRI)')
    return 0
  } finally {
    say('tearing down')
    await teardown()
  }
}

/** A node as it is before kubelet's first call: snapshotter running on a fresh root, a fresh containerd, pause imported. */
interface RunningNode {
  kind: Node
  cri: CriRig
  /** Where kubelet sends image calls: containerd's socket, or the snapshotter's. */
  imageEndpoint: string
  snapshotterPid(): number | undefined
  stop(): Promise<void>
}

let nodeCount = 0

async function startNode(kind: Node, dir: string, hostsDir: string, referenceBinary: string): Promise<RunningNode> {
  const nodeDir = join(dir, `node-${++nodeCount}`)
  mkdirSync(nodeDir, {recursive: true})
  const socket = join(nodeDir, 'snapshotter.sock')
  const containerdSocket = join(nodeDir, 'containerd.sock')
  let lazy: SnapshotterDaemon | undefined
  let reference: ServiceProcess | undefined
  if (kind === 'lazyctl' || kind === 'lazyctl-cri') {
    const keychain = kind === 'lazyctl-cri' ? `[cri_keychain]\nenable_keychain = true\nimage_service_path = ${JSON.stringify(containerdSocket)}\n` : ''
    lazy = await startSnapshotterDaemon({dir: join(nodeDir, 'lazyctl'), socket, logLevel: 'info', config: keychain})
  } else if (kind === 'reference') {
    const root = join(nodeDir, 'reference-root')
    mkdirSync(root)
    reference = startService('stargz-reference', referenceBinary, ['-address', socket, '-root', root], {logFile: join(nodeDir, 'reference.log')})
    await waitUntilReady(reference, 'its socket answering', async () => existsSync(socket))
  }
  const cri = await startCriContainerd({snapshotterSocket: socket, address: containerdSocket, hostsDir, snapshotter: kind === 'full' ? 'overlayfs' : 'stargz'})
  if (kind !== 'full') await cri.waitForSnapshotter()
  dropPageCache()
  return {
    kind,
    cri,
    imageEndpoint: kind === 'lazyctl-cri' ? socket : containerdSocket,
    snapshotterPid: () => lazy?.process.child.pid ?? reference?.child.pid,
    async stop() {
      await cri.stop()
      await lazy?.stop()
      await reference?.stop()
      unmountUnder(nodeDir)
      removeDir(nodeDir)
    },
  }
}

async function podRun(node: RunningNode, registry: RegistryRig, variant: Variant, name: string): Promise<PodRun> {
  const pid = node.snapshotterPid()
  const cpuBefore = pid === undefined ? undefined : cpuTimeMs(pid)
  const logDirectory = join(node.cri.containerd.dir, 'pods', name)
  const kubelet = new CriClient(node.cri.containerd.address, node.imageEndpoint)
  try {
    const startedAt = Date.now()
    const pod = await kubelet.startPod({name, image: variant.ref, command: variant.command, logDirectory})
    const firstLineAt = await firstLogLine(pod.logPath, startedAt)
    const cpuAfter = pid === undefined ? undefined : cpuTimeMs(pid)
    const status = await kubelet.waitForExit(pod.containerId)
    if (status.exit_code !== 0) throw new Error(`${variant.ref} on ${node.kind}: exit ${status.exit_code} ${status.reason}: ${readCriLog(pod.logPath).map((l) => l.content).join(' | ')}`)
    const requests = await registry.requests()
    const mine = (r: RegistryRequest): boolean => r.repository === variant.repository && r.kind === 'blob'
    const run: PodRun = {firstLineMs: firstLineAt - startedAt, pullMs: pod.timings.pull - pod.timings.sandbox, bytesBeforeFirstLine: bytesServedBetween(requests, startedAt, firstLineAt, mine)}
    if (process.env.POD_BENCH_DEBUG) {
      for (const r of requests.filter((r) => mine(r) && r.method === 'GET' && completedAt(r) >= startedAt)) say(`    ${completedAt(r) - startedAt} ms ${r.status} ${r.written} ${r.reference} ${r.userAgent}`)
    }
    if (cpuBefore !== undefined && cpuAfter !== undefined) run.snapshotterCpuMs = cpuAfter - cpuBefore
    if (pid !== undefined) {
      const rss = peakRss(pid)
      if (rss !== undefined) run.peakRssBytes = rss
    }
    await kubelet.removePod(pod.sandboxId)
    return run
  } finally {
    kubelet.close()
  }
}

/** When the container's first line reached its CRI log (file polled every 5 ms: the measurement's resolution). */
async function firstLogLine(path: string, since: number): Promise<number> {
  const deadline = since + 15 * 60_000
  while (Date.now() < deadline) {
    if (existsSync(path) && statSync(path).size > 0) return Date.now()
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  throw new Error(`no line in ${path} after 15 minutes`)
}

/**
 * The image converted by `ctr-remote image convert --estargz --oci` in a private containerd, kept as
 * an OCI archive in the demo cache (keyed by the source archive's size and mtime), pushed to `registry`.
 */
async function convertWithCtrRemote(dir: string, registry: RegistryRig, archive: string, tag: string, repository: string): Promise<void> {
  const st = statSync(archive)
  const cached = join(demoCacheDir(), `ctr-remote-${repository}-${st.size}-${Math.round(st.mtimeMs)}.tar`)
  if (!existsSync(cached)) {
    say(`converting ${repository} with ctr-remote image convert --estargz --oci (once; cached as ${cached})`)
    let containerd: ContainerdRig | undefined
    try {
      containerd = await startContainerd({snapshotterSocket: join(dir, 'unused.sock')})
      const source = `bench.local/${repository}:${tag}`
      const target = `bench.local/${repository}:ctr-remote`
      containerd.ctr(['images', 'import', '--no-unpack', '--base-name', `bench.local/${repository}`, archive])
      const started = performance.now()
      execFileSync('ctr-remote', ['-a', containerd.address, '-n', containerd.namespace, 'image', 'convert', '--estargz', '--oci', source, target], {stdio: 'ignore'})
      say(`  ctr-remote converted ${repository} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
      containerd.ctr(['images', 'export', `${cached}.part`, target])
      renameSync(`${cached}.part`, cached)
    } finally {
      await containerd?.stop()
    }
  }
  await pushImage(`oci-archive:${cached}`, `${repository}:ctr-remote`, registry, {sourceTag: 'ctr-remote'})
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`
}

function formatReport(variants: Variant[], results: Map<string, PodRun[]>, meta: {command: string; environment: string}): string {
  const cell = (key: string, pick: (r: PodRun) => number | undefined, format: (v: number) => string): string => {
    const values = (results.get(key) ?? []).map(pick).filter((v): v is number => v !== undefined)
    return values.length ? format(median(values)) : '–'
  }
  const lines = [
    `Command: \`${meta.command}\` (${meta.environment}). Medians; "first line" is RunPodSandbox's start to the`,
    "container's first line in its CRI log; bytes are blob bytes the registry's log shows served before it.",
    '',
    '"lazyctl": kubelet\'s image calls to containerd, as for the reference; "lazyctl, image service": to the snapshotter\'s socket',
    '([cri_keychain], what `node setup --cri-keychain --kubelet-config` sets up), which starts reading the layers at PullImage.',
    '',
    '| image | converted by | lazyctl | lazyctl, image service | reference | lazyctl / reference | image service / reference | bytes lazyctl / reference | full pull (overlayfs) | full / lazyctl | snapshotter CPU lazyctl / reference | peak RSS lazyctl / reference |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for (const v of variants) {
    const k = (node: Node): string => `${v.base}|${v.converter}|${node}`
    // A node left out of the run (--nodes) is a gap: '–', not NaN.
    const firstLine = (node: Node): number | undefined => {
      const runs = results.get(k(node)) ?? []
      return runs.length ? median(runs.map((r) => r.firstLineMs)) : undefined
    }
    const timed = (node: Node): string => {
      const ms = firstLine(node)
      return ms === undefined ? '–' : `${seconds(ms)} (${(results.get(k(node)) ?? []).map((r) => (r.firstLineMs / 1000).toFixed(2)).join(', ')})`
    }
    const ratio = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined ? '–' : `${(a / b).toFixed(2)}x`)
    const lazy = firstLine('lazyctl')
    const ref = firstLine('reference')
    const viaSocket = firstLine('lazyctl-cri')
    const fullRuns = results.get(`${v.base}|lazyctl|full`) ?? []
    const full = fullRuns.length ? median(fullRuns.map((r) => r.firstLineMs)) : undefined
    lines.push(`| ${v.base} | ${v.converter} | ${timed('lazyctl')} | ${timed('lazyctl-cri')} | ${timed('reference')} | ${ratio(lazy, ref)} | ${ratio(viaSocket, ref)} | ${cell(k('lazyctl'), (r) => r.bytesBeforeFirstLine, mb)} / ${cell(k('reference'), (r) => r.bytesBeforeFirstLine, mb)} | ${v.converter === 'lazyctl' && full !== undefined ? seconds(full) : '–'} | ${v.converter === 'lazyctl' && full !== undefined && lazy !== undefined ? `${(full / lazy).toFixed(0)}x` : '–'} | ${cell(k('lazyctl'), (r) => r.snapshotterCpuMs, seconds)} / ${cell(k('reference'), (r) => r.snapshotterCpuMs, seconds)} | ${cell(k('lazyctl'), (r) => r.peakRssBytes, mb)} / ${cell(k('reference'), (r) => r.peakRssBytes, mb)} |`)
  }
  return lines.join('\n')
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`pod-start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
