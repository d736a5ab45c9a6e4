// One daemon per root: two would mount FUSE over each other's layers and race on the metadata.
// A pid file created exclusively; one whose process is gone is stale and taken over.
import {readFileSync, unlinkSync, writeFileSync} from 'node:fs'
import {LazyError} from '../cli/errors.js'

export interface RootLock {
  release(): void
}

export function acquireRootLock(lockFile: string): RootLock {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(lockFile, `${process.pid}\n`, {flag: 'wx', mode: 0o644})
      return {
        release() {
          try {
            if (readFileSync(lockFile, 'utf8').trim() === String(process.pid)) unlinkSync(lockFile)
          } catch {
            // already gone
          }
        },
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = Number(readFileSafe(lockFile).trim())
    if (Number.isSafeInteger(holder) && holder > 0 && isAlive(holder)) {
      throw new LazyError('SNAPSHOTTER', `another lazyctl snapshotter (pid ${holder}) already uses this root (${lockFile})`, {
        hint: 'stop it first, or give this one another --root',
      })
    }
    try {
      unlinkSync(lockFile)
    } catch {
      // someone else took it over first; try again
    }
  }
  throw new LazyError('SNAPSHOTTER', `cannot take the lock ${lockFile}`)
}

function readFileSafe(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

/**
 * Whether `pid` still runs. A killed daemon whose parent has not reaped it yet is a zombie: it
 * answers signal 0 but holds nothing, and where `run` started it, its parent is the init process,
 * which need not reap at once (the snapshotter started again right after a SIGKILL met its own
 * predecessor's zombie).
 */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    // The state follows the command name, which may itself hold ") ".
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.slice(stat.lastIndexOf(') ') + 2, stat.lastIndexOf(') ') + 3)
    return state !== 'Z' && state !== 'X'
  } catch {
    return false // gone between the two looks
  }
}
