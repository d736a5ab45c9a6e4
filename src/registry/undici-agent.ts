// The one module that loads undici, so src/registry/http.ts can load it on the first request with a
// dynamic import of this file (a dynamic import of undici itself would, once bundled, hand back the
// CommonJS module as a default export only).
//
// Only the parts the registry client uses: undici's index loads all of undici (fetch, WebSocket,
// cookies, mocks, caches: ~100 ms of CPU on the path to a lazy container's first byte), while an
// Agent with the request API is these modules, which the index itself assembles the same way.
import type {Agent} from 'undici'
import AgentClass from 'undici/lib/dispatcher/agent.js'
import DispatcherClass from 'undici/lib/dispatcher/dispatcher.js'
import dispatcherApi from 'undici/lib/api/index.js'

// As undici's index does: request/stream/pipeline/… are methods of every dispatcher.
if (!('request' in DispatcherClass.prototype)) Object.assign(DispatcherClass.prototype, dispatcherApi)

export function createAgent(options: Agent.Options): Agent {
  return new AgentClass(options)
}

/**
 * One request to a throwaway server on loopback: undici compiles its HTTP parser (llhttp, a
 * WebAssembly module) at a process's first connection, ~15 ms of CPU that a daemon otherwise pays
 * inside the first Prepare that reaches a registry. Idle-time work for a long-lived process.
 */
export async function warmUp(): Promise<void> {
  const http = process.getBuiltinModule('node:http')
  const server = http.createServer((_req, res) => res.end('ok'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const agent = createAgent({connections: 1})
  try {
    const {port} = server.address() as {port: number}
    const res = await agent.request({origin: `http://127.0.0.1:${port}`, path: '/', method: 'GET'})
    await res.body.dump()
  } finally {
    await agent.close()
    server.close()
  }
}
