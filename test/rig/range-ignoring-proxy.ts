// A proxy in front of a rig registry that drops Range headers, as some pull-through caches and
// corporate proxies do (harbor#23875): every blob GET is answered 200 with the whole blob. It counts
// the body bytes its client's socket accepted, which is what crossed the wire to the client.
import {createServer, request, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'

export interface RangeIgnoringProxy {
  /** From now on, blob requests are taken and never answered (a hung registry); false to stop. */
  hangBlobs(on: boolean): void
  /**
   * From now on, blob range requests that start below `limit` are taken and never answered (the
   * prefetch of an eStargz layer's prioritized files, at its start; its footer and TOC are at the
   * end); resolves when the first such one arrives. undefined to stop.
   */
  hangRangesBelow(limit: number | undefined): Promise<void>
  /** `127.0.0.1:PORT`: use it as the registry host of image references. */
  host: string
  /** Body bytes sent to clients so far. */
  bytesSent(): number
  /** Requests that carried a Range header (which the proxy dropped). */
  rangeRequests(): number
  stop(): Promise<void>
}

/**
 * `keepRange`: pass Range headers on (a healthy proxy, for the hung-registry tests that only need
 * `hangBlobs`).
 */
export async function startRangeIgnoringProxy(upstream: string, options: {keepRange?: boolean} = {}): Promise<RangeIgnoringProxy> {
  const target = new URL(upstream)
  let sent = 0
  let ranged = 0
  let hang = false
  let hangBelow: {limit: number; arrived: () => void} | undefined
  const server: Server = createServer((req, res) => {
    if (hang && req.url?.includes('/blobs/sha256:')) return
    const start = /^bytes=(\d+)-/.exec(String(req.headers.range ?? ''))?.[1]
    if (hangBelow && req.url?.includes('/blobs/sha256:') && start !== undefined && Number(start) < hangBelow.limit) {
      hangBelow.arrived()
      return
    }
    const headers: Record<string, string | string[] | undefined> = {...req.headers, host: target.host}
    if (headers.range !== undefined) ranged++
    if (!options.keepRange) {
      delete headers.range
      delete headers['if-range']
    }
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
    hangBlobs: (on) => {
      hang = on
    },
    hangRangesBelow: (limit) => {
      if (limit === undefined) {
        hangBelow = undefined
        return Promise.resolve()
      }
      return new Promise<void>((arrived) => {
        hangBelow = {limit, arrived}
      })
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
