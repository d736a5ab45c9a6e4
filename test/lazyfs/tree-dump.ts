// Observes a directory tree from outside this Node process (python3's os.lstat, listxattr and
// sha256), so that a FUSE mount served by this process is read by a separate process — reading it
// from our own thread pool could deadlock against the FUSE handlers that need the same pool.
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

const run = promisify(execFile)

export interface DumpedEntry {
  type: 'dir' | 'reg' | 'symlink' | 'char' | 'block' | 'fifo' | 'other'
  /** Permission bits including setuid/setgid/sticky. */
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  nlink: number
  ino: number
  rdevMajor: number
  rdevMinor: number
  target?: string
  sha256?: string
  xattrs: Record<string, string>
}

const SCRIPT = String.raw`
import hashlib, json, os, stat, sys
root = sys.argv[1]
with_data = sys.argv[2] == '1'
out = {}
def kind(m):
    if stat.S_ISDIR(m): return 'dir'
    if stat.S_ISREG(m): return 'reg'
    if stat.S_ISLNK(m): return 'symlink'
    if stat.S_ISCHR(m): return 'char'
    if stat.S_ISBLK(m): return 'block'
    if stat.S_ISFIFO(m): return 'fifo'
    return 'other'
def visit(path, rel):
    st = os.lstat(path)
    k = kind(st.st_mode)
    e = {'type': k, 'mode': stat.S_IMODE(st.st_mode), 'uid': st.st_uid, 'gid': st.st_gid, 'size': st.st_size,
         'mtime': int(st.st_mtime), 'nlink': st.st_nlink, 'ino': st.st_ino,
         'rdevMajor': os.major(st.st_rdev), 'rdevMinor': os.minor(st.st_rdev), 'xattrs': {}}
    try:
        for name in sorted(os.listxattr(path, follow_symlinks=False)):
            e['xattrs'][name] = os.getxattr(path, name, follow_symlinks=False).decode('latin-1')
    except OSError:
        pass
    if k == 'symlink': e['target'] = os.readlink(path)
    if k == 'reg' and with_data:
        h = hashlib.sha256()
        with open(path, 'rb') as f:
            while True:
                b = f.read(1 << 20)
                if not b: break
                h.update(b)
        e['sha256'] = h.hexdigest()
    out[rel] = e
    if k == 'dir':
        for name in sorted(os.listdir(path)):
            visit(os.path.join(path, name), rel + '/' + name if rel else name)
visit(root, '')
json.dump(out, sys.stdout)
`

/** Every entry under `dir` by relative path ("" is the dir itself). */
export async function dumpTree(dir: string, options: {data?: boolean} = {}): Promise<Record<string, DumpedEntry>> {
  const {stdout} = await run('/usr/bin/python3', ['-c', SCRIPT, dir, options.data === false ? '0' : '1'], {maxBuffer: 256 << 20})
  return JSON.parse(stdout) as Record<string, DumpedEntry>
}

/** Runs a command in a child process (never blocking this process's event loop). */
export async function sh(command: string, args: string[]): Promise<string> {
  const {stdout} = await run(command, args, {maxBuffer: 256 << 20})
  return stdout
}

/** Runs a command and returns its exit status and stderr instead of throwing. */
export async function shStatus(command: string, args: string[]): Promise<{code: number; stdout: string; stderr: string}> {
  try {
    const {stdout, stderr} = await run(command, args, {maxBuffer: 256 << 20})
    return {code: 0, stdout, stderr}
  } catch (err) {
    const e = err as {code?: number; stdout?: string; stderr?: string}
    return {code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? ''}
  }
}
