// TOC JSON codec, pure functions: serialize the way the reference writer does (tab-indented,
// Go struct key order, zero values omitted) and parse with validation, so nothing later has to
// trust a field it did not check: names stay inside the layer root, offsets inside the blob,
// chunks tile their file, digests are well-formed.
import {LazyError} from '../cli/errors.js'
import {SLICE_ENTRIES, runAtOnce, type Sliced} from './slices.js'
import {MAX_CHUNK_SIZE, MAX_TOC_ENTRIES, MAX_TOC_SIZE, TOC_ENTRY_TYPES, TOC_VERSION, type Toc, type TocEntry} from './toc.js'

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
  const simple = alreadyCanonical(name)
  if (simple !== null) return simple
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

/**
 * `name` without a leading "./" and its one trailing '/', when the rest is already canonical (no NUL, no leading '/', no
 * empty, '.' or '..' component): what writers emit, told by a few native string searches instead
 * of a split per name (a '.' or '..' component needs a '.' at the start of a component). Null sends
 * the name through the full check above.
 */
function alreadyCanonical(name: string): string | null {
  // "./x" as `tar -C dir .` writes it: the rest is checked the same way.
  const start = name.charCodeAt(0) === DOT && name.charCodeAt(1) === SLASH ? 2 : 0
  if (name.length === start || name.charCodeAt(start) === SLASH || name.charCodeAt(start) === DOT) return null
  if (name.includes('/.', start) || name.includes('//', start) || name.includes('\0')) return null
  const end = name.charCodeAt(name.length - 1) === SLASH ? name.length - 1 : name.length
  return start === 0 && end === name.length ? name : name.slice(start, end)
}
const SLASH = 0x2f
const DOT = 0x2e

function unsafe(name: string, what: string, why: string): LazyError {
  return new LazyError('ESTARGZ_UNSAFE_PATH', `${what} name ${JSON.stringify(name)} ${why}`, {hint: 'the layer tries to write outside its root; refusing it'})
}

export interface ParseTocOptions {
  /** Offsets must be below this (the TOC member's offset: payloads come before the TOC). */
  dataEnd: number
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/
const TYPES: ReadonlySet<string> = new Set(TOC_ENTRY_TYPES)

/** A validated TOC and the canonical path of each entry ("" for chunk entries). */
export interface ParsedToc {
  toc: Toc
  /** `paths[i]` is canonicalPath(toc.entries[i].name), computed once while validating. */
  paths: string[]
}

/** Parses and validates TOC JSON bytes. Unknown keys (e.g. crfs' `NumLink`) are ignored. */
export function parseToc(json: Buffer, options: ParseTocOptions): Toc {
  return parseTocWithPaths(json, options).toc
}

/** parseTocInSlices, at once. */
export function parseTocWithPaths(json: Buffer, options: ParseTocOptions): ParsedToc {
  return runAtOnce(parseTocInSlices(json, options))
}

/**
 * parseToc, also returning each entry's canonical path, so the reader need not derive it again;
 * in slices of entries (see slices.ts).
 */
export function* parseTocInSlices(json: Buffer, options: ParseTocOptions): Sliced<ParsedToc> {
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
  if (entries.length > MAX_TOC_ENTRIES) {
    throw new LazyError('ESTARGZ_TOC_TOO_LARGE', `TOC has ${entries.length} entries, more than the limit of ${MAX_TOC_ENTRIES}`)
  }
  const out: TocEntry[] = new Array<TocEntry>(entries.length)
  const paths: string[] = new Array<string>(entries.length)
  let lastOffset = -1
  // The file whose chunks are being read, and where its next chunk must start.
  let file: TocEntry | null = null
  let fileNext = 0
  for (let i = 0; i < entries.length; i++) {
    if (i % SLICE_ENTRIES === SLICE_ENTRIES - 1) yield
    const entry = validateEntry(entries[i], i, options)
    paths[i] = entry.type === 'chunk' ? '' : canonicalPath(entry.name, 'TOC entry')
    if (entry.type === 'chunk') {
      if (!file) throw tocError(`TOC entry ${i} is a chunk that follows no regular file`)
      if ((entry.chunkOffset ?? 0) !== fileNext) throw tocError(`TOC entry ${i}: chunk of ${JSON.stringify(file.name)} starts at ${entry.chunkOffset ?? 0}, want ${fileNext}`)
    }
    if (entry.type === 'reg' || entry.type === 'chunk') {
      const owner: TocEntry = entry.type === 'reg' ? entry : file!
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
        // innerOffset bytes are inflated and skipped before the chunk's own: bounded alike.
        if (chunkSize > MAX_CHUNK_SIZE || (entry.innerOffset ?? 0) > MAX_CHUNK_SIZE) {
          throw new LazyError('ESTARGZ_CHUNK_TOO_LARGE', `TOC entry ${i} (${JSON.stringify(owner.name)}): a chunk of ${chunkSize} bytes at inner offset ${entry.innerOffset ?? 0}, more than the ${MAX_CHUNK_SIZE}-byte limit`)
        }
        file = owner
        fileNext = start + chunkSize
      } else if (entry.type === 'reg') {
        file = entry
        fileNext = 0
      }
    } else {
      checkComplete(file, fileNext, i)
      file = null
    }
    out[i] = entry
  }
  checkComplete(file, fileNext, entries.length)
  return {toc: {version: TOC_VERSION, entries: out}, paths}
}

