// containerd's plugin list: which snapshotters (builtin and proxy) it has, and whether they loaded.
import type {ContainerdConnection} from './connection.js'

export interface PluginInfo {
  type: string
  id: string
  /** For a proxy plugin: `address` (its socket). */
  exports: Record<string, string>
  /** Set when the plugin failed to initialise. */
  initError?: string
}

export async function listPlugins(conn: ContainerdConnection, filters: string[] = []): Promise<PluginInfo[]> {
  const res = await conn.call('introspection', 'Plugins', {filters}, 'list containerd plugins', {timeoutMs: 5000})
  return res.plugins.map((p) => {
    const out: PluginInfo = {type: p.type, id: p.id, exports: p.exports}
    if (p.init_err && (p.init_err.code !== 0 || p.init_err.message)) out.initError = p.init_err.message || `code ${p.init_err.code}`
    return out
  })
}

/** The snapshotter plugin named `name` (e.g. the `stargz` proxy), or undefined when containerd has none. */
export async function snapshotterPlugin(conn: ContainerdConnection, name: string): Promise<PluginInfo | undefined> {
  return (await listPlugins(conn, [`type==io.containerd.snapshotter.v1,id==${name}`]))[0]
}
