// Types for the undici modules src/registry/undici-agent.ts loads directly (undici ships types for
// its index only).
declare module 'undici/lib/dispatcher/agent.js' {
  import type {Agent} from 'undici'
  const AgentClass: typeof Agent
  export default AgentClass
}
declare module 'undici/lib/dispatcher/dispatcher.js' {
  import type {Dispatcher} from 'undici'
  const DispatcherClass: typeof Dispatcher
  export default DispatcherClass
}
declare module 'undici/lib/api/index.js' {
  const dispatcherApi: Record<string, unknown>
  export default dispatcherApi
}
