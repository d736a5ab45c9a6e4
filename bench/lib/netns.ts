// A network namespace whose loopback is shaped with tc tbf, for benchmarks at a fixed link speed.
// Enter it with `nsenter --net=/run/netns/NAME`: `ip netns exec` would also create a private mount
// namespace, hiding the snapshotter's FUSE mounts from containerd.
import {execFileSync, spawn} from 'node:child_process'

export interface ShapedNamespace {
  name: string
  /** Prefix for a command that must run inside the namespace. */
  wrap(command: string, args: string[]): {command: string; args: string[]}
  /** Shapes the namespace's loopback to `rateMbit` (replacing any earlier shaping); 0 removes it. */
  shape(rateMbit: number): void
  destroy(): void
}

/** A namespace with loopback up, shaped to `rateMbit` (0: not shaped yet; see shape()). */
export function createShapedNamespace(name: string, rateMbit: number): ShapedNamespace {
  if (!name.startsWith('lazyctl-')) throw new Error('namespace names start with lazyctl- so the leftovers check finds them')
  try {
    execFileSync('ip', ['netns', 'del', name], {stdio: 'ignore'})
  } catch {
    // did not exist
  }
  execFileSync('ip', ['netns', 'add', name])
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
  const ns: ShapedNamespace = {
    name,
    wrap: (command, args) => ({command: 'nsenter', args: [`--net=/run/netns/${name}`, command, ...args]}),
    shape: (rate) => shapeNamespace(name, rate),
    destroy() {
      try {
        execFileSync('ip', ['netns', 'del', name], {stdio: 'ignore'})
      } catch {
        // already gone
      }
    },
  }
  if (rateMbit > 0) ns.shape(rateMbit)
  return ns
}

/** Shapes loopback of the namespace `name` with tbf at `rateMbit`; 0 removes the shaping. */
export function shapeNamespace(name: string, rateMbit: number): void {
  try {
    execFileSync('tc', ['-n', name, 'qdisc', 'del', 'dev', 'lo', 'root'], {stdio: 'ignore'})
  } catch {
    // no qdisc of ours yet
  }
  if (rateMbit <= 0) return
  // loopback's MTU is 64 KiB: the bucket must hold a few such packets or tbf stalls the flow.
  execFileSync('tc', ['-n', name, 'qdisc', 'add', 'dev', 'lo', 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', '256kb', 'latency', '100ms'])
}

/** Set in the environment of a process re-executed inside a namespace (its name). */
export const NETNS_ENV = 'LAZYCTL_BENCH_NETNS'

/**
 * Runs this very script again inside a fresh namespace `name` (nsenter --net, same mount
 * namespace), waits for it, and removes the namespace afterwards — also when the child fails or
 * the user presses Ctrl-C (the child gets the signal from the terminal and tears its services
 * down; this process waits for it). Resolves with the child's exit status.
 */
export async function reexecInNamespace(name: string): Promise<number> {
  const ns = createShapedNamespace(name, 0)
  // This process only waits: other handlers (the test rig's exit at once on a signal) would skip
  // the namespace's removal below.
  process.removeAllListeners('SIGINT')
  process.removeAllListeners('SIGTERM')
  const ignore = (): void => undefined
  process.on('SIGINT', ignore)
  process.on('SIGTERM', ignore)
  try {
    const {command, args} = ns.wrap(process.execPath, [...process.execArgv, ...process.argv.slice(1)])
    const child = spawn(command, args, {stdio: 'inherit', env: {...process.env, [NETNS_ENV]: name}})
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal)
    const onTerm = forward('SIGTERM')
    process.on('SIGTERM', onTerm)
    const code = await new Promise<number>((resolve) => {
      child.once('error', () => resolve(1))
      child.once('exit', (status, signal) => resolve(status ?? (signal ? 128 + 15 : 1)))
    })
    process.off('SIGTERM', onTerm)
    return code
  } finally {
    ns.destroy()
    process.off('SIGINT', ignore)
    process.off('SIGTERM', ignore)
  }
}
