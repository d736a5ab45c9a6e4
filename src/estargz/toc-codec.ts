// TOC JSON codec, pure functions: serialize the way the reference writer does (tab-indented,
// Go struct key order, zero values omitted) and parse with validation, so nothing later has to
// trust a field it did not check: names stay inside the layer root, offsets inside the blob,
// chunks tile their file, digests are well-formed.
import {LazyError} from '../cli/errors.js'
import {MAX_TOC_SIZE, TOC_ENTRY_TYPES, TOC_VERSION, type Toc, type TocEntry, type TocEntryType} from './toc.js'

// Key order of the reference Go struct (estargz.TOCEntry), for byte-identical-in-shape JSON.
const KEY_ORDER: (keyof TocEntry)[] = [
  'name', 'type', 'size', 'modtime', 'linkName', 'mode', 'uid', 'gid', 'userName', 'groupName',
  'offset', 'innerOffset', 'devMajor', 'devMinor', 'xattrs', 'digest', 'chunkOffset', 'chunkSize', 'chunkDigest',
]

/** The TOC as the bytes stored in the blob (their sha256 is the TOC digest). */
export function serializeToc(toc: Toc): Buffer {
  const entries = toc.entries.map((entry) => {
    const out: Record<string, unknown> = {}
    for (const key of KEY_ORDER) {
      const value = entry[key]
      if (key !== 'name' && key !== 'type' && isZero(value)) continue
      if (key === 'xattrs') {
        const xattrs = value as Record<string, string>
        out.xattrs = Object.fromEntries(Object.keys(xattrs).sort().map((k) => [k, xattrs[k]]))
      } else out[key] = value
    }
    return out
  })
  return Buffer.from(JSON.stringify({version: toc.version, entries}, null, '\t'), 'utf8')
}

function isZero(value: unknown): boolean {
  return value === undefined || value === 0 || value === '' || (typeof value === 'object' && value !== null && Object.keys(value).length === 0)
}

/**
 * The canonical path of a TOC or tar entry name, relative to the layer root without leading or
 * trailing '/' ("" is the root). Refuses names that are absolute or climb with "..": a reader that
 * cleaned them silently would place files somewhere the layer's author did not intend.
 */
export function canonicalPath(name: string, what = 'entry'): string {
  if (name.includes('\0')) throw unsafe(name, what, 'contains a NUL byte')
  if (name.startsWith('/')) throw unsafe(name, what, 'is an absolute path')
  const parts: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') throw unsafe(name, what, "contains a '..' component")
    parts.push(part)
  }
  return parts.join('/')
}

function unsafe(name: string, what: string, why: string): LazyError {
  return new LazyError('ESTARGZ_UNSAFE_PATH', `${what} name ${JSON.stringify(name)} ${why}`, {hint: 'the layer tries to write outside its root; refusing it'})
}

