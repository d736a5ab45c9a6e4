// Benchmark: `lazyctl run --rm IMG true` against `ctr run --rm IMG ID true`, side by side on the same
// image, the same private containerd (test rig) and the same overlayfs snapshots; plus the start-up
// cost of `lazyctl --version`. Measured with hyperfine (apt-get install hyperfine; not needed by
// CI), warm-up runs first, alternating commands. The load average is recorded because the machine
// is shared. Prints a Markdown table for bench/RESULTS.md and writes dist/bench/run-overhead.json.
//
// Usage: node dist/bench/run-overhead.js [--runs N]
import {execFile, execFileSync, spawn} from 'node:child_process'
import {once} from 'node:events'
import {promisify} from 'node:util'
import {mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import {CLI_ENTRY, PACKAGE_ROOT} from '../src/paths.js'
import {startContainerd} from '../test/rig/containerd.js'
import {busyboxImage, pushImage, writeOciArchive} from '../test/rig/images.js'
import {requireCommand} from '../test/rig/process.js'
import {startRegistry} from '../test/rig/registry.js'
import {removeDir, rigTempDir} from '../test/rig/tmp.js'

const args = process.argv.slice(2)
const runs = Number(args[args.indexOf('--runs') + 1] ?? 20) || 20

interface HyperfineResult {
  command: string
  mean: number
  stddev: number
  median: number
  min: number
  max: number
  /** Mean CPU seconds of the measured process itself (not containerd's or the shim's). */
  user: number
  system: number
}

// Child processes run asynchronously: the rig's containerd logs through pipes this process drains,
// and a blocked event loop would stall containerd on a full pipe.
async function hyperfine(commands: Array<{name: string; command: string}>, exportFile: string, env: NodeJS.ProcessEnv): Promise<HyperfineResult[]> {
  const argv = ['--warmup', '3', '--runs', String(runs), '--export-json', exportFile, '--shell', 'none', '--style', 'basic']
  for (const c of commands) argv.push('--command-name', c.name, c.command)
  const child = spawn('hyperfine', argv, {stdio: ['ignore', 'inherit', 'inherit'], env})
  const [status] = (await once(child, 'close')) as [number | null]
  if (status !== 0) throw new Error(`hyperfine failed (${status})`)
  return (JSON.parse(readFileSync(exportFile, 'utf8')) as {results: HyperfineResult[]}).results
}

async function main(): Promise<void> {
  requireCommand('hyperfine', 'hyperfine')
  const dir = rigTempDir('bench-run')
  const containerd = await startContainerd()
  const registry = await startRegistry()
  try {
    const archive = join(dir, 'busybox.tar')
    await writeOciArchive(archive, busyboxImage())
    await pushImage(archive, 'busybox:bench', registry)
    const image = `${registry.host}/busybox:bench`
    const env = {...process.env, LAZYCTL_DATA_ROOT: join(dir, 'data'), CONTAINERD_ADDRESS: containerd.address, CONTAINERD_NAMESPACE: containerd.namespace}
    // Both sides on overlayfs, ctr's default: this measures the client, not the snapshotter. Both
    // under containerd's default seccomp profile (lazyctl applies it as nerdctl does; ctr only with
    // --seccomp): runc compiles and loads the filter, ~15 ms here.
    await promisify(execFile)(process.execPath, [CLI_ENTRY, 'pull', '-q', '--snapshotter', 'overlayfs', image], {env})
    const load = [loadavg()[0]!]
    const runResults = await hyperfine(
      [
        // --network none: ctr run's network (a namespace with only lo); the bridge's cost is in the README.
        {name: 'lazyctl run --rm --network none IMG true', command: `${process.execPath} ${CLI_ENTRY} run --rm --network none --snapshotter overlayfs ${image} true`},
        {name: 'ctr run --rm --seccomp IMG ID true', command: `ctr -a ${containerd.address} -n ${containerd.namespace} run --rm --seccomp ${image} bench-ctr true`},
      ],
      join(dir, 'run.json'),
      env,
    )
    load.push(loadavg()[0]!)
    // The runtime's bare start, on the same Node, alternating with --version: the floor of any start.
    const versionResults = await hyperfine(
      [
        {name: 'lazyctl --version', command: `${process.execPath} ${CLI_ENTRY} --version`},
        {name: `node -e 0 (${process.version})`, command: `${process.execPath} -e 0`},
      ],
      join(dir, 'version.json'),
      env,
    )
    load.push(loadavg()[0]!)
    const [lazy, ctr] = runResults as [HyperfineResult, HyperfineResult]
    const [version, bareNode] = versionResults as [HyperfineResult, HyperfineResult]
    const ms = (s: number) => `${(s * 1000).toFixed(0)} ms`
    const table = [
      '| command | mean ± σ | median | min | max | client CPU (user+sys) |',
      '|---|---|---|---|---|---|',
      ...[...runResults, ...versionResults].map(
        (r) => `| \`${r.command}\` | ${ms(r.mean)} ± ${ms(r.stddev)} | ${ms(r.median)} | ${ms(r.min)} | ${ms(r.max)} | ${ms(r.user + r.system)} |`,
      ),
      '',
      `lazyctl / ctr (mean): **${(lazy.mean / ctr.mean).toFixed(2)}x**; (median): **${(lazy.median / ctr.median).toFixed(2)}x**. ` +
        `lazyctl --version / node -e 0 (mean): **${(version.mean / bareNode.mean).toFixed(2)}x**. ${runs} runs each after 3 warm-ups; 1-min load average ${load.map((l) => l.toFixed(1)).join(' → ')} on ${execFileSync('nproc', {encoding: 'utf8'}).trim()} cores.`,
    ].join('\n')
    process.stdout.write(`\n${table}\n`)
    mkdirSync(join(PACKAGE_ROOT, 'dist', 'bench'), {recursive: true})
    writeFileSync(join(PACKAGE_ROOT, 'dist', 'bench', 'run-overhead.json'), JSON.stringify({runs, load, run: runResults, version: versionResults}, null, 2))
  } finally {
    await containerd.stop()
    await registry.stop()
    removeDir(dir)
  }
}

await main()
