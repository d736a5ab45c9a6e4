// Writes a layer's files into a plain directory the way containerd's applier does for overlayfs:
// AUFS whiteouts become char devices 0/0, opaque markers become `trusted.overlay.opaque=y`. It is
// the reference the lazy mounts are compared against. Runs python3 for mknod/xattrs/ownership.
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import type {SyntheticFile} from './synthetic-layer.js'

const run = promisify(execFile)

const SCRIPT = String.raw`
import base64, json, os, sys
root = sys.argv[1]
files = json.load(sys.stdin)
dirs = []
for f in files:
    path = os.path.join(root, f['path'])
    parent, name = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    if name == '.wh..wh..opq':
        os.setxattr(parent, 'trusted.overlay.opaque', b'y')
        continue
    if name.startswith('.wh.'):
        os.mknod(os.path.join(parent, name[4:]), 0o020000, os.makedev(0, 0))
        continue
    k = f['kind']
    if f.get('hardlinkTo'):
        os.link(os.path.join(root, f['hardlinkTo']), path)
        continue
    if k == 'dir':
        os.makedirs(path, exist_ok=True)
    elif k == 'reg':
        with open(path, 'wb') as out:
            out.write(base64.b64decode(f.get('data', '')))
    elif k == 'symlink':
        os.symlink(f['linkName'], path)
    elif k in ('char', 'block'):
        os.mknod(path, (0o020000 if k == 'char' else 0o060000), os.makedev(f.get('devMajor', 0), f.get('devMinor', 0)))
    elif k == 'fifo':
        os.mkfifo(path)
    for key, value in (f.get('xattrs') or {}).items():
        os.setxattr(path, key, value.encode(), follow_symlinks=False)
    os.lchown(path, f.get('uid', 0), f.get('gid', 0))
    if k != 'symlink':
        os.chmod(path, f['mode'])
    mtime = f.get('mtimeMs', 0) / 1000
    if k == 'dir':
        dirs.append((path, mtime))
    else:
        os.utime(path, (mtime, mtime), follow_symlinks=False)
for path, mtime in reversed(dirs):
    os.utime(path, (mtime, mtime))
`

/** Materializes `files` (in order) under `dir`. */
export async function writePlainLayer(dir: string, files: SyntheticFile[]): Promise<void> {
  const json = JSON.stringify(files.map((f) => ({
    ...f,
    mode: f.mode ?? (f.kind === 'dir' ? 0o755 : 0o644),
    mtimeMs: f.mtimeMs ?? 1_700_000_000_000,
    data: f.data?.toString('base64'),
  })))
  await new Promise<void>((resolve, reject) => {
    const child = execFile('/usr/bin/python3', ['-c', SCRIPT, dir], (err) => (err ? reject(err) : resolve()))
    child.stdin!.end(json)
  })
}

export async function mountOverlay(lowerdirs: string[], mountpoint: string): Promise<void> {
  // Upper-most lower first, as overlayfs wants.
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowerdirs.join(':')}`, mountpoint])
}
