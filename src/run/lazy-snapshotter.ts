// Before a pull or run on a remote (lazy) snapshotter: make sure containerd has it as a proxy
// plugin, and that something serves its socket — starting `lazyctl snapshotter serve` when nothing
// does (src/snapshotter/spawn.ts) and waiting until containerd's calls get through to it.
import {existsSync} from 'node:fs'
import {LazyError} from '../cli/errors.js'
import type {ContainerdConnection} from '../containerd/connection.js'
import {snapshotterPlugin} from '../containerd/introspection.js'
import {isRemoteSnapshotter} from '../containerd/remote-snapshot-labels.js'
import {statSnapshot} from '../containerd/snapshots.js'

/** A key no one uses: Stat answers NOT_FOUND once containerd reaches the snapshotter. */
const PROBE_KEY = 'lazyctl-readiness-probe'

export async function ensureLazySnapshotter(conn: ContainerdConnection, snapshotter: string): Promise<{spawned: boolean}> {
  if (!isRemoteSnapshotter(snapshotter)) return {spawned: false}
  const plugin = await snapshotterPlugin(conn, snapshotter)
  if (!plugin) {
    throw new LazyError('SNAPSHOTTER_NOT_CONFIGURED', `containerd at ${conn.address} has no snapshotter "${snapshotter}"`, {
      hint: 'configure it with lazyctl node setup --local, or pull without lazy loading: --snapshotter overlayfs',
    })
  }
  const socket = plugin.exports.address
  // Builtin (not a proxy): containerd runs it itself.
  if (!socket) return {spawned: false}
  const [{ensureSnapshotter}, {locateSnapshotter}] = await Promise.all([import('../snapshotter/spawn.js'), import('../snapshotter/locate.js')])
  // The socket is the one containerd dials; root and config come from lazyctl's config (or its env).
  const location = locateSnapshotter({socket})
  const result = await ensureSnapshotter({
    socket,
    root: location.root,
    // serve refuses a --config that does not exist; without one it uses its defaults.
    ...(existsSync(location.configFile) ? {config: location.configFile} : {}),
    readyCheck: async () => {
      await statSnapshot(conn, snapshotter, PROBE_KEY)
      return true
    },
  })
  return {spawned: result.spawned}
}
