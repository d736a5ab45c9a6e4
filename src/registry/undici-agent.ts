// The one module that imports undici, so src/registry/http.ts can load it on the first request
// with a dynamic import of this file. (A dynamic import of undici itself would, once bundled, hand
// back the CommonJS module as a default export only.)
import {Agent} from 'undici'

export function createAgent(options: Agent.Options): Agent {
  return new Agent(options)
}
