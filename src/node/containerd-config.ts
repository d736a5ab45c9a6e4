// Merging lazyctl's settings into containerd's config.toml. The parsed tree decides what must
// change; the text is then edited in place (a key inserted under its existing table, a table
// appended) so comments and layout survive, and the edit is accepted only if it parses back to
// exactly the merged tree. Otherwise the whole file is re-serialized from the tree.
import {parse, stringify, TomlError, type TomlTable} from 'smol-toml'
import {LazyError} from '../cli/errors.js'
import {DEFAULT_SNAPSHOTTER_SOCKET, SNAPSHOTTER_PLUGIN_NAME} from '../snapshotter/config.js'

const DEFAULT_PLUGIN_NAME = SNAPSHOTTER_PLUGIN_NAME

export type ConfigSchema = 2 | 3

export interface ContainerdVersion {
  version: string
  major: number
  minor: number
}

/** Reads the version from `containerd --version` ("containerd github.com/containerd/containerd 1.6.20~ds1 <rev>"). */
export function parseContainerdVersion(output: string): ContainerdVersion | undefined {
  const m = /\bv?(\d+)\.(\d+)\.(\d+)\S*/.exec(output.replace(/^containerd\s+\S+\s*/, ''))
  if (!m) return undefined
  return {version: m[0].replace(/^v/, ''), major: Number(m[1]), minor: Number(m[2])}
}

export interface MergeOptions {
  snapshotterSocket?: string
  pluginName?: string
  /** From `containerd --version`; decides the schema of a new file and refuses impossible ones. */
  containerd?: ContainerdVersion
  /** Shown in error messages. */
  path?: string
}

export interface MergeResult {
  changed: boolean
  text: string
  schema: ConfigSchema
  /** One line per setting that changes, e.g. `plugins."io.containerd.grpc.v1.cri".containerd.snapshotter = "stargz"`. */
  changes: string[]
  /** 'edit' when the original text was kept and edited, 'rewrite' when it was re-serialized. */
  method: 'none' | 'edit' | 'rewrite'
  tree: TomlTable
}

interface Setting {
  table: string[]
  key: string
  value: string | boolean
}

export function parseToml(text: string, path = 'config.toml'): TomlTable {
  try {
    return parse(text, {integersAsBigInt: true})
  } catch (err) {
    const where = err instanceof TomlError ? ` at line ${err.line}, column ${err.column}` : ''
    throw new LazyError('NODE_STEP_FAILED', `${path} is not valid TOML${where}`, {cause: err, hint: 'fix the file by hand or restore it from its backup'})
  }
}

export function desiredSettings(schema: ConfigSchema, options: MergeOptions = {}): Setting[] {
  const name = options.pluginName ?? DEFAULT_PLUGIN_NAME
  const socket = options.snapshotterSocket ?? DEFAULT_SNAPSHOTTER_SOCKET
  const proxy = ['proxy_plugins', name]
  const settings: Setting[] = [
    {table: proxy, key: 'type', value: 'snapshot'},
    {table: proxy, key: 'address', value: socket},
  ]
  if (schema === 2) {
    const cri = ['plugins', 'io.containerd.grpc.v1.cri', 'containerd']
    settings.push({table: cri, key: 'snapshotter', value: name}, {table: cri, key: 'disable_snapshot_annotations', value: false})
  } else {
    const images = ['plugins', 'io.containerd.cri.v1.images']
    settings.push(
      {table: images, key: 'snapshotter', value: name},
      {table: images, key: 'disable_snapshot_annotations', value: false},
      // containerd 2.1+ pulls through the transfer service; this export makes it add the remote-snapshot labels.
      {table: [...proxy, 'exports'], key: 'enable_remote_snapshot_annotations', value: 'true'},
    )
  }
  return settings
}

export function chooseSchema(tree: TomlTable | undefined, options: MergeOptions): ConfigSchema {
  const path = options.path ?? 'config.toml'
  const major = options.containerd?.major
  const fileVersion = tree && 'version' in tree ? Number(tree.version as bigint | number) : undefined
  if (tree === undefined || (Object.keys(tree).length === 0)) return major !== undefined && major >= 2 ? 3 : 2
  if (fileVersion === undefined || fileVersion === 1) {
    throw new LazyError('NODE_UNSUPPORTED', `${path} uses config version 1, which lazyctl does not edit`, {hint: 'migrate it first: containerd config migrate (2.x) or rewrite it as version = 2'})
  }
  if (fileVersion >= 3 && major !== undefined && major < 2) {
    throw new LazyError('NODE_UNSUPPORTED', `${path} is config version ${fileVersion} but containerd is ${options.containerd!.version}, which reads only versions 1 and 2`)
  }
  if (fileVersion === 2) return 2
  if (fileVersion === 3 || fileVersion === 4) return 3
  throw new LazyError('NODE_UNSUPPORTED', `${path} uses config version ${fileVersion}, which lazyctl does not know`)
}

