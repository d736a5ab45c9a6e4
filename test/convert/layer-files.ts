// What an image's layers contain, for comparing a source with its conversion: every entry's
// type, mode, owner, link target and content digest, by normalised path, layers applied in order.
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {createGunzip} from 'node:zlib'
import {pipeline} from 'node:stream/promises'
import type {Readable} from 'node:stream'
import tar from 'tar-stream'

export interface FileFacts {
  type: string
  mode: number
  uid: number
  gid: number
  linkname?: string
  sha256?: string
}

const ESTARGZ_ONLY = new Set(['stargz.index.json', '.prefetch.landmark', '.no.prefetch.landmark'])

export async function layerFiles(blob: Readable, into: Map<string, FileFacts> = new Map()): Promise<Map<string, FileFacts>> {
  const extract = tar.extract()
  const done = (async () => {
    for await (const entry of extract) {
      const h = entry.header
      const name = h.name.replace(/^\.?\/+/, '').replace(/\/+$/, '')
      const hash = createHash('sha256')
      for await (const c of entry) hash.update(c as Buffer)
      if (!name || ESTARGZ_ONLY.has(name)) continue
      const facts: FileFacts = {type: h.type ?? 'file', mode: (h.mode ?? 0) & 0o7777, uid: h.uid ?? 0, gid: h.gid ?? 0}
      if (h.linkname) facts.linkname = h.linkname.replace(/^\.?\/+/, '')
      if (h.type === 'file') facts.sha256 = hash.digest('hex')
      into.set(name, facts)
    }
  })()
  await Promise.all([pipeline(blob, createGunzip(), extract), done])
  return into
}

export async function imageFiles(layerPaths: string[]): Promise<Map<string, FileFacts>> {
  const out = new Map<string, FileFacts>()
  for (const p of layerPaths) await layerFiles(createReadStream(p), out)
  return out
}
