// Adapts the eStargz reader (src/estargz/reader.ts) to what lazyfs needs. The reader already
// resolves hardlinks to one node object, synthesizes parent dirs and hides the landmarks; lazyfs
// adds whiteout translation and inode numbers on top (fs-tree.ts).
import type {ChunkRef, EstargzNode, EstargzReader} from '../estargz/reader.js'
import type {NodeAttrs} from './fs-tree.js'
import type {LayerContent} from './layer-content.js'

export function layerContentFromReader(reader: EstargzReader): LayerContent<EstargzNode, ChunkRef> {
  // One object refilled per call (TreeSource.attrs allows it): the tree build reads it at once.
  const attrs: NodeAttrs = {kind: 'dir', mode: 0, uid: 0, gid: 0, size: 0, mtimeMs: 0, linkName: '', devMajor: 0, devMinor: 0, xattrs: undefined, nlink: 0}
  return {
    tree: {
      root: reader.root,
      attrs: (node) => {
        attrs.kind = node.type
        attrs.mode = node.mode
        attrs.uid = node.uid
        attrs.gid = node.gid
        attrs.size = node.size
        attrs.mtimeMs = node.mtime * 1000
        attrs.linkName = node.linkName
        attrs.devMajor = node.devMajor
        attrs.devMinor = node.devMinor
        attrs.xattrs = node.xattrs
        attrs.nlink = node.numLink
        return attrs
      },
      children: (node) => reader.children(node),
    },
    chunksFor: (node, offset, length) => reader.chunksFor(node, offset, length),
    decodeChunk: (chunk, compressed) => reader.decodeChunk(chunk, compressed),
    decoderVerifies: true,
    allChunks: () => reader.allChunks(),
    prefetchEnd: reader.prefetch.kind === 'landmark' ? reader.prefetch.end : undefined,
  }
}
