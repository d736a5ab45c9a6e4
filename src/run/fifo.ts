// Client side of task IO through FIFOs (what containerd's Go cio does): make the FIFOs, open the
// read ends of stdout/stderr before Tasks.Create (the shim opens the write ends inside Create and
// waits up to 30 s for a reader), open stdin for writing after Create.
import {execFile} from 'node:child_process'
import {mkdtempSync, open, rmSync} from 'node:fs'
import {Socket} from 'node:net'
import {join} from 'node:path'
import {LazyError} from '../cli/errors.js'
import {ensureDir} from './state.js'

export interface FifoSet {
  dir: string
  stdin: string
  stdout: string
  stderr: string
  remove(): void
}

/** Makes the FIFOs in a fresh directory under root (asynchronously: the caller overlaps it with containerd calls). */
export async function makeFifos(root: string, id: string, streams: {stdin: boolean; stderr: boolean}): Promise<FifoSet> {
  ensureDir(root)
  const dir = mkdtempSync(join(root, `${id.slice(0, 12)}-`))
  const set: FifoSet = {
    dir,
    stdin: streams.stdin ? join(dir, `${id}-stdin`) : '',
    stdout: join(dir, `${id}-stdout`),
    stderr: streams.stderr ? join(dir, `${id}-stderr`) : '',
    remove: () => rmSync(dir, {recursive: true, force: true}),
  }
  const paths = [set.stdin, set.stdout, set.stderr].filter(Boolean)
  // Node has no mkfifo(3); coreutils' mkfifo is one fork for all three.
  await new Promise<void>((resolve, reject) => {
    execFile('mkfifo', ['-m', '0600', ...paths], (err, _stdout, stderr) => {
      if (!err) return resolve()
      set.remove()
      reject(new LazyError('IO', `cannot create FIFOs in ${dir}: ${stderr.trim() || String(err)}`, {cause: err}))
    })
  })
  return set
}

function openFd(path: string, flags: 'r' | 'w'): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, (err, fd) => (err ? reject(err) : resolve(fd))))
}

/**
 * Starts opening a FIFO's read end; resolves once the shim has opened the write end. The fd is
 * wrapped in a pipe socket (non-blocking, epoll) rather than an fs stream, whose blocking reads
 * would each hold one of libuv's four threadpool threads while the container is quiet.
 */
export async function openReader(path: string): Promise<Socket> {
  const fd = await openFd(path, 'r')
  return new Socket({fd, readable: true, writable: false})
}

/** Opens a FIFO's write end; resolves once the shim has opened the read end. */
export async function openWriter(path: string): Promise<Socket> {
  const fd = await openFd(path, 'w')
  return new Socket({fd, readable: false, writable: true})
}
