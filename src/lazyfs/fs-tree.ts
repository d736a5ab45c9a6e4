// The tree a lazy layer presents through FUSE, made from the reader's file tree. A directory's
// entries are made the first time it is listed or looked into: a container start touches a few
// dozen directories of thousands, and making every node at mount was a visible part of Prepare.
// Three things differ from the TOC as written:
//  - AUFS whiteouts become what overlayfs expects of a lower dir: `.wh.NAME` is shown as a char
//    device 0/0 named NAME, and a dir holding `.wh..wh..opq` gets `trusted.overlay.opaque=y`;
//    the `.wh.*` entries themselves are hidden.
//  - The landmark files at the root are hidden (they are the writer's bookkeeping, not content).
//  - Inode numbers are assigned here, in the order nodes are made: names that resolve to the same
//    reader node (hardlinks) share one FsNode and so one inode number and one link count.

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
  /** Read at once and not kept: a source may return the same object, refilled, on every call. */
  attrs(node: N): NodeAttrs
  /** Children of a dir by name; hardlinked names give the same node object. */
  children(node: N): ReadonlyMap<string, N>
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
  /** Dirs: children by name, in readdir order (made on first read). */
  readonly children?: Map<string, FsNode<N>>
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

/** FUSE path ("/", "/a/b") → node. */
export interface PathIndex<N> {
  get(path: string): FsNode<N> | undefined
  has(path: string): boolean
}

export interface FsTree<N> {
  root: FsNode<N>
  byPath: PathIndex<N>
  /** Distinct inodes. */
  inodeCount: number
  /** Sum of regular file sizes (each inode once). */
  totalBytes: number
}

export function buildFsTree<N>(source: TreeSource<N>): FsTree<N> {
  return new LazyTree(source).tree()
}

const NO_XATTRS: ReadonlyMap<string, Buffer> = new Map()
const OPAQUE_XATTRS: ReadonlyMap<string, Buffer> = new Map([[OVERLAY_OPAQUE_XATTR, Buffer.from('y')]])

/** Whether a name of a source directory is shown as itself (not hidden, not a whiteout). */
function shownAsItself(name: string, isRoot: boolean): boolean {
  return !name.startsWith(WHITEOUT_PREFIX) && !(isRoot && HIDDEN_AT_ROOT.has(name))
}

/** The name a whiteout entry stands for, or null when it shows nothing (the opaque marker, "", or a real entry of that name wins, as in the reference snapshotter). */
function whiteoutTarget<N>(name: string, entries: ReadonlyMap<string, N>, isRoot: boolean): string | null {
  if (!name.startsWith(WHITEOUT_PREFIX) || name === OPAQUE_MARKER) return null
  const target = name.slice(WHITEOUT_PREFIX.length)
  if (target === '' || (entries.has(target) && shownAsItself(target, isRoot))) return null
  return target
}

class LazyTree<N> {
  // Only names sharing a node (hardlinks: nlink > 1, never dirs) need the node → FsNode map.
  private readonly shared = new Map<N, FsNode<N>>()
  private nextIno = 1

  constructor(private readonly source: TreeSource<N>) {}

  tree(): FsTree<N> {
    const root = this.nodeFor(this.source.root, true)
    if (root.kind !== 'dir') throw new Error('layer root is not a directory')
    // Counted now (statfs, the mount log) without making the nodes: a walk of the source.
    const {inodes, bytes} = this.count()
    return {root, byPath: new PathWalker(root), inodeCount: inodes, totalBytes: bytes}
  }

  private nodeFor(n: N, isRoot = false): FsNode<N> {
    const a = this.source.attrs(n)
    const kind = a.kind
    if (kind === 'dir') {
      const entries = this.source.children(n)
      return new LazyDir(this, n, isRoot, this.nextIno++, a, entries.has(OPAQUE_MARKER))
    }
    const sharedNode = a.nlink > 1
    if (sharedNode) {
      const known = this.shared.get(n)
      if (known) return known
    }
    const node: FsNode<N> = {
      ino: this.nextIno++,
      kind,
      mode: S_IFMT[kind] | (a.mode & PERMISSION_BITS),
      uid: a.uid,
      gid: a.gid,
      size: kind === 'reg' ? a.size : kind === 'symlink' ? Buffer.byteLength(a.linkName ?? '') : 0,
      mtimeMs: a.mtimeMs,
      nlink: Math.max(1, a.nlink),
      rdev: kind === 'char' || kind === 'block' ? makedev(a.devMajor ?? 0, a.devMinor ?? 0) : 0,
      xattrs: a.xattrs ?? NO_XATTRS,
      source: n,
    }
    if (a.linkName !== undefined && kind === 'symlink') node.linkName = a.linkName
    if (sharedNode) this.shared.set(n, node)
    return node
  }

