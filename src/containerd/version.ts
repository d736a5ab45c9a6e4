import type {ContainerdConnection} from './connection.js'

export interface ServerVersion {
  version: string
  revision: string
}

export async function serverVersion(conn: ContainerdConnection): Promise<ServerVersion> {
  return conn.unary<object, ServerVersion>('containerd.services.version.v1.Version', 'Version', {}, 'version', {timeoutMs: 5000})
}
