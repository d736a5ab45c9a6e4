// The kernel's mount table, read from /proc/self/mountinfo, and forced unmounts of what a killed
// daemon left behind (a FUSE mount whose server died answers ENOTCONN to everything).
import {execFile} from 'node:child_process'
import {readFile} from 'node:fs/promises'
import {promisify} from 'node:util'

const execFileAsync = promisify(execFile)

export interface MountEntry {
  target: string
  fsType: string
  source: string
}

export async function readMountTable(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  const entries: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (!line) continue
    // id parent major:minor root target options [optional fields...] - fstype source superoptions
    const [left, right] = line.split(' - ')
    const fields = left?.split(' ') ?? []
    const tail = right?.split(' ') ?? []
    if (fields.length < 5 || tail.length < 2) continue
    entries.push({target: unescapeMountPath(fields[4]!), fsType: tail[0]!, source: unescapeMountPath(tail[1]!)})
  }
  return entries
}

/** Mount points at or below `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<MountEntry[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  return (await readMountTable()).filter((m) => m.target === dir || m.target.startsWith(prefix)).sort((a, b) => b.target.length - a.target.length)
}

/** Detaches the mount at `target` (lazy unmount: works on dead FUSE mounts and busy ones). */
export async function forceUnmount(target: string): Promise<void> {
  await execFileAsync('umount', ['-l', target])
}

function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))
}
