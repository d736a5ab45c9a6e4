// A container's place on a CNI network: its own named network namespace, CNI ADD before the task
// exists, the result kept in the container's state dir (so rm can DEL with the same config and
// result, as libcni's cache does), and DEL then namespace deletion when the container goes.
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {LazyError} from '../cli/errors.js'
import {cniAdd, cniDel, type CniNetworkList, type CniResult, type PortMapping} from './cni.js'
import {createNetns, deleteNetns} from './netns.js'

const STATE_FILE = 'network.json'
const IF_NAME = 'eth0'

export interface ContainerNetwork {
  network: string
  containerId: string
  netnsName: string
  netns: string
  list: CniNetworkList
  portMappings: PortMapping[]
  result: CniResult
  /** The container's address on the network (without the prefix length). */
  ip?: string
}

export function netnsNameFor(containerId: string): string {
  return `lazyctl-${containerId.slice(0, 16)}`
}

/**
 * Makes the container's namespace and runs CNI ADD in it; the attachment is written to `stateDir`.
 * Nothing is left behind when it fails.
 */
export async function attachContainer(o: {containerId: string; list: CniNetworkList; portMappings: PortMapping[]; stateDir: string}): Promise<ContainerNetwork> {
  const netnsName = netnsNameFor(o.containerId)
  const netns = await createNetns(netnsName)
  try {
    const result = await cniAdd(o.list, {containerId: o.containerId, netns, ifName: IF_NAME, portMappings: o.portMappings})
    const address = result.ips?.[0]?.address
    const attached: ContainerNetwork = {network: o.list.name, containerId: o.containerId, netnsName, netns, list: o.list, portMappings: o.portMappings, result, ...(address ? {ip: address.split('/')[0]!} : {})}
    writeFileSync(join(o.stateDir, STATE_FILE), JSON.stringify(attached), {mode: 0o600})
    return attached
  } catch (err) {
    await deleteNetns(netnsName).catch(() => undefined)
    throw err
  }
}

export function readAttachment(stateDir: string): ContainerNetwork | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, STATE_FILE), 'utf8')) as ContainerNetwork
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new LazyError('NETWORK', `cannot read ${join(stateDir, STATE_FILE)}: ${(err as Error).message}`, {cause: err})
  }
}

/** CNI DEL with the ADD's config and result, then the namespace; a container never attached is a no-op. */
export async function detachContainer(stateDir: string | undefined): Promise<void> {
  if (!stateDir) return
  const attached = readAttachment(stateDir)
  if (!attached) return
  try {
    await cniDel(attached.list, {containerId: attached.containerId, netns: attached.netns, ifName: IF_NAME, portMappings: attached.portMappings}, attached.result)
  } finally {
    await deleteNetns(attached.netnsName)
  }
  // Detached: a second call (rm after a failed run) has nothing to do.
  rmSync(join(stateDir, STATE_FILE), {force: true})
}

/** Host ports published by the containers whose state dirs these are (unreadable ones skipped). */
export function publishedPorts(stateDirs: string[]): Array<PortMapping & {containerId: string}> {
  const out: Array<PortMapping & {containerId: string}> = []
  for (const dir of stateDirs) {
    let attached: ContainerNetwork | undefined
    try {
      attached = readAttachment(dir)
    } catch {
      continue
    }
    for (const m of attached?.portMappings ?? []) out.push({...m, containerId: attached!.containerId})
  }
  return out
}
