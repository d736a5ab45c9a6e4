// Adapts the eStargz reader (src/estargz/reader.ts) to what lazyfs needs. The reader already
// resolves hardlinks to one node object, synthesizes parent dirs and hides the landmarks; lazyfs
// adds whiteout translation and inode numbers on top (fs-tree.ts).
import type {ChunkRef, EstargzNode, EstargzReader} from '../estargz/reader.js'
import type {LayerContent} from './layer-content.js'

export function layerContentFromReader(reader: EstargzReader): LayerContent<EstargzNode, ChunkRef> {
  let chunks: ChunkRef[] | undefined
  return {
    tree: {
      root: reader.root,
      attrs: (node) => ({
        kind: node.type, mode: node.mode, uid: node.uid, gid: node.gid, size: node.size, mtimeMs: node.mtime * 1000,
        linkName: node.linkName, devMajor: node.devMajor, devMinor: node.devMinor, xattrs: node.xattrs, nlink: node.numLink,
      }),
      children: (node) => reader.children(node).entries(),
    },
    chunksFor: (node, offset, length) => reader.chunksFor(node, offset, length),
    decodeChunk: (chunk, compressed) => reader.decodeChunk(chunk, compressed),
    decoderVerifies: true,
    allChunks: () => (chunks ??= collectChunks(reader.root)),
    prefetchEnd: reader.prefetch.kind === 'landmark' ? reader.prefetch.end : undefined,
  }
}

/** Every chunk of every regular file (each inode once), in blob order. */
function collectChunks(root: EstargzNode): ChunkRef[] {
  const seen = new Set<EstargzNode>()
  const out: ChunkRef[] = []
  const stack = [root]
  while (stack.length > 0) {
    const node = stack.pop()!
    if (seen.has(node)) continue
    seen.add(node)
    if (node.type === 'reg') out.push(...node.chunks)
    if (node.children) stack.push(...node.children.values())
  }
  return out.sort((a, b) => a.compressedOffset - b.compressedOffset || a.innerOffset - b.innerOffset)
}
