// A small HTTP server in front of a rig registry whose handler may answer a request itself or
// forward it: the stand-in for what production registries do and the rig's registry does not
// (faults, redirects to blob storage, uploads and tag pages on another host, mirrors).
import {createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {OutgoingHttpHeaders} from 'node:http'

export type ProxyHandler = (req: IncomingMessage, res: ServerResponse, forward: (rewrite?: ResponseRewrite) => void) => void

/** Changes the upstream's status and headers before they reach the client. */
export type ResponseRewrite = (statusCode: number, headers: OutgoingHttpHeaders) => void

export interface HttpProxy {
  server: Server
  /** `127.0.0.1:PORT`: another host, as far as any client can tell. */
  host: string
  stop(): Promise<void>
}

export async function startProxy(target: string, handler: ProxyHandler): Promise<HttpProxy> {
  const server = createServer((req, res) => {
    const forward = (rewrite?: ResponseRewrite): void => {
      const up = httpRequest(`http://${target}${req.url}`, {method: req.method, headers: {...req.headers, host: target}}, (r) => {
        const headers: OutgoingHttpHeaders = {...r.headers}
        rewrite?.(r.statusCode ?? 502, headers)
        res.writeHead(r.statusCode ?? 502, headers)
        r.pipe(res)
      })
      up.on('error', () => res.destroy())
      req.pipe(up)
    }
    handler(req, res, forward)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    server,
    host: `127.0.0.1:${(server.address() as {port: number}).port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** The Basic Authorization value for a user (what a forwarding "storage" adds for itself). */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
}
