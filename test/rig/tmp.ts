// Temp dirs of the rig. All live under one prefix so the leftovers check can find strays.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export const RIG_PREFIX = 'lazyctl-rig-'

/** A fresh directory under the OS temp dir; `label` says which service it belongs to. */
export function rigTempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `${RIG_PREFIX}${label}-`))
}

export function removeDir(dir: string): void {
  rmSync(dir, {recursive: true, force: true, maxRetries: 3})
}
