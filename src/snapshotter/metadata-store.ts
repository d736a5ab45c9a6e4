// The snapshotter's metadata: one SQLite table of snapshots (WAL journal, every change in a
// transaction), with the semantics of containerd's snapshot storage: keys of active snapshots and
// views and names of committed ones share one namespace; only committed snapshots can be parents;
// a commit moves the snapshot (same id, same directory) from its key to its name.
import Database from 'better-sqlite3'
import {SnapshotError} from './snapshot-error.js'

export type SnapshotKind = 'VIEW' | 'ACTIVE' | 'COMMITTED'
const KIND_CODES: Record<SnapshotKind, number> = {VIEW: 1, ACTIVE: 2, COMMITTED: 3}
const KIND_BY_CODE: Record<number, SnapshotKind> = {1: 'VIEW', 2: 'ACTIVE', 3: 'COMMITTED'}

export type Labels = Record<string, string>

export interface SnapshotInfo {
  name: string
  /** Name of the parent (a committed snapshot), '' for none. */
  parent: string
  kind: SnapshotKind
  /** Microseconds since the epoch. */
  createdAtUs: number
  updatedAtUs: number
  labels: Labels
}

export interface SnapshotRecord {
  id: number
  info: SnapshotInfo
  /** Recorded usage (committed snapshots; 0 for remote ones). */
  size: number
  inodes: number
  /** A lazily mounted layer; its `fs` dir is a FUSE mountpoint while the daemon runs. */
  remote: boolean
}

export interface SnapshotChain {
  id: number
  kind: SnapshotKind
  /** Ids of the ancestors, closest first. */
  parentIds: number[]
  remoteParentIds: number[]
}

interface Row {
  id: number
  key: string
  parent_id: number | null
  parent_key: string | null
  kind: number
  created_us: number
  updated_us: number
  labels: string
  size: number
  inodes: number
  remote: number
}

const SCHEMA_VERSION = 1

export class MetadataStore {
  private readonly db: Database.Database

