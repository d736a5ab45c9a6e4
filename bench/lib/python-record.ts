// The record of files `python3 -c 'print(1)'` reads, for `lazyctl convert --estargz-record-in`:
// the command runs under strace in a chroot of the image's root, and every file it opened
// (openat/open/execve that succeeded, plus the ELF interpreter the kernel opens on exec) is
// written, in first-open order, as one JSON line {"path": "/usr/…"} — with symlinks resolved
// inside the root, so the paths are the regular files the layer's TOC names.
import {execFileSync} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {existsSync, lstatSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {join, posix} from 'node:path'
import {requireCommand} from '../../test/rig/process.js'

export const PYTHON_COMMAND = ['python3', '-c', 'print(1)']

/** Writes (once) and returns the record file of PYTHON_COMMAND run in `root`. */
export function pythonRecordFile(root: string, file: string): string {
  if (existsSync(file)) return file
  requireCommand('strace', 'strace')
  const trace = `${file}.strace-${randomUUID()}`
  try {
    execFileSync('strace', ['-f', '-qq', '-e', 'trace=open,openat,execve', '-o', trace, 'chroot', root, ...PYTHON_COMMAND], {stdio: 'ignore', env: {PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root'}})
    const opened: {path: string; exec: boolean}[] = []
    for (const line of readFileSync(trace, 'utf8').split('\n')) {
      const m = /(openat\(AT_FDCWD, |open\(|execve\()"([^"]+)".*\) = (\d+)/.exec(line)
      if (m && m[2]!.startsWith('/')) opened.push({path: m[2]!, exec: m[1] === 'execve('})
    }
    // What chroot itself opened on the host before it exec'd python3 inside the root is not the image's.
    opened.splice(0, opened.findIndex((o, i) => i > 0 && o.exec))
    const paths: string[] = []
    const add = (path: string | undefined): void => {
      if (path === undefined || paths.includes(path) || !lstatSync(join(root, path)).isFile()) return
      paths.push(path)
    }
    for (const {path, exec} of opened) {
      const real = resolveInRoot(root, path)
      add(real)
      // The kernel opens an executable's interpreter (the ELF loader) itself; strace shows only the execve.
      if (exec && real !== undefined && isElf(join(root, real))) add(resolveInRoot(root, elfInterpreter(join(root, real)) ?? ''))
    }
    const tmp = `${file}.tmp-${randomUUID()}`
    writeFileSync(tmp, paths.map((p) => JSON.stringify({path: p})).join('\n') + '\n')
    renameSync(tmp, file)
    return file
  } finally {
    rmSync(trace, {force: true})
  }
}

/** `path` with every symlink resolved as inside `root`; undefined when it does not exist there. */
export function resolveInRoot(root: string, path: string, depth = 0): string | undefined {
  if (!path.startsWith('/') || depth > 40) return undefined
  const parts = path.split('/').filter(Boolean)
  let current = '/'
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    if (part === '.') continue
    if (part === '..') {
      current = posix.dirname(current)
      continue
    }
    const next = posix.join(current, part)
    let st
    try {
      st = lstatSync(join(root, next))
    } catch {
      return undefined
    }
    if (st.isSymbolicLink()) {
      const target = readlinkSync(join(root, next))
      const rest = parts.slice(i + 1).join('/')
      const base = target.startsWith('/') ? target : posix.join(current, target)
      return resolveInRoot(root, posix.join(base, rest) || '/', depth + 1)
    }
    current = next
  }
  return current
}

function isElf(file: string): boolean {
  const head = readFileSync(file).subarray(0, 4)
  return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))
}

/** The PT_INTERP path of a dynamically linked ELF (the program loader), if it has one. */
function elfInterpreter(file: string): string | undefined {
  const head = readFileSync(file).subarray(0, 4096).toString('latin1')
  const m = /\/lib[^\0]*\/ld-linux[^\0]*\.so\.\d/.exec(head)
  return m?.[0]
}
