// `-p/--publish [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]`, as docker and nerdctl read it, into the
// portmap plugin's mappings; an empty host port takes a free one, as docker does.
import {createServer} from 'node:net'
import {createSocket} from 'node:dgram'
import {isIP} from 'node:net'
import {LazyError} from '../cli/errors.js'
import type {PortMapping} from './cni.js'

function port(text: string, what: string, spec: string): number {
  const n = Number(text)
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new LazyError('USAGE', `--publish ${spec}: ${what} "${text}" is not a port (1-65535)`)
  return n
}

export function parsePublish(spec: string): PortMapping & {hostPortGiven: boolean} {
  const slash = spec.lastIndexOf('/')
  const protocol = slash >= 0 ? spec.slice(slash + 1) : 'tcp'
  if (protocol !== 'tcp' && protocol !== 'udp') throw new LazyError('USAGE', `--publish ${spec}: protocol "${protocol}" is not tcp or udp`)
  const body = slash >= 0 ? spec.slice(0, slash) : spec
  // An IPv6 host address comes in brackets: [::1]:8080:80.
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(body)
  const parts = v6 ? [v6[1]!, ...v6[2]!.split(':')] : body.split(':')
  if (parts.length > 3 || parts.some((p, i) => p === '' && !(parts.length === 3 && i === 1))) {
    throw new LazyError('USAGE', `--publish ${spec}: want [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]`, {hint: 'e.g. -p 8080:80, -p 127.0.0.1:8080:80/tcp'})
  }
  const containerPort = port(parts.at(-1)!, 'container port', spec)
  const hostText = parts.length >= 2 ? parts.at(-2)! : ''
  const hostIP = parts.length === 3 ? parts[0]! : undefined
  if (hostIP !== undefined && isIP(hostIP) === 0) throw new LazyError('USAGE', `--publish ${spec}: "${hostIP}" is not an IP address`)
  return {
    containerPort,
    hostPort: hostText === '' ? 0 : port(hostText, 'host port', spec),
    hostPortGiven: hostText !== '',
    protocol,
    ...(hostIP !== undefined ? {hostIP} : {}),
  }
}

/**
 * Binds each host port for a moment: a port something on the host listens on is refused (portmap's
 * DNAT would silently shadow it), and an empty host port gets a free one.
 */
export async function reserveHostPorts(mappings: Array<PortMapping & {hostPortGiven: boolean}>): Promise<PortMapping[]> {
  const out: PortMapping[] = []
  for (const m of mappings) {
    const hostPort = await probe(m)
    const {hostPortGiven: _, ...mapping} = {...m, hostPort}
    out.push(mapping)
  }
  return out
}

function probe(m: PortMapping & {hostPortGiven: boolean}): Promise<number> {
  const address = m.hostIP ?? '0.0.0.0'
  const taken = (err: unknown): LazyError =>
    new LazyError('PORT_IN_USE', `cannot publish ${m.hostIP ? `${m.hostIP}:` : ''}${m.hostPort}/${m.protocol}: ${(err as NodeJS.ErrnoException).code === 'EADDRINUSE' ? 'the port is already in use' : (err as Error).message}`, {
      hint: 'choose another host port (-p HOSTPORT:CONTAINERPORT)',
    })
  return new Promise((resolve, reject) => {
    if (m.protocol === 'udp') {
      const socket = createSocket(m.hostIP && isIP(m.hostIP) === 6 ? 'udp6' : 'udp4')
      socket.once('error', (err) => reject(taken(err)))
      socket.bind(m.hostPort, address, () => {
        const got = socket.address().port
        socket.close(() => resolve(got))
      })
      return
    }
    const server = createServer()
    server.once('error', (err) => reject(taken(err)))
    server.listen({port: m.hostPort, host: address, exclusive: true}, () => {
      const got = (server.address() as {port: number}).port
      server.close(() => resolve(got))
    })
  })
}