  constructor(path: string) {
    this.db = new Database(path)
    this.db.pragma('journal_mode = WAL')
    // FULL: a commit survives a power cut, not only a process crash; commits are rare enough.
    this.db.pragma('synchronous = FULL')
    this.db.pragma('foreign_keys = ON')
    this.db.pragma('busy_timeout = 5000')
    this.migrate()
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', {simple: true}) as number
    if (version > SCHEMA_VERSION) {
      throw new SnapshotError('FAILED_PRECONDITION', `metadata schema ${version} is newer than this lazyctl understands (${SCHEMA_VERSION})`)
    }
    if (version === SCHEMA_VERSION) return
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL UNIQUE,
        parent_id INTEGER REFERENCES snapshots(id),
        kind INTEGER NOT NULL,
        created_us INTEGER NOT NULL,
        updated_us INTEGER NOT NULL,
        labels TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        inodes INTEGER NOT NULL DEFAULT 0,
        remote INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
      PRAGMA user_version = ${SCHEMA_VERSION};
    `)
  }

  /** Runs `fn` in one transaction (better-sqlite3 transactions are synchronous: no await inside). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate()
  }

  close(): void {
    this.db.close()
  }

  private row(key: string): Row | undefined {
    return this.db
      .prepare<[string], Row>(
        `SELECT s.*, p.key AS parent_key FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id WHERE s.key = ?`,
      )
      .get(key)
  }

  private chainOf(parentId: number | null): {ids: number[]; remoteIds: number[]} {
    const ids: number[] = []
    const remoteIds: number[] = []
    const stmt = this.db.prepare<[number], {id: number; parent_id: number | null; remote: number}>('SELECT id, parent_id, remote FROM snapshots WHERE id = ?')
    let next = parentId
    while (next !== null) {
      const row = stmt.get(next)
      if (!row) throw new SnapshotError('UNKNOWN', `metadata is inconsistent: parent id ${next} missing`)
      ids.push(row.id)
      if (row.remote) remoteIds.push(row.id)
      next = row.parent_id
    }
    return {ids, remoteIds}
  }

  /** Creates an active snapshot or a view. The caller creates its directory inside the same transaction. */
  create(kind: 'ACTIVE' | 'VIEW', key: string, parent: string, labels: Labels): SnapshotChain {
    if (key === '') throw new SnapshotError('INVALID_ARGUMENT', 'snapshot key must not be empty')
    if (this.row(key)) throw new SnapshotError('ALREADY_EXISTS', `snapshot ${key}: already exists`)
    let parentId: number | null = null
    if (parent !== '') {
      const parentRow = this.row(parent)
      if (!parentRow) throw new SnapshotError('NOT_FOUND', `missing parent ${JSON.stringify(parent)}: not found`)
      if (KIND_BY_CODE[parentRow.kind] !== 'COMMITTED') {
        throw new SnapshotError('FAILED_PRECONDITION', `parent ${JSON.stringify(parent)} is not committed snapshot`)
      }
      parentId = parentRow.id
    }
    const now = nowUs()
    const result = this.db
      .prepare('INSERT INTO snapshots (key, parent_id, kind, created_us, updated_us, labels) VALUES (?, ?, ?, ?, ?, ?)')
      .run(key, parentId, KIND_CODES[kind], now, now, JSON.stringify(labels))
    const chain = this.chainOf(parentId)
    return {id: Number(result.lastInsertRowid), kind, parentIds: chain.ids, remoteParentIds: chain.remoteIds}
  }

  get(key: string): SnapshotRecord {
    const row = this.row(key)
    if (!row) throw new SnapshotError('NOT_FOUND', `snapshot ${key}: not found`)
    return toRecord(row)
  }

  has(key: string): boolean {
    return this.row(key) !== undefined
  }

  /** The chain of an active snapshot or view (what Mounts needs). */
  chain(key: string): SnapshotChain {
    const row = this.row(key)
    if (!row) throw new SnapshotError('NOT_FOUND', `snapshot ${key}: not found`)
    const kind = KIND_BY_CODE[row.kind]!
    if (kind !== 'ACTIVE' && kind !== 'VIEW') {
      throw new SnapshotError('FAILED_PRECONDITION', `requested snapshot ${key} not active or view`)
    }
    const chain = this.chainOf(row.parent_id)
    return {id: row.id, kind, parentIds: chain.ids, remoteParentIds: chain.remoteIds}
  }

  /** Commits the active snapshot `key` as `name`; labels are replaced, not inherited (as containerd does). */
  commit(key: string, name: string, labels: Labels, usage: {size: number; inodes: number}, remote = false): SnapshotRecord {
    if (name === '') throw new SnapshotError('INVALID_ARGUMENT', 'snapshot name must not be empty')
    if (this.row(name)) throw new SnapshotError('ALREADY_EXISTS', `committed snapshot ${name}: already exists`)
    const row = this.row(key)
    if (!row) throw new SnapshotError('NOT_FOUND', `failed to get active snapshot ${JSON.stringify(key)}: not found`)
    if (KIND_BY_CODE[row.kind] !== 'ACTIVE') throw new SnapshotError('FAILED_PRECONDITION', `snapshot ${key} is not active`)
    const now = nowUs()
    this.db
      .prepare('UPDATE snapshots SET key = ?, kind = ?, created_us = ?, updated_us = ?, labels = ?, size = ?, inodes = ?, remote = ? WHERE id = ?')
      .run(name, KIND_CODES.COMMITTED, now, now, JSON.stringify(labels), usage.size, usage.inodes, remote ? 1 : 0, row.id)
    return this.get(name)
  }

  /** Removes `key`'s record; refuses while it has children. Returns what was removed. */
  remove(key: string): SnapshotRecord {
    const row = this.row(key)
    if (!row) throw new SnapshotError('NOT_FOUND', `snapshot ${key}: not found`)
    const child = this.db.prepare<[number], {key: string}>('SELECT key FROM snapshots WHERE parent_id = ? LIMIT 1').get(row.id)
    if (child) throw new SnapshotError('FAILED_PRECONDITION', `cannot remove snapshot with child: ${key} is the parent of ${child.key}`)
    this.db.prepare('DELETE FROM snapshots WHERE id = ?').run(row.id)
    return toRecord(row)
  }

  /**
   * Updates labels: no paths (or `labels`) replaces them all; `labels.<k>` sets or deletes one key.
   * Any other field is refused, as containerd refuses it.
   */
  updateLabels(name: string, labels: Labels, paths: string[]): SnapshotInfo {
    const row = this.row(name)
    if (!row) throw new SnapshotError('NOT_FOUND', `snapshot ${name}: not found`)
    let next: Labels = JSON.parse(row.labels) as Labels
    if (paths.length === 0) {
      next = {...labels}
    } else {
      for (const path of paths) {
        if (path === 'labels') {
          next = {...labels}
        } else if (path.startsWith('labels.')) {
          const label = path.slice('labels.'.length)
          if (labels[label] !== undefined) next[label] = labels[label]
          else delete next[label]
        } else {
          throw new SnapshotError('INVALID_ARGUMENT', `cannot update ${JSON.stringify(path)} field on snapshot ${JSON.stringify(name)}`)
        }
      }
    }
    this.db.prepare('UPDATE snapshots SET labels = ?, updated_us = ? WHERE id = ?').run(JSON.stringify(next), nowUs(), row.id)
    return this.get(name).info
  }

  /** Every snapshot, ordered by key (containerd's storage walks keys in order). */
  all(): SnapshotRecord[] {
    return this.db
      .prepare<[], Row>(`SELECT s.*, p.key AS parent_key FROM snapshots s LEFT JOIN snapshots p ON p.id = s.parent_id ORDER BY s.key`)
      .all()
      .map(toRecord)
  }

  ids(): Set<number> {
    return new Set(this.db.prepare<[], {id: number}>('SELECT id FROM snapshots').all().map((row) => row.id))
  }
}

function toRecord(row: Row): SnapshotRecord {
  return {
    id: row.id,
    info: {
      name: row.key,
      parent: row.parent_key ?? '',
      kind: KIND_BY_CODE[row.kind] ?? 'VIEW',
      createdAtUs: row.created_us,
      updatedAtUs: row.updated_us,
      labels: JSON.parse(row.labels) as Labels,
    },
    size: row.size,
    inodes: row.inodes,
    remote: row.remote === 1,
  }
}

function nowUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}
