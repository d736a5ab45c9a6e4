// A realistic root filesystem for tests: Debian bookworm (minbase) with extra packages (python3 by
// default), made with debootstrap from the apt mirror this machine already uses.
//
// Built once, reused by every later test run: the root lives in the rig cache dir
// (`$LAZYCTL_TEST_CACHE`, default /var/cache/lazyctl-test) as `debootstrap-<hash>`, where the hash
// covers suite, variant and package list. It is built in a temp dir beside it and renamed into
// place, so a half-built root (interrupted run, failed download) is never used; a lock file keeps
// two test processes from building the same root at once. Downloaded .debs are kept in
// `debootstrap-debs/`, so a rebuild with another package list downloads only what is new.
// A first build took 1 min 54 s here (2 cores, busy, download included); delete the dir to rebuild.
import {execFile} from 'node:child_process'
import {createHash, randomUUID} from 'node:crypto'
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync} from 'node:fs'
import {basename, join} from 'node:path'
import {setTimeout as delay} from 'node:timers/promises'
import {rigCacheDir} from './images.js'
import {requireCommand} from './process.js'
import {unmountUnder} from './containerd.js'

export interface DebootstrapOptions {
  /** Extra packages (debootstrap --include). Default ['python3']. */
  include?: string[]
  /** Default 'bookworm'. */
  suite?: string
  /** Default 'minbase'. */
  variant?: 'minbase' | 'buildd'
  /** Default: $LAZYCTL_DEBIAN_MIRROR, else the machine's apt source for the suite. */
  mirror?: string
  /** How long to wait for another process building the same root. Default 15 min. */
  waitMs?: number
}

const LAYOUT_VERSION = 'v1'

/** Path of a cached Debian root built with `options`; builds it first if it is not there yet. */
export async function debootstrapRoot(options: DebootstrapOptions = {}): Promise<string> {
  const suite = options.suite ?? 'bookworm'
  const variant = options.variant ?? 'minbase'
  const include = [...new Set(options.include ?? ['python3'])].sort()
  // The mirror is left out of the key on purpose: the same suite from another mirror is the same root.
  const key = createHash('sha256').update(JSON.stringify({suite, variant, include, LAYOUT_VERSION})).digest('hex').slice(0, 16)
  const cache = rigCacheDir()
  const target = join(cache, `debootstrap-${key}`)
  if (existsSync(target)) return target
  requireCommand('debootstrap', 'debootstrap')
  mkdirSync(cache, {recursive: true})
  const lock = `${target}.lock`
  await acquireLock(lock, target, options.waitMs ?? 15 * 60_000)
  try {
    if (existsSync(target)) return target // built by the process that held the lock
    // Holding the lock, any temp build of this root is a leftover of a killed run.
    for (const name of readdirSync(cache).filter((n) => n.startsWith(`${basename(target)}.tmp-`))) {
      unmountUnder(join(cache, name))
      rmSync(join(cache, name), {recursive: true, force: true})
    }
    const mirror = options.mirror ?? process.env.LAZYCTL_DEBIAN_MIRROR ?? aptMirrorFor(suite)
    const tmp = `${target}.tmp-${randomUUID()}`
    const debs = join(cache, 'debootstrap-debs')
    mkdirSync(debs, {recursive: true})
    const logFile = `${target}.log`
    try {
      const args = [`--variant=${variant}`, `--cache-dir=${debs}`, ...(include.length ? [`--include=${include.join(',')}`] : []), suite, tmp, mirror]
      await new Promise<void>((resolve, reject) => {
        execFile('debootstrap', args, {maxBuffer: 64 << 20}, (err, stdout, stderr) => {
          writeFileSync(logFile, `debootstrap ${args.join(' ')}\n${stdout}${stderr}`)
          if (err) reject(new Error(`debootstrap of ${suite} (${include.join(',')}) from ${mirror} failed; see ${logFile}`, {cause: err}))
          else resolve()
        })
      })
      // Leftovers of the build that are not part of a root a test wants.
      rmSync(join(tmp, 'debootstrap'), {recursive: true, force: true})
      writeFileSync(`${target}.json`, JSON.stringify({suite, variant, include, mirror, builtAt: new Date().toISOString()}, null, 2) + '\n')
      renameSync(tmp, target)
    } finally {
      // debootstrap mounts /proc and /sys in the target; a failed build can leave them mounted.
      if (existsSync(tmp)) {
        unmountUnder(tmp)
        rmSync(tmp, {recursive: true, force: true})
      }
    }
    return target
  } finally {
    rmSync(lock, {force: true})
  }
}

/** Takes `lock` (a file holding our pid); waits while a live process holds it, steals it from a dead one. */
async function acquireLock(lock: string, target: string, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      const fd = openSync(lock, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = Number(readFileSync(lock, 'utf8').trim())
    if (!holder || !isAlive(holder)) {
      rmSync(lock, {force: true})
      continue
    }
    if (existsSync(target)) return
    if (Date.now() > deadline) throw new Error(`${lock} is held by pid ${holder} for more than ${waitMs} ms`)
    // Polls the holder's progress (the lock file and the target dir); the interval only paces it.
    await delay(500)
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The URI of the machine's apt source carrying `suite` (exactly, not -updates or -security) with
 * the main component, from deb822 files in /etc/apt/sources.list.d and one-line sources.list.
 */
export function aptMirrorFor(suite: string, aptDir = '/etc/apt'): string {
  const candidates: string[] = []
  const listDir = join(aptDir, 'sources.list.d')
  const files = existsSync(listDir) ? readdirSync(listDir).sort().map((f) => join(listDir, f)) : []
  for (const file of [join(aptDir, 'sources.list'), ...files]) {
    if (!existsSync(file)) continue
    const text = readFileSync(file, 'utf8')
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string): string[] => {
          const m = new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)
          return m ? m[1].trim().split(/\s+/) : []
        }
        if (field('Enabled')[0] === 'no' || !field('Types').includes('deb')) continue
        if (field('Suites').includes(suite) && field('Components').includes('main')) candidates.push(...field('URIs'))
      }
    } else if (file.endsWith('.list')) {
      for (const line of text.split('\n')) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.*)$/.exec(line)
        if (m && m[2] === suite && m[3].split(/\s+/).includes('main')) candidates.push(m[1])
      }
    }
  }
  const mirror = candidates.find((uri) => uri.startsWith('http'))
  if (!mirror) throw new Error(`no apt source for ${suite} main in ${aptDir}/sources.list(.d); set LAZYCTL_DEBIAN_MIRROR`)
  return mirror
}