export interface ParseTocOptions {
  /** Offsets must be below this (the TOC member's offset: payloads come before the TOC). */
  dataEnd: number
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/
const NUMERIC_KEYS = ['size', 'mode', 'uid', 'gid', 'devMajor', 'devMinor', 'offset', 'innerOffset', 'chunkOffset', 'chunkSize'] as const
const STRING_KEYS = ['modtime', 'linkName', 'userName', 'groupName', 'digest', 'chunkDigest'] as const

/** Parses and validates TOC JSON bytes. Unknown keys (e.g. crfs' `NumLink`) are ignored. */
export function parseToc(json: Buffer, options: ParseTocOptions): Toc {
  if (json.length > MAX_TOC_SIZE) {
    throw new LazyError('ESTARGZ_TOC_TOO_LARGE', `TOC JSON is ${json.length} bytes, more than the ${MAX_TOC_SIZE}-byte limit`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(json.toString('utf8'))
  } catch (err) {
    throw new LazyError('ESTARGZ_TOC', `TOC is not valid JSON: ${(err as Error).message}`, {cause: err})
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw tocError('TOC is not a JSON object')
  const {version, entries} = doc as {version?: unknown; entries?: unknown}
  if (version !== TOC_VERSION) throw tocError(`TOC version is ${JSON.stringify(version)}, want ${TOC_VERSION}`)
  if (!Array.isArray(entries)) throw tocError('TOC has no "entries" array')
  const out: TocEntry[] = []
  let lastOffset = -1
  // The file whose chunks are being read, and where its next chunk must start.
  let file: {entry: TocEntry; next: number} | null = null
  for (let i = 0; i < entries.length; i++) {
    const entry = validateEntry(entries[i], i, options)
    if (entry.type === 'chunk') {
      if (!file) throw tocError(`TOC entry ${i} is a chunk that follows no regular file`)
      if ((entry.chunkOffset ?? 0) !== file.next) throw tocError(`TOC entry ${i}: chunk of ${JSON.stringify(file.entry.name)} starts at ${entry.chunkOffset ?? 0}, want ${file.next}`)
    }
    if (entry.type === 'reg' || entry.type === 'chunk') {
      const owner: TocEntry = entry.type === 'reg' ? entry : file!.entry
      const size = owner.size ?? 0
      const start = entry.chunkOffset ?? 0
      if (entry.type === 'reg' && start !== 0) throw tocError(`TOC entry ${i}: a regular file's first chunk must start at 0`)
      if (size > 0) {
        if (entry.offset === undefined || entry.offset === 0) throw tocError(`TOC entry ${i} (${JSON.stringify(owner.name)}) has data but no offset`)
        if (entry.offset < lastOffset || (entry.offset === lastOffset && (entry.innerOffset ?? 0) === 0)) {
          throw tocError(`TOC entry ${i} (${JSON.stringify(owner.name)}): offset ${entry.offset} does not follow the previous one (${lastOffset})`)
        }
        lastOffset = entry.offset
        const chunkSize = entry.chunkSize || size - start
        if (chunkSize <= 0 || start + chunkSize > size) throw tocError(`TOC entry ${i} (${JSON.stringify(owner.name)}): chunk [${start}, ${start + chunkSize}) is outside the file's ${size} bytes`)
        file = {entry: owner, next: start + chunkSize}
      } else {
        file = entry.type === 'reg' ? {entry, next: 0} : file
      }
    } else {
      checkComplete(file, i)
      file = null
    }
    out.push(entry)
  }
  checkComplete(file, entries.length)
  return {version: TOC_VERSION, entries: out}
}

function checkComplete(file: {entry: TocEntry; next: number} | null, i: number): void {
  if (file && file.next < (file.entry.size ?? 0)) {
    throw tocError(`TOC entry ${i}: chunks of ${JSON.stringify(file.entry.name)} cover ${file.next} of its ${file.entry.size} bytes`)
  }
}

function tocError(message: string): LazyError {
  return new LazyError('ESTARGZ_TOC', message)
}

function validateEntry(raw: unknown, i: number, options: ParseTocOptions): TocEntry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw tocError(`TOC entry ${i} is not an object`)
  const r = raw as Record<string, unknown>
  if (typeof r.name !== 'string') throw tocError(`TOC entry ${i} has no name`)
  if (typeof r.type !== 'string' || !TOC_ENTRY_TYPES.includes(r.type as TocEntryType)) throw tocError(`TOC entry ${i} (${JSON.stringify(r.name)}) has unknown type ${JSON.stringify(r.type)}`)
  const entry: TocEntry = {name: r.name, type: r.type as TocEntryType}
  if (entry.type !== 'chunk') canonicalPath(entry.name, 'TOC entry')
  for (const key of NUMERIC_KEYS) {
    const v = r[key]
    if (v === undefined || v === null) continue
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw tocError(`TOC entry ${i} (${JSON.stringify(r.name)}): ${key} ${JSON.stringify(v)} is not a non-negative integer`)
    entry[key] = v
  }
  for (const key of STRING_KEYS) {
    const v = r[key]
    if (v === undefined || v === null) continue
    if (typeof v !== 'string') throw tocError(`TOC entry ${i} (${JSON.stringify(r.name)}): ${key} is not a string`)
    entry[key] = v
  }
  for (const key of ['digest', 'chunkDigest'] as const) {
    if (entry[key] !== undefined && entry[key] !== '' && !DIGEST_RE.test(entry[key]!)) throw tocError(`TOC entry ${i} (${JSON.stringify(r.name)}): ${key} ${JSON.stringify(entry[key])} is not sha256:<hex>`)
  }
  if (r.xattrs !== undefined && r.xattrs !== null) {
    if (typeof r.xattrs !== 'object' || Array.isArray(r.xattrs)) throw tocError(`TOC entry ${i} (${JSON.stringify(r.name)}): xattrs is not an object`)
    const xattrs: Record<string, string> = {}
    for (const [k, v] of Object.entries(r.xattrs as Record<string, unknown>)) {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw tocError(`TOC entry ${i} (${JSON.stringify(r.name)}): xattr ${JSON.stringify(k)} is not base64`)
      xattrs[k] = v
    }
    entry.xattrs = xattrs
  }
  if (entry.offset !== undefined && entry.offset >= options.dataEnd) {
    throw tocError(`TOC entry ${i} (${JSON.stringify(r.name)}): offset ${entry.offset} is outside the blob's data (which ends at ${options.dataEnd})`)
  }
  if (entry.type === 'hardlink' && !entry.linkName) throw tocError(`TOC entry ${i} (${JSON.stringify(r.name)}) is a hardlink without linkName`)
  return entry
}
