// Finds what test rigs left behind: processes started from a rig dir, mounts below one, rig dirs,
// and network namespaces the benchmarks or tests named lazyctl-*. Run as a script after the test
// suite (scripts/test does) it fails the run when anything is left.
import {execFileSync} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {RIG_PREFIX} from './tmp.js'

export interface Leftovers {
  processes: string[]
  mounts: string[]
  dirs: string[]
  netns: string[]
}

/**
 * Everything below `base` (default: the OS temp dir) that a rig created and did not remove.
 * Network namespaces are machine-wide, so they are only looked at for the default base (a scoped
 * check must not blame a benchmark running beside it).
 */
export function findLeftovers(base = tmpdir()): Leftovers {
  const rigRoot = (path: string) => path.startsWith(join(base, RIG_PREFIX))
  const processes: string[] = []
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    if (Number(pid) === process.pid) continue
    let cmdline: string
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
    } catch {
      continue // exited meanwhile
    }
    if (cmdline.split(' ').some(rigRoot) || cmdline.includes(`${join(base, RIG_PREFIX)}`)) processes.push(`${pid} ${cmdline}`)
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((target) => target.replace(/\\040/g, ' '))
    .filter(rigRoot)
  const dirs = readdirSync(base)
    .filter((name) => name.startsWith(RIG_PREFIX))
    .map((name) => join(base, name))
  const netns = base === tmpdir() ? lazyctlNamespaces() : []
  return {processes, mounts, dirs, netns}
}

function lazyctlNamespaces(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], {encoding: 'utf8'})
      .split('\n')
      .map((line) => line.split(' ')[0] ?? '')
      .filter((name) => name.startsWith('lazyctl-'))
  } catch {
    return [] // iproute2 missing: nothing we could have created either
  }
}

export function describeLeftovers(found: Leftovers): string[] {
  return [
    ...found.processes.map((p) => `process: ${p}`),
    ...found.mounts.map((m) => `mount: ${m}`),
    ...found.dirs.map((d) => `dir: ${d}`),
    ...found.netns.map((n) => `netns: ${n}`),
  ]
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const lines = describeLeftovers(findLeftovers())
  if (lines.length > 0) {
    process.stderr.write(`test rig left these behind:\n${lines.map((l) => `  ${l}`).join('\n')}\n`)
    process.exit(1)
  }
  process.stdout.write('test rig: nothing left behind\n')
}