function checkComplete(file: TocEntry | null, next: number, i: number): void {
  if (file && next < (file.size ?? 0)) {
    throw tocError(`TOC entry ${i}: chunks of ${JSON.stringify(file.name)} cover ${next} of its ${file.size} bytes`)
  }
}

function tocError(message: string): LazyError {
  return new LazyError('ESTARGZ_TOC', message)
}

/**
 * One raw entry, checked. Field by field rather than over a key list: this runs once per entry of
 * TOCs with many thousands of them. The parsed object itself is the entry when it holds nothing
 * but known keys with non-null values (what writers emit): a copy of every entry was most of the
 * garbage a TOC open made. Otherwise a copy with only the known, non-null keys.
 */
function validateEntry(raw: unknown, i: number, options: ParseTocOptions): TocEntry {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw tocError(`TOC entry ${i} is not an object`)
  const r = raw as Record<string, unknown>
  const name = r.name
  if (typeof name !== 'string') throw tocError(`TOC entry ${i} has no name`)
  const type = r.type
  if (typeof type !== 'string' || !TYPES.has(type)) throw tocError(`TOC entry ${i} (${JSON.stringify(name)}) has unknown type ${JSON.stringify(type)}`)
  // What the checks saw: ABSENT, PRESENT or NULL per known key, summed.
  const tally = count(r.size, 'size', i, name) + text(r.modtime, 'modtime', i, name) + text(r.linkName, 'linkName', i, name) +
    count(r.mode, 'mode', i, name) + count(r.uid, 'uid', i, name) + count(r.gid, 'gid', i, name) +
    text(r.userName, 'userName', i, name) + text(r.groupName, 'groupName', i, name) +
    count(r.offset, 'offset', i, name) + count(r.innerOffset, 'innerOffset', i, name) +
    count(r.devMajor, 'devMajor', i, name) + count(r.devMinor, 'devMinor', i, name) + xattrs(r.xattrs, i, name) +
    digest(r.digest, 'digest', i, name) + count(r.chunkOffset, 'chunkOffset', i, name) + count(r.chunkSize, 'chunkSize', i, name) +
    // A one-chunk file's chunkDigest is its digest, just checked.
    (typeof r.chunkDigest === 'string' && r.chunkDigest === r.digest ? PRESENT : digest(r.chunkDigest, 'chunkDigest', i, name))
  // No null and no key but name, type and the known ones seen: the parsed object is the entry.
  const clean = tally < NULL && Object.keys(r).length === 2 + tally
  const entry = clean ? (r as unknown as TocEntry) : knownKeysOf(r)
  if (entry.offset !== undefined && entry.offset >= options.dataEnd) {
    throw tocError(`TOC entry ${i} (${JSON.stringify(name)}): offset ${entry.offset} is outside the blob's data (which ends at ${options.dataEnd})`)
  }
  if (entry.type === 'hardlink' && !entry.linkName) throw tocError(`TOC entry ${i} (${JSON.stringify(name)}) is a hardlink without linkName`)
  return entry
}

/** A copy of a checked raw entry with only its known, non-null keys. */
function knownKeysOf(r: Record<string, unknown>): TocEntry {
  const entry: Record<string, unknown> = {}
  for (const key of KEY_ORDER) {
    const value = r[key]
    if (value !== undefined && value !== null) entry[key] = key === 'xattrs' ? {...(value as Record<string, string>)} : value
  }
  return entry as unknown as TocEntry
}

// What a field check returns (see validateEntry): sums stay below NULL while no value is null.
const ABSENT = 0
const PRESENT = 1
const NULL = 0x100

function count(v: unknown, key: string, i: number, name: string): number {
  if (v === undefined) return ABSENT
  if (v === null) return NULL
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw tocError(`TOC entry ${i} (${JSON.stringify(name)}): ${key} ${JSON.stringify(v)} is not a non-negative integer`)
  return PRESENT
}

function text(v: unknown, key: string, i: number, name: string): number {
  if (v === undefined) return ABSENT
  if (v === null) return NULL
  if (typeof v !== 'string') throw tocError(`TOC entry ${i} (${JSON.stringify(name)}): ${key} is not a string`)
  return PRESENT
}

function digest(v: unknown, key: string, i: number, name: string): number {
  const seen = text(v, key, i, name)
  if (seen === PRESENT && v !== '' && !DIGEST_RE.test(v as string)) throw tocError(`TOC entry ${i} (${JSON.stringify(name)}): ${key} ${JSON.stringify(v)} is not sha256:<hex>`)
  return seen
}

function xattrs(v: unknown, i: number, name: string): number {
  if (v === undefined) return ABSENT
  if (v === null) return NULL
  if (typeof v !== 'object' || Array.isArray(v)) throw tocError(`TOC entry ${i} (${JSON.stringify(name)}): xattrs is not an object`)
  for (const [k, value] of Object.entries(v as Record<string, unknown>)) {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw tocError(`TOC entry ${i} (${JSON.stringify(name)}): xattr ${JSON.stringify(k)} is not base64`)
  }
  return PRESENT
}
