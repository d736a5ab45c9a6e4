// Benchmark: how long `lazyctl snapshotter serve` takes from spawn to serving (the "ready" line it
// writes to --ready-fd, as when `lazyctl run` spawns it), its CPU time until then, and its resident
// memory once idle. A fresh root and socket each run; no containerd or registry is involved.
//
// Usage: node dist/bench/daemon-start.js [--runs 10]
import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import type {Readable} from 'node:stream'
import {CLI_ENTRY} from '../src/paths.js'
import {benchNumber} from './lib/args.js'
import {cpuTimeMs} from './lib/stack.js'

const runs = benchNumber('--runs', 10)

function statusKb(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`))
  return Number(line?.split(/\s+/)[1] ?? NaN)
}

const samples: Array<{readyMs: number; cpuMs: number; rssKb: number; anonKb: number; fileKb: number}> = []
for (let i = 0; i < runs; i++) {
  const dir = mkdtempSync(join(tmpdir(), 'lazyctl-daemon-start-'))
  const started = performance.now()
  const child = spawn(process.execPath, [CLI_ENTRY, 'snapshotter', 'serve', '--socket', join(dir, 's.sock'), '--root', join(dir, 'root'), '--config', '/dev/null', '--ready-fd', '3'], {
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  })
  try {
    await once(child.stdio[3] as Readable, 'data')
    const readyMs = performance.now() - started
    const cpuMs = cpuTimeMs(child.pid!) ?? NaN
    // Idle: the HTTP client it preloads after "ready" is in, nothing else is going on.
    await new Promise((resolve) => setTimeout(resolve, 1000))
    samples.push({readyMs, cpuMs, rssKb: statusKb(child.pid!, 'VmRSS'), anonKb: statusKb(child.pid!, 'RssAnon'), fileKb: statusKb(child.pid!, 'RssFile')})
  } finally {
    child.kill('SIGTERM')
    await once(child, 'exit')
    rmSync(dir, {recursive: true, force: true})
  }
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const row = (name: string, values: number[], unit: string): string =>
  `| ${name} | ${median(values).toFixed(0)} ${unit} | ${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)} ${unit} |`
process.stdout.write(
  [
    `| daemon start (${runs} runs, ${process.version}) | median | min–max |`,
    '|---|---|---|',
    row('spawn → ready', samples.map((s) => s.readyMs), 'ms'),
    row('CPU until ready', samples.map((s) => s.cpuMs), 'ms'),
    row('idle RSS', samples.map((s) => s.rssKb / 1024), 'MB'),
    row('of it anonymous', samples.map((s) => s.anonKb / 1024), 'MB'),
    row('of it file-backed (the node binary, libraries)', samples.map((s) => s.fileKb / 1024), 'MB'),
  ].join('\n') + '\n',
)