export function mergeContainerdConfig(original: string | undefined, options: MergeOptions = {}): MergeResult {
  const path = options.path ?? 'config.toml'
  const text = original ?? ''
  const tree = text.trim() ? parseToml(text, path) : undefined
  const schema = chooseSchema(tree, options)
  const merged: TomlTable = tree ? structuredClone(tree) : {version: BigInt(schema)}
  const pending: Setting[] = []
  for (const s of desiredSettings(schema, options)) {
    const table = tableAt(merged, s.table, true, path)
    if (!valuesEqual(table[s.key], s.value)) {
      table[s.key] = s.value
      pending.push(s)
    }
  }
  const changes = pending.map((s) => `${tomlPath([...s.table, s.key])} = ${tomlValue(s.value)}`)
  if (!pending.length && tree) return {changed: false, text, schema, changes, method: 'none', tree: merged}
  if (!tree) {
    const fresh = `version = ${schema}\n` + appendTables('', pending).replace(/^\n/, '\n')
    return {changed: true, text: checked(fresh, merged) ?? stringify(merged), schema, changes, method: 'rewrite', tree: merged}
  }
  const edited = editText(text, pending)
  const ok = edited !== undefined ? checked(edited, merged) : undefined
  if (ok !== undefined) return {changed: true, text: ok, schema, changes, method: 'edit', tree: merged}
  return {changed: true, text: stringify(merged) + '\n', schema, changes, method: 'rewrite', tree: merged}
}

function checked(text: string, expected: TomlTable): string | undefined {
  try {
    return valuesEqual(parse(text, {integersAsBigInt: true}), expected) ? text : undefined
  } catch {
    return undefined
  }
}

function tableAt(root: TomlTable, path: string[], create: boolean, file: string): TomlTable {
  let node: TomlTable = root
  for (const part of path) {
    let next = node[part]
    if (next === undefined && create) {
      next = {}
      node[part] = next
    }
    if (typeof next !== 'object' || next === null || Array.isArray(next) || next instanceof Date) {
      throw new LazyError('NODE_UNSUPPORTED', `${file}: ${tomlPath(path)} is not a table`)
    }
    node = next as TomlTable
  }
  return node
}

/** Structural equality of parsed TOML values (bigint integers, floats, dates, arrays, tables). */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a instanceof Date && b instanceof Date) return a.getTime() === b.getTime() && String(a) === String(b)
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => valuesEqual(v, b[i]))
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a)
    const kb = Object.keys(b)
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && valuesEqual((a as TomlTable)[k], (b as TomlTable)[k]))
  }
  return false
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/

export function tomlPath(path: string[]): string {
  return path.map((p) => (BARE_KEY.test(p) ? p : JSON.stringify(p))).join('.')
}

function tomlValue(value: string | boolean): string {
  return typeof value === 'boolean' ? String(value) : JSON.stringify(value)
}

interface Header {
  line: number
  path: string[]
  indent: string
}

function headersOf(lines: string[]): Header[] {
  const out: Header[] = []
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)\[(?!\[)(.+?)\]\s*(?:#.*)?$/.exec(lines[i]!)
    if (!m) continue
    const path = headerPath(m[2]!)
    if (path) out.push({line: i, path, indent: m[1]!})
  }
  return out
}

/** The key path of a `[a."b.c".d]` header, read by the TOML parser itself. */
function headerPath(inner: string): string[] | undefined {
  try {
    let node: unknown = parse(`[${inner}]`)
    const path: string[] = []
    while (node && typeof node === 'object') {
      const keys = Object.keys(node)
      if (keys.length !== 1) break
      path.push(keys[0]!)
      node = (node as Record<string, unknown>)[keys[0]!]
    }
    return path
  } catch {
    return undefined
  }
}

const samePath = (a: string[], b: string[]) => a.length === b.length && a.every((p, i) => p === b[i])

/** Edits the original text; undefined when the layout is one this editor does not handle. */
function editText(text: string, settings: Setting[]): string | undefined {
  const lines = text.replace(/\n$/, '').split('\n')
  const toAppend: Setting[] = []
  for (const s of settings) {
    const headers = headersOf(lines)
    const idx = headers.findIndex((h) => samePath(h.path, s.table))
    if (idx < 0) {
      // No header of its own: append one. If dotted keys or an inline table already define it, the
      // result will not parse back to the merged tree and the caller re-serializes instead.
      toAppend.push(s)
      continue
    }
    const header = headers[idx]!
    const end = idx + 1 < headers.length ? headers[idx + 1]!.line : lines.length
    const keyLine = lines.slice(header.line + 1, end).findIndex((l) => new RegExp(`^\\s*"?${escapeRe(s.key)}"?\\s*=`).test(l))
    const body = lines.slice(header.line + 1, end)
    const firstKey = body.find((l) => /^\s*[A-Za-z0-9_"'-]+\s*=/.test(l))
    const indent = firstKey ? /^\s*/.exec(firstKey)![0] : `${header.indent}  `
    const line = `${indent}${s.key} = ${tomlValue(s.value)}`
    if (keyLine >= 0) {
      const at = header.line + 1 + keyLine
      // Only a one-line value can be replaced by a one-line edit.
      if (/[[{]\s*(#.*)?$/.test(lines[at]!) || /"""|'''/.test(lines[at]!)) return undefined
      lines[at] = line
    } else {
      let at = end
      while (at > header.line + 1 && lines[at - 1]!.trim() === '') at--
      lines.splice(at, 0, line)
    }
  }
  return appendTables(lines.join('\n') + '\n', toAppend)
}

function appendTables(text: string, settings: Setting[]): string {
  const groups = new Map<string, Setting[]>()
  for (const s of settings) {
    const key = JSON.stringify(s.table)
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  let out = text
  for (const group of groups.values()) {
    const header = `[${tomlPath(group[0]!.table)}]`
    out += `\n${header}\n${group.map((s) => `  ${s.key} = ${tomlValue(s.value)}`).join('\n')}\n`
  }
  return out
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
