// lazyctl's default network, as nerdctl's `bridge` (nerdctl0): containers on a Linux bridge with
// their own subnet, outbound traffic masqueraded, published ports through portmap, and the firewall
// plugin's FORWARD rules. Its IP allocations are host-wide, as the bridge is (whatever --data-root a
// run uses), apart from those of any other CNI user on the node (kubelet's pods, nerdctl), and in
// /run: they go at reboot with the namespaces they were given to.
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {LazyError} from '../cli/errors.js'
import type {CniNetworkList, CniPluginConfig} from './cni.js'

const run = promisify(execFile)

export const DEFAULT_NETWORK = 'bridge'
export const BRIDGE_INTERFACE = 'lazyctl0'
/** nerdctl's nerdctl0 has 10.4.0.0/24; one next to it, so both can share a node. */
export const BRIDGE_SUBNET = '10.4.1.0/24'

export const IPAM_DIR = '/run/lazyctl/network/ipam'

/**
 * The network list for one container on `--network NAME` (only the default bridge for now). Each
 * plugin is a process start of 10–80 ms, so the list holds only those with work to do: portmap
 * when ports are published, firewall when the host's FORWARD chain could drop the bridge's traffic.
 * The container's attachment keeps the list it was given, so its DEL runs the same plugins.
 */
export function networkList(name: string, needs: {portmap: boolean; firewall: boolean}): CniNetworkList {
  if (name !== DEFAULT_NETWORK) {
    throw new LazyError('USAGE', `unknown network "${name}": use --network bridge (the default), host or none`)
  }
  const plugins: CniPluginConfig[] = [
    {
      type: 'bridge',
      bridge: BRIDGE_INTERFACE,
      isGateway: true,
      ipMasq: true,
      hairpinMode: true,
      ipam: {type: 'host-local', ranges: [[{subnet: BRIDGE_SUBNET}]], routes: [{dst: '0.0.0.0/0'}], dataDir: IPAM_DIR},
    },
  ]
  if (needs.portmap) plugins.push({type: 'portmap', capabilities: {portMappings: true}})
  if (needs.firewall) plugins.push({type: 'firewall'})
  return {cniVersion: '1.0.0', name: DEFAULT_NETWORK, plugins}
}

/**
 * Whether forwarded traffic needs the firewall plugin's ACCEPT rules: unless the FORWARD chain
 * accepts by policy and holds nothing but the firewall plugin's own jump (a host with docker or
 * kube-proxy has DROP policies or chains of its own there). When iptables cannot say, it is used.
 */
export async function forwardNeedsFirewall(): Promise<boolean> {
  try {
    const {stdout} = await run('iptables', ['-w', '-S', 'FORWARD'])
    const lines = stdout.split('\n').filter(Boolean)
    return lines[0] !== '-P FORWARD ACCEPT' || lines.slice(1).some((line) => !line.includes('-j CNI-FORWARD'))
  } catch {
    return true
  }
}