  /** The entries of a directory as FUSE shows them. */
  entriesOf(dir: LazyDir<N>): Map<string, FsNode<N>> {
    const entries = this.source.children(dir.source)
    const children = new Map<string, FsNode<N>>()
    let whiteouts: string[] | null = null
    // forEach, not for-of: no [name, node] pair allocated per entry.
    entries.forEach((child, name) => {
      if (shownAsItself(name, dir.isRoot)) children.set(name, this.nodeFor(child))
      else {
        const target = whiteoutTarget(name, entries, dir.isRoot)
        if (target !== null) (whiteouts ??= []).push(target)
      }
    })
    for (const name of whiteouts ?? []) {
      if (children.has(name)) continue
      children.set(name, {
        ino: this.nextIno++, kind: 'char', mode: S_IFMT.char, uid: 0, gid: 0, size: 0,
        mtimeMs: dir.mtimeMs, nlink: 1, rdev: makedev(0, 0), xattrs: NO_XATTRS,
      })
    }
    return children
  }

  /** Inodes (nodes once, whiteout devices) and regular-file bytes the whole tree will have. */
  private count(): {inodes: number; bytes: number} {
    const seen = new Set<N>()
    let inodes = 1
    let bytes = 0
    const dirs: Array<{n: N; isRoot: boolean}> = [{n: this.source.root, isRoot: true}]
    while (dirs.length > 0) {
      const {n, isRoot} = dirs.pop()!
      const entries = this.source.children(n)
      const whiteouts = new Set<string>()
      entries.forEach((child, name) => {
        if (!shownAsItself(name, isRoot)) {
          const target = whiteoutTarget(name, entries, isRoot)
          if (target !== null) whiteouts.add(target)
          return
        }
        const a = this.source.attrs(child)
        if (a.kind === 'dir') dirs.push({n: child, isRoot: false})
        else if (a.nlink > 1) {
          if (seen.has(child)) return
          seen.add(child)
        }
        inodes++
        if (a.kind === 'reg') bytes += a.size
      })
      inodes += whiteouts.size
    }
    return {inodes, bytes}
  }
}

/** A directory whose entries are made on first use. */
class LazyDir<N> implements FsNode<N> {
  readonly kind = 'dir'
  readonly mode: number
  readonly uid: number
  readonly gid: number
  readonly size = 4096
  readonly mtimeMs: number
  readonly nlink: number
  readonly rdev = 0
  readonly xattrs: ReadonlyMap<string, Buffer>
  private made: Map<string, FsNode<N>> | undefined

  constructor(
    private readonly tree: LazyTree<N>,
    readonly source: N,
    readonly isRoot: boolean,
    readonly ino: number,
    a: NodeAttrs,
    opaque: boolean,
  ) {
    this.mode = S_IFMT.dir | (a.mode & PERMISSION_BITS)
    this.uid = a.uid
    this.gid = a.gid
    this.mtimeMs = a.mtimeMs
    this.nlink = Math.max(1, a.nlink)
    const xattrs = a.xattrs ?? NO_XATTRS
    this.xattrs = !opaque ? xattrs : xattrs.size === 0 ? OPAQUE_XATTRS : new Map([...xattrs, [OVERLAY_OPAQUE_XATTR, Buffer.from('y')]])
  }

  get children(): Map<string, FsNode<N>> {
    return (this.made ??= this.tree.entriesOf(this))
  }
}

/**
 * Resolves FUSE paths by walking the children maps, remembering what it resolved: a full
 * path → node map built at mount cost a string and a map entry per node of the layer, most of
 * which the container never looks up.
 */
class PathWalker<N> implements PathIndex<N> {
  private readonly resolved = new Map<string, FsNode<N>>()

  constructor(private readonly root: FsNode<N>) {
    this.resolved.set('/', root)
  }

  get(path: string): FsNode<N> | undefined {
    const known = this.resolved.get(path)
    if (known || path.charCodeAt(0) !== 0x2f) return known
    // Start from the nearest resolved ancestor, usually the parent (the kernel looks up the parent first).
    const slash = path.lastIndexOf('/')
    const parent = slash === 0 ? this.root : this.get(path.slice(0, slash))
    const node = parent?.children?.get(path.slice(slash + 1))
    if (node) this.resolved.set(path, node)
    return node
  }

  has(path: string): boolean {
    return this.get(path) !== undefined
  }
}
