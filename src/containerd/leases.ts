// Leases: every pull (and container creation) runs inside one, so containerd's garbage collector
// cannot take content or snapshots before the image record or container that references them exists.
import {randomBytes} from 'node:crypto'
import type {ContainerdConnection} from './connection.js'

/** containerd's Go client default: a lease that outlives a crashed client expires after a day. */
const LEASE_EXPIRY_MS = 24 * 60 * 60 * 1000

export const LEASE_EXPIRE_LABEL = 'containerd.io/gc.expire'

/** Creates a lease named like the Go client's (`<ns time>-<random>`), expiring in 24 h. */
export async function createLease(conn: ContainerdConnection, labels: Record<string, string> = {}): Promise<string> {
  const id = `lazyctl-${process.hrtime.bigint()}-${randomBytes(3).toString('base64url')}`
  await conn.call('leases', 'Create', {id, labels: {[LEASE_EXPIRE_LABEL]: new Date(Date.now() + LEASE_EXPIRY_MS).toISOString(), ...labels}}, 'create lease')
  return id
}

export async function deleteLease(conn: ContainerdConnection, id: string): Promise<void> {
  await conn.call('leases', 'Delete', {id, sync: false}, `delete lease ${id}`)
}

export async function listLeases(conn: ContainerdConnection): Promise<string[]> {
  const res = await conn.call('leases', 'List', {filters: []}, 'list leases')
  return res.leases.map((l) => l.id)
}

/** Runs `fn` inside a fresh lease and deletes the lease afterwards, whether `fn` succeeds or not. */
export async function withLease<T>(conn: ContainerdConnection, fn: (lease: string) => Promise<T>): Promise<T> {
  const lease = await createLease(conn)
  try {
    return await fn(lease)
  } finally {
    await deleteLease(conn, lease).catch(() => undefined)
  }
}
