// A layer without any TOC: files are chunked, each chunk gzipped as its own member and appended
// to a blob, exactly the data shape of eStargz, and the LayerContent is built from the same list.
// It pins the FUSE and fetch behaviour independently of the eStargz reader; the end-to-end tests
// use real eStargz blobs.
import {createHash} from 'node:crypto'
import {gunzipSync, gzipSync} from 'node:zlib'
import type {LayerContent} from '../../src/lazyfs/layer-content.js'
import type {ChunkSpan} from '../../src/lazyfs/chunk-fetcher.js'
import type {FsNodeKind, NodeAttrs} from '../../src/lazyfs/fs-tree.js'

export interface SyntheticFile {
  path: string
  kind: FsNodeKind
  mode?: number
  uid?: number
  gid?: number
  mtimeMs?: number
  data?: Buffer
  linkName?: string
  devMajor?: number
  devMinor?: number
  xattrs?: Record<string, string>
  /** Another path of this layer whose inode this name shares (a hardlink). */
  hardlinkTo?: string
}

export interface SyntheticNode {
  attrs: NodeAttrs
  children: Map<string, SyntheticNode>
  chunks: SyntheticChunk[]
}

export interface SyntheticChunk extends ChunkSpan {
  path: string
}

export interface SyntheticLayer {
  blob: Buffer
  content: LayerContent<SyntheticNode, SyntheticChunk>
  chunks: SyntheticChunk[]
}

export function buildSyntheticLayer(files: SyntheticFile[], chunkSize = 64 << 10, prefetchUpTo?: string): SyntheticLayer {
  const members: Buffer[] = []
  let offset = 0
  const dirAttrs = (): NodeAttrs => ({kind: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 0, nlink: 2})
  const root: SyntheticNode = {attrs: dirAttrs(), children: new Map(), chunks: []}
  const byPath = new Map<string, SyntheticNode>([['', root]])
  const allChunks: SyntheticChunk[] = []
  let prefetchEnd: number | undefined

  const parentOf = (path: string): SyntheticNode => {
    const parts = path.split('/')
    parts.pop()
    let node = root
    let sofar = ''
    for (const part of parts) {
      sofar = sofar ? `${sofar}/${part}` : part
      let next = byPath.get(sofar)
      if (!next) {
        next = {attrs: dirAttrs(), children: new Map(), chunks: []}
        node.children.set(part, next)
        byPath.set(sofar, next)
      }
      node = next
    }
    return node
  }

  for (const file of files) {
    const name = file.path.split('/').pop() as string
    const parent = parentOf(file.path)
    if (file.hardlinkTo) {
      const target = byPath.get(file.hardlinkTo)
      if (!target) throw new Error(`hardlink target ${file.hardlinkTo} not defined before ${file.path}`)
      target.attrs.nlink++
      parent.children.set(name, target)
      byPath.set(file.path, target)
      continue
    }
    const data = file.data ?? Buffer.alloc(0)
    const node: SyntheticNode = {
      attrs: {
        kind: file.kind, mode: file.mode ?? (file.kind === 'dir' ? 0o755 : 0o644), uid: file.uid ?? 0, gid: file.gid ?? 0,
        size: data.length, mtimeMs: file.mtimeMs ?? 1_700_000_000_000, nlink: file.kind === 'dir' ? 2 : 1,
        linkName: file.linkName, devMajor: file.devMajor, devMinor: file.devMinor,
        xattrs: new Map(Object.entries(file.xattrs ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
      },
      children: byPath.get(file.path)?.children ?? new Map(),
      chunks: [],
    }
    parent.children.set(name, node)
    byPath.set(file.path, node)
    for (let at = 0; at < data.length; at += chunkSize) {
      const piece = data.subarray(at, Math.min(data.length, at + chunkSize))
      const member = gzipSync(piece)
      const chunk: SyntheticChunk = {
        path: file.path, chunkOffset: at, chunkSize: piece.length, compressedOffset: offset, compressedEnd: offset + member.length,
        chunkDigest: `sha256:${createHash('sha256').update(piece).digest('hex')}`,
      }
      members.push(member)
      offset += member.length
      node.chunks.push(chunk)
      allChunks.push(chunk)
    }
    if (file.path === prefetchUpTo) prefetchEnd = offset
  }

  // A trailing member stands in for the TOC, so the last chunk's end is not the blob's end.
  members.push(gzipSync(Buffer.from('not a toc')))
  const blob = Buffer.concat(members)

  const content: LayerContent<SyntheticNode, SyntheticChunk> = {
    tree: {root, attrs: (n) => n.attrs, children: (n) => n.children},
    chunksFor: (node, position, length) => node.chunks.filter((c) => c.chunkOffset < position + length && c.chunkOffset + c.chunkSize > position),
    decodeChunk: (_chunk, compressed) => gunzipSync(compressed),
    allChunks: () => allChunks,
    prefetchEnd,
  }
  return {blob, content, chunks: allChunks}
}
