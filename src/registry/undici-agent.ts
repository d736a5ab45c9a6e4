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
