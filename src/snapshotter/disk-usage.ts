// Disk usage of a directory tree the way containerd's overlay snapshotter counts it: allocated
// blocks (st_blocks × 512) and inodes, each hard-linked inode once.
import {lstat, opendir} from 'node:fs/promises'
import {join} from 'node:path'

export interface DiskUsage {
  size: number
  inodes: number
}

export async function diskUsage(root: string): Promise<DiskUsage> {
  const seen = new Set<string>()
  let size = 0
  // An explicit stack rather than recursion: layer trees can be deep.
  const pending = [root]
  while (pending.length > 0) {
    const path = pending.pop()!
    let stat
    try {
      stat = await lstat(path, {bigint: true})
    } catch (err) {
      // Removed while we walked it (a container deleting files): not ours to count.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
      throw err
    }
    const inode = `${stat.dev}:${stat.ino}`
    if (!seen.has(inode)) {
      seen.add(inode)
      size += Number(stat.blocks) * 512
    }
    if (stat.isDirectory()) {
      const dir = await opendir(path)
      for await (const entry of dir) pending.push(join(path, entry.name))
    }
  }
  return {size, inodes: seen.size}
}
