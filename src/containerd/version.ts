import type {ContainerdConnection} from './connection.js'

export interface ServerVersion {
  version: string
  revision: string
}

export async function serverVersion(conn: ContainerdConnection): Promise<ServerVersion> {
  const client = conn.service('containerd.services.version.v1.Version')
  return conn.unary<object, ServerVersion>(client, 'Version', {}, 'version', {timeoutMs: 5000})
}
