// Teardown on Ctrl-C / SIGTERM for the demo and benchmarks. The rig's own signal handlers kill
// services and exit at once, which would leave mounts and temp dirs; these run the full async
// teardown first, once, then exit.
import {killTimedRuns} from './timed-run.js'

export function onSignalsTearDown(teardown: () => Promise<void>, say: (line: string) => void): void {
  process.removeAllListeners('SIGINT')
  process.removeAllListeners('SIGTERM')
  let stopping = false
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return
      stopping = true
      say(`${signal}: tearing down`)
      killTimedRuns()
      void teardown().finally(() => process.exit(130))
    })
  }
}
