// Benchmark: `lazyctl node setup` on a fleet of 20 SSH targets (20 real sshd servers on loopback
// ports, each target baking its own offline root), with --concurrency 1 and --concurrency 10.
// Two plans: "config" (--skip install: detection, FUSE, lazyctl config, unit, containerd merge;
// latency-bound, a dozen SSH round trips per host) and "full" (also streams the ~180 MB program
// to every node; bound by CPU and disk on this 2-core machine, where sender and nodes share the
// cores). Every measured run starts from fresh roots, so each is a first-time setup. The machine
// is shared: the load average is recorded beside each run.
//
// Usage: node dist/bench/node-fleet.js [--hosts 20] [--repeat 1] [--only config|full]
import {spawn} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {loadavg} from 'node:os'
import {join} from 'node:path'
import {startSshd, type SshdRig} from '../test/rig/sshd.js'
import {removeDir, rigTempDir} from '../test/rig/tmp.js'
import {freezeApp, makeEksRoot, type FrozenApp} from '../test/node/helpers.js'
import {benchOption} from './lib/args.js'

const flag = benchOption
const HOSTS = Number(flag('--hosts') ?? 20)
const REPEAT = Number(flag('--repeat') ?? 1)
const ONLY = flag('--only')
const CONCURRENCY = [1, 10]

interface Measurement {
  plan: string
  concurrency: number
  seconds: number
  ok: boolean
  load: number
}

function runSetup(app: FrozenApp, inventory: string, knownHosts: string, key: string, concurrency: number, extra: string[]): Promise<{seconds: number; code: number; stderr: string}> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint()
    const env = {...process.env}
    delete env.SSH_AUTH_SOCK
    const child = spawn(process.execPath, [app.entry, 'node', 'setup', '--inventory', inventory, '-i', key, '--known-hosts', knownHosts, '--concurrency', String(concurrency), ...extra], {env, stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({seconds: Number(process.hrtime.bigint() - start) / 1e9, code: code ?? 1, stderr}))
  })
}

async function main(): Promise<void> {
  const servers: SshdRig[] = []
  const work = rigTempDir('bench-fleet')
  const app = freezeApp()
  const results: Measurement[] = []
  try {
    const first = await startSshd()
    servers.push(first)
    const pub = readFileSync(`${first.clientKey}.pub`, 'utf8').trim()
    while (servers.length < HOSTS) servers.push(await startSshd({authorizedKeys: [pub]}))
    const knownHosts = join(work, 'known_hosts')
    writeFileSync(knownHosts, servers.map((s) => readFileSync(s.knownHosts, 'utf8')).join(''))
    const plans = [
      {name: 'config', extra: ['--skip', 'install']},
      {name: 'full', extra: []},
    ].filter((p) => !ONLY || p.name === ONLY)
    for (const plan of plans) {
      for (let rep = 0; rep < REPEAT; rep++) {
        for (const concurrency of CONCURRENCY) {
          const roots = servers.map(() => makeEksRoot('bench-root'))
          const inventory = join(work, 'inventory')
          writeFileSync(inventory, servers.map((s, i) => `${s.target} root=${roots[i]}`).join('\n') + '\n')
          const load = loadavg()[0]!
          const r = await runSetup(app, inventory, knownHosts, first.clientKey, concurrency, plan.extra)
          for (const root of roots) removeDir(root)
          results.push({plan: plan.name, concurrency, seconds: r.seconds, ok: r.code === 0, load})
          process.stderr.write(`${plan.name} concurrency=${concurrency}: ${r.seconds.toFixed(2)} s, exit ${r.code}, load ${load.toFixed(2)}\n`)
          if (r.code !== 0) process.stderr.write(r.stderr.split('\n').slice(-5).join('\n') + '\n')
        }
      }
    }
  } finally {
    for (const s of servers) await s.stop()
    app.remove()
    removeDir(work)
  }
  const lines = [`| plan | hosts | concurrency 1 (s) | concurrency 10 (s) | speed-up | load avg (1 / 10) |`, `|---|---|---|---|---|---|`]
  for (const plan of [...new Set(results.map((r) => r.plan))]) {
    const med = (c: number) => median(results.filter((r) => r.plan === plan && r.concurrency === c).map((r) => r.seconds))
    const load = (c: number) => median(results.filter((r) => r.plan === plan && r.concurrency === c).map((r) => r.load)).toFixed(2)
    const allOk = results.filter((r) => r.plan === plan).every((r) => r.ok)
    lines.push(`| ${plan}${allOk ? '' : ' (FAILED runs)'} | ${HOSTS} | ${med(1).toFixed(2)} | ${med(10).toFixed(2)} | ${(med(1) / med(10)).toFixed(2)}× | ${load(1)} / ${load(10)} |`)
  }
  process.stdout.write(lines.join('\n') + '\n')
  writeFileSync(join('dist', 'bench', 'node-fleet.json'), JSON.stringify(results, null, 2))
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s.length ? (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2 : NaN
}

await main()
