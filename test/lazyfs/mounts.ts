// Mount bookkeeping for tests: every mount is unmounted in after(), even when a test failed, and
// what the kernel says is mounted is read from findmnt, not assumed. Everything that may touch a
// mount served by this process runs in a child process, asynchronously.
import {existsSync} from 'node:fs'
import {shStatus} from './tree-dump.js'

/** True when `path` is a mount point according to the kernel (findmnt). */
export async function isMounted(path: string): Promise<boolean> {
  const {code} = await shStatus('findmnt', ['--mountpoint', path])
  return code === 0
}

/** Fails with an install hint when FUSE cannot work on this machine. */
export function requireFuse(): void {
  if (!existsSync('/dev/fuse')) throw new Error('/dev/fuse is missing: load the fuse module (modprobe fuse) or run with --device /dev/fuse')
  if (!existsSync('/usr/lib/x86_64-linux-gnu/libfuse.so.2') && !existsSync('/lib/x86_64-linux-gnu/libfuse.so.2')) {
    throw new Error('libfuse2 is missing: apt-get install libfuse2 fuse3 (scripts/bootstrap)')
  }
  if (process.getuid?.() !== 0) throw new Error('FUSE mount tests run as root (allow_other, device nodes, overlayfs)')
}

/** Last resort for a mount a failed test left behind: lazy unmount. */
export async function forceUnmount(path: string): Promise<void> {
  if (!(await isMounted(path))) return
  if ((await shStatus('fusermount', ['-uz', path])).code !== 0) await shStatus('umount', ['-l', path])
}
