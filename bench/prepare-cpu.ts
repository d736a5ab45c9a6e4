// Benchmark: what the snapshotter daemon spends on the Prepares of a two-layer lazy image, as
// containerd's unpacker sends them one after the other: the demo-sized base layer (the rig's
// Debian root, 8,364 TOC entries: bench/toc-open's layer) and a small top layer. For each
// Prepare: wall time until the answer, and the daemon's CPU time (utime + stime of every thread,
// /proc/<pid>/stat, 10 ms ticks) over both. Prefetch and background fetch are off, so the work
// is resolution, TOC and mount only. Registry and daemon on loopback, no shaping: this measures
// CPU and local round trips, not a slow link.
//
// With --baseline ROOT (the package root of another build, e.g. `git archive` of an older commit
// built with tsc), each run starts a fresh daemon of each build in turn, so both see the same load.
//
// Usage: node dist/bench/prepare-cpu.js [--runs 5] [--baseline /tmp/old-lazyctl]
import {createHash, randomBytes} from 'node:crypto'
import {createReadStream, existsSync, mkdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import {CLI_ENTRY} from '../src/paths.js'
import {parseReference} from '../src/oci/reference.js'
import type {Digest} from '../src/oci/digest.js'
import {RegistryClient} from '../src/registry/client.js'
import {probeSnapshotter} from '../src/snapshotter/status-service.js'
import {buildEstargzFixture} from '../test/lazyfs/estargz-fixture.js'
import {unmountUnder} from '../test/rig/containerd.js'
import {rigCacheDir} from '../test/rig/images.js'
import {startService, waitUntilReady} from '../test/rig/process.js'
import {startRegistry} from '../test/rig/registry.js'
import {removeDir, rigTempDir} from '../test/rig/tmp.js'
import {SnapshotsClient} from '../test/snapshotter/snapshots-client.js'
import {benchOption} from './lib/args.js'

const option = benchOption
const RUNS = Number(option('--runs') ?? 5)
const BASELINE = option('--baseline')

interface Layer {
  blob: string
  digest: string
  size: number
  tocDigest: string
}

interface Sample {
  baseMs: number
  topMs: number
  cpuMs: number
}

const TICK_MS = 10

/** utime + stime of the process (all threads), in ms. */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}`
}

async function main(): Promise<void> {
  const work = rigTempDir('prepare-cpu')
  const registry = await startRegistry()
  try {
    const basePath = join(rigCacheDir(), 'bench-toc-open-debootstrap-fb1186417eb02009.estargz')
    if (!existsSync(basePath)) throw new Error(`${basePath} is missing: run node dist/bench/toc-open.js first (it builds it)`)
    const baseMeta = JSON.parse(readFileSync(`${basePath}.json`, 'utf8')) as {tocDigest: string}
    const top = await buildEstargzFixture(work, 'top', [{path: 'app/run.sh', kind: 'reg', mode: 0o755, data: randomBytes(50_000)}])
    const layers: Layer[] = [
      {blob: basePath, digest: await sha256File(basePath), size: statSync(basePath).size, tocDigest: baseMeta.tocDigest},
      {blob: top.blob, digest: top.result.blobDigest, size: top.result.blobSize, tocDigest: top.result.tocDigest},
    ]
    const imageRef = `${registry.host}/bench/prepare:v1`
    const client = new RegistryClient()
    try {
      for (const l of layers) await client.pushBlob(parseReference(imageRef), {digest: l.digest as Digest, size: l.size}, () => createReadStream(l.blob))
    } finally {
      await client.close()
    }
    const builds: Array<[string, string]> = [['this build', CLI_ENTRY]]
    if (BASELINE) builds.push(['baseline', join(BASELINE, 'bin', 'run.js')])
    const samples = new Map<string, Sample[]>(builds.map(([name]) => [name, []]))
    const load = loadavg()[0]!.toFixed(2)
    for (let run = 0; run < RUNS; run++) {
      for (const [name, entry] of builds) samples.get(name)!.push(await prepareBoth(entry, work, `${run}-${name}`, imageRef, layers))
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
    console.log(`two-layer image (base ${(layers[0]!.size / 1e6).toFixed(1)} MB, 8,364 TOC entries; top ${(layers[1]!.size / 1e3).toFixed(0)} kB); ${RUNS} runs; load average ${load} → ${loadavg()[0]!.toFixed(2)}`)
    console.log('')
    console.log('| median of runs | Prepare base layer, ms | Prepare top layer, ms | daemon CPU for both, ms |')
    console.log('|---|---|---|---|')
    for (const [name, list] of samples) {
      console.log(`| ${name} | ${median(list.map((s) => s.baseMs))} | ${median(list.map((s) => s.topMs))} | ${median(list.map((s) => s.cpuMs))} |`)
    }
  } finally {
    await registry.stop()
    unmountUnder(work)
    removeDir(work)
  }
}

/** A fresh daemon of the build at `entry`; the two Prepares back to back; the daemon stopped. */
async function prepareBoth(entry: string, work: string, tag: string, imageRef: string, layers: Layer[]): Promise<Sample> {
  const dir = join(work, `daemon-${tag}`.replace(/\W+/g, '-'))
  mkdirSync(join(dir, 'root'), {recursive: true})
  const socket = join(dir, 's.sock')
  const config = join(dir, 'config.toml')
  writeFileSync(config, '[prefetch]\nenable = false\n[background_fetch]\nenable = false\n')
  const daemonArgs = [entry, 'snapshotter', 'serve', '--socket', socket, '--root', join(dir, 'root'), '--config', config, '--log-level', 'info']
  const svc = startService('lazyctl-snapshotter', process.execPath, daemonArgs, {logFile: join(dir, 'daemon.log')})
  try {
    await waitUntilReady(svc, 'its status answering', async () => (await probeSnapshotter(socket, 500)).state === 'lazyctl', 60_000)
    const pid = svc.child.pid!
    const client = new SnapshotsClient(socket)
    try {
      const cpu0 = cpuOf(pid)
      const times: number[] = []
      for (const [i, layer] of layers.entries()) {
        const started = performance.now()
        const answer = await client.prepare(`extract-${tag}-${i}`, '', {
          'containerd.io/snapshot.ref': `sha256:${createHash('sha256').update(`${tag}-${i}`).digest('hex')}`,
          'containerd.io/snapshot/cri.image-ref': imageRef,
          'containerd.io/snapshot/cri.layer-digest': layer.digest,
          'containerd.io/snapshot/cri.image-layers': layers.slice(i).map((l) => l.digest).join(','),
          'containerd.io/snapshot/stargz/toc.digest': layer.tocDigest,
        }).then(() => 'not lazy', (err: {code?: number}) => (err.code === 6 ? 'lazy' : `failed: ${String(err)}`))
        times.push(Math.round(performance.now() - started))
        if (answer !== 'lazy') throw new Error(`layer ${i} was not served lazily (${answer}); see ${join(dir, 'daemon.log')}`)
      }
      return {baseMs: times[0]!, topMs: times[1]!, cpuMs: cpuOf(pid) - cpu0}
    } finally {
      client.close()
    }
  } finally {
    await svc.stop()
    unmountUnder(dir)
  }
}

await main()
