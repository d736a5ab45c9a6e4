// Named network namespaces (`ip netns add`, under /run/netns), one per container on a CNI network:
// made before the container so CNI can configure it and runc can join it, and deleted only after
// CNI's DEL, so every plugin still finds the interfaces it must take down (a namespace that dies
// with the container's last process would leave that to chance).
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {LazyError} from '../cli/errors.js'

const run = promisify(execFile)
const NETNS_DIR = '/run/netns'

export function netnsPath(name: string): string {
  return `${NETNS_DIR}/${name}`
}

async function ip(args: string[], what: string): Promise<void> {
  try {
    await run('ip', args)
  } catch (err) {
    const e = err as NodeJS.ErrnoException & {stderr?: string}
    if (e.code === 'ENOENT') throw new LazyError('MISSING_DEPENDENCY', 'ip (iproute2) is not installed', {hint: 'apt-get install iproute2'})
    throw new LazyError('NETWORK', `${what}: ${(e.stderr ?? e.message).trim().split('\n')[0]}`, {cause: err})
  }
}

export async function createNetns(name: string): Promise<string> {
  await ip(['netns', 'add', name], `cannot create network namespace ${name}`)
  return netnsPath(name)
}

/** Deletes the namespace; one already gone is not an error. */
export async function deleteNetns(name: string): Promise<void> {
  try {
    await ip(['netns', 'delete', name], `cannot delete network namespace ${name}`)
  } catch (err) {
    if (err instanceof LazyError && /No such file|not found|does not exist/i.test(err.message)) return
    throw err
  }
}
