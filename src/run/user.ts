// Resolving `-u`/the image's User (`name`, `uid`, `name:group`, `uid:gid`) to numeric ids from the
// image's /etc/passwd and /etc/group, read through the rootfs snapshot's mounts (lowerdirs of an
// overlay, or a bind source) without mounting anything.
import {readFileSync, lstatSync} from 'node:fs'
import {join} from 'node:path'
import {LazyError} from '../cli/errors.js'
import type {OciUser} from './spec.js'

interface MountLike {
  type: string
  source: string
  options: string[]
}

/** The directories whose union is the rootfs, topmost first. */
export function rootfsLayerDirs(mounts: readonly MountLike[]): string[] {
  const dirs: string[] = []
  for (const m of mounts) {
    if (m.type === 'bind' || m.type === 'rbind') dirs.push(m.source)
    else if (m.type === 'overlay') {
      const upper = m.options.find((o) => o.startsWith('upperdir='))
      if (upper) dirs.push(upper.slice('upperdir='.length))
      const lower = m.options.find((o) => o.startsWith('lowerdir='))
      if (lower) dirs.push(...lower.slice('lowerdir='.length).split(':'))
    }
  }
  return dirs
}

/** Reads `path` (absolute in the rootfs) from the topmost layer that has it; overlay whiteouts hide it. */
export function readRootfsFile(layerDirs: readonly string[], path: string): string | undefined {
  for (const dir of layerDirs) {
    const full = join(dir, path)
    let st
    try {
      st = lstatSync(full)
    } catch {
      continue
    }
    // A 0:0 character device is an overlayfs whiteout: the file was deleted in this layer.
    if (st.isCharacterDevice() && st.rdev === 0) return undefined
    if (!st.isFile()) return undefined
    return readFileSync(full, 'utf8')
  }
  return undefined
}

function parseColonFile(text: string | undefined): string[][] {
  return (text ?? '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'))
}

/** Resolves a docker-style user spec against the rootfs; unknown names are a USAGE error. */
export function resolveUser(spec: string, layerDirs: readonly string[]): OciUser {
  if (spec === '') return {uid: 0, gid: 0}
  const [userPart, groupPart] = spec.split(':', 2) as [string, string | undefined]
  const numeric = (s: string) => /^\d+$/.test(s)
  let passwd: string[][] | undefined
  const readPasswd = () => (passwd ??= parseColonFile(readRootfsFile(layerDirs, '/etc/passwd')))
  let uid: number
  let gid = 0
  if (numeric(userPart)) {
    uid = Number(userPart)
    const entry = readPasswd().find((f) => f[2] === userPart)
    if (entry) gid = Number(entry[3])
  } else {
    const entry = readPasswd().find((f) => f[0] === userPart)
    if (!entry) throw new LazyError('USAGE', `unable to find user ${userPart}: no matching entries in the image's /etc/passwd`)
    uid = Number(entry[2])
    gid = Number(entry[3])
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (numeric(groupPart)) gid = Number(groupPart)
    else {
      const entry = parseColonFile(readRootfsFile(layerDirs, '/etc/group')).find((f) => f[0] === groupPart)
      if (!entry) throw new LazyError('USAGE', `unable to find group ${groupPart}: no matching entries in the image's /etc/group`)
      gid = Number(entry[2])
    }
  }
  return {uid, gid}
}
