// Two lazy layers under overlayfs merge exactly like the same layers extracted to plain dirs:
// AUFS whiteouts and opaque markers in a lazy layer reach overlayfs in the form it understands.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {bufferSource} from '../../src/estargz/random-access.js'
import {ChunkCache} from '../../src/lazyfs/chunk-cache.js'
import {mountLayerContent, type MountedLayer} from '../../src/lazyfs/mount.js'
import {buildSyntheticLayer, type SyntheticFile} from './synthetic-layer.js'
import {forceUnmount, isMounted, requireFuse} from './mounts.js'
import {dumpTree, shStatus, type DumpedEntry} from './tree-dump.js'
import {mountOverlay, writePlainLayer} from './plain-layer.js'
import {rigTempDir} from '../rig/tmp.js'

const lower: SyntheticFile[] = [
  {path: 'etc', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_000_000},
  {path: 'etc/keep.conf', kind: 'reg', data: Buffer.from('kept\n')},
  {path: 'etc/gone.conf', kind: 'reg', data: Buffer.from('deleted by the upper layer\n')},
  {path: 'var', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_000_000},
  {path: 'var/cache', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_000_000},
  {path: 'var/cache/old-1', kind: 'reg', data: Buffer.from('old cache 1\n')},
  {path: 'var/cache/old-2', kind: 'reg', data: Buffer.from('old cache 2\n')},
  {path: 'opt', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_000_000},
  {path: 'opt/tool', kind: 'reg', mode: 0o755, data: Buffer.from('#!/bin/sh\necho tool\n')},
]
const upper: SyntheticFile[] = [
  {path: 'etc', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_100_000},
  {path: 'etc/.wh.gone.conf', kind: 'reg', data: Buffer.alloc(0)},
  {path: 'etc/new.conf', kind: 'reg', data: Buffer.from('added\n')},
  {path: 'var', kind: 'dir', mode: 0o755, mtimeMs: 1_600_000_000_000},
  {path: 'var/cache', kind: 'dir', mode: 0o700, mtimeMs: 1_600_000_100_000},
  {path: 'var/cache/.wh..wh..opq', kind: 'reg', data: Buffer.alloc(0)},
  {path: 'var/cache/fresh', kind: 'reg', data: Buffer.from('fresh cache\n')},
]

let work: string
const mounted: MountedLayer[] = []
const mountpoints: string[] = []

before(() => {
  requireFuse()
  work = rigTempDir('lazyfs-wh')
})

after(async () => {
  for (const dir of mountpoints.filter((d) => d.includes('merged'))) await shStatus('umount', [dir])
  for (const m of mounted) await m.unmount().catch(() => undefined)
  for (const dir of mountpoints) await forceUnmount(dir)
  for (const dir of mountpoints) assert.equal(await isMounted(dir), false, `${dir} still mounted`)
  rmSync(work, {recursive: true, force: true})
})

async function lazyMount(name: string, files: SyntheticFile[]): Promise<string> {
  const layer = buildSyntheticLayer(files)
  const dir = join(work, name)
  mountpoints.push(dir)
  const cache = await ChunkCache.open({dir: join(work, 'cache')})
  mounted.push(await mountLayerContent({mountpoint: dir, content: layer.content, source: bufferSource(layer.blob), cache}))
  return dir
}

function comparable(tree: Record<string, DumpedEntry>): Record<string, unknown> {
  // Inode numbers and link counts of an overlay differ by design; everything else must match.
  return Object.fromEntries(Object.entries(tree).map(([path, e]) => {
    const {ino: _ino, nlink: _nlink, ...rest} = e
    return [path, path === '' ? {...rest, mtime: 0} : rest]
  }))
}

test('a lazy layer presents whiteouts as 0/0 char devices and opaque dirs by xattr', async () => {
  const dir = await lazyMount('upper-alone', upper)
  const tree = await dumpTree(dir, {data: false})
  assert.deepEqual([tree['etc/gone.conf'].type, tree['etc/gone.conf'].rdevMajor, tree['etc/gone.conf'].rdevMinor], ['char', 0, 0])
  assert.equal(tree['etc/.wh.gone.conf'], undefined)
  assert.equal(tree['var/cache/.wh..wh..opq'], undefined)
  assert.deepEqual(tree['var/cache'].xattrs, {'trusted.overlay.opaque': 'y'})
})

test('overlayfs over two lazy layers shows the same merged tree as over the layers extracted', async () => {
  const lazyLower = await lazyMount('lazy-lower', lower)
  const lazyUpper = await lazyMount('lazy-upper', upper)
  const plainLower = join(work, 'plain-lower')
  const plainUpper = join(work, 'plain-upper')
  mkdirSync(plainLower)
  mkdirSync(plainUpper)
  await writePlainLayer(plainLower, lower)
  await writePlainLayer(plainUpper, upper)
  const lazyMerged = join(work, 'lazy-merged')
  const plainMerged = join(work, 'plain-merged')
  for (const d of [lazyMerged, plainMerged]) {
    mkdirSync(d)
    mountpoints.push(d)
  }
  await mountOverlay([lazyUpper, lazyLower], lazyMerged)
  await mountOverlay([plainUpper, plainLower], plainMerged)
  const lazyTree = await dumpTree(lazyMerged)
  const plainTree = await dumpTree(plainMerged)
  assert.equal(lazyTree['etc/gone.conf'], undefined, 'the whiteout hides the lower file')
  assert.deepEqual(Object.keys(lazyTree).filter((p) => p.startsWith('var/cache/')), ['var/cache/fresh'], 'the opaque dir hides the lower entries')
  assert.ok(lazyTree['etc/keep.conf'] && lazyTree['etc/new.conf'] && lazyTree['opt/tool'])
  assert.deepEqual(comparable(lazyTree), comparable(plainTree))
})
