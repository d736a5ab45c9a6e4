// The FUSE tree makes a directory's entries on first use; what it shows and counts must be what
// a tree made whole at mount would show: inode count and bytes known at once, hard links sharing
// an inode, whiteouts as devices, the opaque xattr before the directory is ever listed.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {buildFsTree, OVERLAY_OPAQUE_XATTR, type FsNode} from '../../src/lazyfs/fs-tree.js'
import {buildSyntheticLayer, type SyntheticFile} from './synthetic-layer.js'

const FILES: SyntheticFile[] = [
  {path: '.prefetch.landmark', kind: 'reg', data: Buffer.from([0x0f])},
  {path: 'bin/sh', kind: 'reg', mode: 0o755, data: Buffer.alloc(1000, 1)},
  {path: 'bin/ash', kind: 'reg', hardlinkTo: 'bin/sh'},
  {path: 'usr/share/doc/a.txt', kind: 'reg', data: Buffer.alloc(300, 2)},
  {path: 'usr/share/doc/.wh.gone', kind: 'reg', data: Buffer.alloc(0)},
  {path: 'usr/share/doc/.wh.a.txt', kind: 'reg', data: Buffer.alloc(0)},
  {path: 'var/cache/.wh..wh..opq', kind: 'reg', data: Buffer.alloc(0)},
  {path: 'var/cache/fresh', kind: 'reg', data: Buffer.alloc(7, 3)},
  {path: 'etc/link', kind: 'symlink', linkName: '../bin/sh'},
]

/** Every node of the tree by FUSE path, listing every directory. */
function walk(root: FsNode): Map<string, FsNode> {
  const out = new Map<string, FsNode>([['/', root]])
  const dirs: Array<[string, FsNode]> = [['', root]]
  while (dirs.length > 0) {
    const [path, dir] = dirs.pop()!
    for (const [name, child] of dir.children!) {
      out.set(`${path}/${name}`, child)
      if (child.kind === 'dir') dirs.push([`${path}/${name}`, child])
    }
  }
  return out
}

test('a tree made on first use counts, links and hides what a whole tree would', () => {
  const layer = buildSyntheticLayer(FILES)
  const tree = buildFsTree(layer.content.tree)
  // Known before any directory is listed (statfs and the mount log need them).
  const {inodeCount, totalBytes} = tree

  // A deep path resolves before its parents were ever listed, and the opaque xattr is there first.
  assert.equal(tree.byPath.get('/var/cache')?.xattrs.get(OVERLAY_OPAQUE_XATTR)?.toString(), 'y')
  assert.equal(tree.byPath.get('/usr/share/doc/a.txt')?.size, 300)
  assert.equal(tree.byPath.get('/usr/share/doc/.wh.gone'), undefined, 'whiteout entries are hidden')
  assert.equal(tree.byPath.get('/.prefetch.landmark'), undefined, 'landmarks are hidden')
  assert.equal(tree.byPath.get('/bin/nothing'), undefined)
  assert.equal(tree.byPath.has('/bin/sh'), true)
  assert.equal(tree.byPath.get('bin/sh'), undefined, 'FUSE paths start with /')

  const all = walk(tree.root)
  assert.deepEqual([...all.keys()].sort(), [
    '/', '/bin', '/bin/ash', '/bin/sh', '/etc', '/etc/link', '/usr', '/usr/share', '/usr/share/doc', '/usr/share/doc/a.txt',
    '/usr/share/doc/gone', '/var', '/var/cache', '/var/cache/fresh',
  ])
  const gone = all.get('/usr/share/doc/gone')!
  assert.equal(gone.kind, 'char', 'a whiteout shows as a char device')
  assert.equal(gone.rdev, 0)
  assert.equal(all.get('/usr/share/doc/a.txt')!.kind, 'reg', 'a real entry wins over its whiteout')
  assert.equal(all.get('/bin/sh')!.ino, all.get('/bin/ash')!.ino, 'hard links share an inode')
  assert.equal(all.get('/bin/sh')!.nlink, 2)
  assert.equal(all.get('/etc/link')!.size, Buffer.byteLength('../bin/sh'))
  assert.equal(tree.byPath.get('/bin/ash'), all.get('/bin/sh'), 'lookups and listings give the same node')

  const inodes = new Set([...all.values()].map((n) => n.ino))
  assert.equal(inodeCount, inodes.size, 'the count made at mount is the inodes the tree has')
  assert.deepEqual([...inodes].sort((a, b) => a - b), Array.from({length: inodes.size}, (_, i) => i + 1), 'inode numbers are 1..count')
  assert.equal(totalBytes, 1000 + 300 + 7, 'bytes count each regular inode once')
})
