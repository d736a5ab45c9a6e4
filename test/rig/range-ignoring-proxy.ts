// A proxy in front of a rig registry that drops Range headers, as some pull-through caches and
// corporate proxies do (harbor#23875): every blob GET is answered 200 with the whole blob. It counts
// the body bytes its client's socket accepted, which is what crossed the wire to the client.
import {createServer, request, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

export interface RangeIgnoringProxy {
  /** `127.0.0.1:PORT`: use it as the registry host of image references. */
  host: string
  /** Body bytes sent to clients so far. */
  bytesSent(): number
  /** Requests that carried a Range header (which the proxy dropped). */
  rangeRequests(): number
  stop(): Promise<void>
}

export async function startRangeIgnoringProxy(upstream: string): Promise<RangeIgnoringProxy> {
  const target = new URL(upstream)
  let sent = 0
  let ranged = 0
  const server: Server = createServer((req, res) => {
    const headers: Record<string, string | string[] | undefined> = {...req.headers, host: target.host}
    if (headers.range !== undefined) ranged++
    delete headers.range
    delete headers['if-range']
    const forwarded = request({host: target.hostname, port: target.port, method: req.method, path: req.url, headers}, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      // Counted when the client's socket took the bytes: a client that hangs up early got only those.
      answer.on('data', (chunk: Buffer) => {
        const more = res.write(chunk, (err) => {
          if (!err) sent += chunk.length
        })
        if (!more) answer.pause()
      })
      res.on('drain', () => answer.resume())
      res.on('close', () => answer.destroy())
      answer.on('end', () => res.end())
    })
    forwarded.on('error', () => res.destroy())
    req.pipe(forwarded)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    bytesSent: () => sent,
    rangeRequests: () => ranged,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
