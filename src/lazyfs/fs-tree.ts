// The tree a lazy layer presents through FUSE, built once at mount from the reader's file tree.
// Three things differ from the TOC as written:
//  - AUFS whiteouts become what overlayfs expects of a lower dir: `.wh.NAME` is shown as a char
//    device 0/0 named NAME, and a dir holding `.wh..wh..opq` gets `trusted.overlay.opaque=y`;
//    the `.wh.*` entries themselves are hidden.
//  - The landmark files at the root are hidden (they are the writer's bookkeeping, not content).
//  - Inode numbers are assigned here: names that resolve to the same reader node (hardlinks)
//    share one FsNode and so one inode number and one link count.

export type FsNodeKind = 'dir' | 'reg' | 'symlink' | 'char' | 'block' | 'fifo'

/** What lazyfs needs to know of one node of the reader's tree. */
export interface NodeAttrs {
  kind: FsNodeKind
  /** Permission bits with setuid/setgid/sticky (type bits are ignored). */
  mode: number
  uid: number
  gid: number
  /** Bytes of a regular file; ignored for others. */
  size: number
  mtimeMs: number
  /** Symlink target. */
  linkName?: string
  devMajor?: number
  devMinor?: number
  xattrs?: ReadonlyMap<string, Buffer>
  /** Link count as the reader computed it (names pointing at the node; dirs: 2 + subdirs). */
  nlink: number
}

/** The reader's tree, seen through three functions so any reader shape can be adapted. */
export interface TreeSource<N> {
  root: N
  attrs(node: N): NodeAttrs
  /** Children of a dir as [name, node]; hardlinked names give the same node object. */
  children(node: N): Iterable<readonly [string, N]>
}

export interface FsNode<N = unknown> {
  ino: number
  kind: FsNodeKind
  /** Full st_mode: type bits | permission bits. */
  mode: number
  uid: number
  gid: number
  size: number
  mtimeMs: number
  nlink: number
  rdev: number
  linkName?: string
  xattrs: ReadonlyMap<string, Buffer>
  /** Dirs: children by name, in readdir order. */
  children?: Map<string, FsNode<N>>
  /** The reader's node (regular files: where the chunks come from); absent for whiteout devices. */
  source?: N
}

const S_IFMT = {dir: 0o040000, reg: 0o100000, symlink: 0o120000, char: 0o020000, block: 0o060000, fifo: 0o010000} as const
const PERMISSION_BITS = 0o7777

export const WHITEOUT_PREFIX = '.wh.'
export const OPAQUE_MARKER = '.wh..wh..opq'
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque'
const HIDDEN_AT_ROOT = new Set(['.prefetch.landmark', '.no.prefetch.landmark'])

/** Linux dev_t as glibc and the FUSE protocol encode it (the 32-bit form). */
export function makedev(major: number, minor: number): number {
  return (((major & 0xfff) << 8) | (minor & 0xff) | ((minor & ~0xff) << 12)) >>> 0
}

export interface FsTree<N> {
  root: FsNode<N>
  /** FUSE path ("/", "/a/b") → node. */
  byPath: Map<string, FsNode<N>>
  /** Distinct inodes. */
  inodeCount: number
  /** Sum of regular file sizes (each inode once). */
  totalBytes: number
}

export function buildFsTree<N>(source: TreeSource<N>): FsTree<N> {
  const nodes = new Map<N, FsNode<N>>()
  const byPath = new Map<string, FsNode<N>>()
  let nextIno = 1
  let totalBytes = 0

  const nodeFor = (n: N): FsNode<N> => {
    const known = nodes.get(n)
    if (known) return known
    const a = source.attrs(n)
    const node: FsNode<N> = {
      ino: nextIno++,
      kind: a.kind,
      mode: S_IFMT[a.kind] | (a.mode & PERMISSION_BITS),
      uid: a.uid,
      gid: a.gid,
      size: a.kind === 'reg' ? a.size : a.kind === 'symlink' ? Buffer.byteLength(a.linkName ?? '') : a.kind === 'dir' ? 4096 : 0,
      mtimeMs: a.mtimeMs,
      nlink: Math.max(1, a.nlink),
      rdev: a.kind === 'char' || a.kind === 'block' ? makedev(a.devMajor ?? 0, a.devMinor ?? 0) : 0,
      xattrs: a.xattrs ?? new Map(),
      source: n,
    }
    if (a.linkName !== undefined && a.kind === 'symlink') node.linkName = a.linkName
    if (a.kind === 'reg') totalBytes += a.size
    nodes.set(n, node)
    return node
  }

  const visit = (n: N, path: string, isRoot: boolean): FsNode<N> => {
    const dir = nodeFor(n)
    byPath.set(path, dir)
    if (dir.kind !== 'dir' || dir.children) return dir
    const children = new Map<string, FsNode<N>>()
    dir.children = children
    const whiteouts: string[] = []
    let opaque = false
    for (const [name, child] of source.children(n)) {
      if (isRoot && HIDDEN_AT_ROOT.has(name)) continue
      if (name === OPAQUE_MARKER) {
        opaque = true
        continue
      }
      if (name.startsWith(WHITEOUT_PREFIX)) {
        whiteouts.push(name.slice(WHITEOUT_PREFIX.length))
        continue
      }
      const childPath = path === '/' ? `/${name}` : `${path}/${name}`
      const childNode = nodeFor(child)
      children.set(name, childNode)
      if (childNode.kind === 'dir') visit(child, childPath, false)
      else byPath.set(childPath, childNode)
    }
    for (const name of whiteouts) {
      // A real entry of the same name wins (as in the reference snapshotter); an empty name is not a whiteout.
      if (name === '' || children.has(name)) continue
      const device: FsNode<N> = {
        ino: nextIno++, kind: 'char', mode: S_IFMT.char, uid: 0, gid: 0, size: 0,
        mtimeMs: dir.mtimeMs, nlink: 1, rdev: makedev(0, 0), xattrs: new Map(),
      }
      children.set(name, device)
      byPath.set(path === '/' ? `/${name}` : `${path}/${name}`, device)
    }
    if (opaque) dir.xattrs = new Map([...dir.xattrs, [OVERLAY_OPAQUE_XATTR, Buffer.from('y')]])
    return dir
  }

  const root = visit(source.root, '/', true)
  if (root.kind !== 'dir') throw new Error('layer root is not a directory')
  return {root, byPath, inodeCount: nextIno - 1, totalBytes}
}
