// CNI, as libcni runs a network configuration list: each plugin of the list is executed in order
// for ADD (its stdin the plugin's config plus the list's name and version, the previous plugin's
// result and the runtime config its capabilities ask for), in reverse order for DEL, with the
// containerd-independent environment CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH.
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {join} from 'node:path'
import {LazyError} from '../cli/errors.js'

/** One plugin of a list: `type` names its binary; the rest is the plugin's own config. */
export interface CniPluginConfig {
  type: string
  capabilities?: Record<string, boolean>
  [key: string]: unknown
}

export interface CniNetworkList {
  cniVersion: string
  name: string
  plugins: CniPluginConfig[]
}

/** A `-p` mapping, in the shape of the portmap plugin's `portMappings` capability. */
export interface PortMapping {
  hostPort: number
  containerPort: number
  protocol: 'tcp' | 'udp'
  hostIP?: string
}

export interface CniAttachment {
  containerId: string
  /** Path of the network namespace to configure. */
  netns: string
  ifName: string
  portMappings: PortMapping[]
}

/** The part of a CNI result lazyctl reads (spec 1.0). */
export interface CniResult {
  cniVersion?: string
  ips?: Array<{address: string; gateway?: string; interface?: number}>
  interfaces?: Array<{name: string; mac?: string; sandbox?: string}>
  [key: string]: unknown
}

/** Where plugin binaries are: $CNI_PATH, else nerdctl's /opt/cni/bin, else Debian's /usr/lib/cni. */
export function cniPluginDirs(): string[] {
  const fromEnv = process.env.CNI_PATH?.split(':').filter(Boolean)
  return fromEnv?.length ? fromEnv : ['/opt/cni/bin', '/usr/lib/cni']
}

function pluginBinary(type: string, network: string): string {
  if (!/^[A-Za-z0-9_.-]+$/.test(type)) throw new LazyError('NETWORK', `network ${network}: plugin type ${JSON.stringify(type)} is not a plugin name`)
  for (const dir of cniPluginDirs()) {
    const file = join(dir, type)
    if (existsSync(file)) return file
  }
  throw new LazyError('MISSING_DEPENDENCY', `network ${network}: CNI plugin "${type}" not found in ${cniPluginDirs().join(':')}`, {
    hint: 'install the CNI plugins (Debian: apt-get install containernetworking-plugins), or set CNI_PATH',
  })
}

/** Runs one plugin; resolves with its parsed stdout (ADD), or nothing (DEL, CHECK). */
function execPlugin(command: 'ADD' | 'DEL', list: CniNetworkList, config: Record<string, unknown>, at: CniAttachment): Promise<CniResult | undefined> {
  const type = String(config.type)
  const binary = pluginBinary(type, list.name)
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], {
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        CNI_COMMAND: command,
        CNI_CONTAINERID: at.containerId,
        CNI_NETNS: at.netns,
        CNI_IFNAME: at.ifName,
        CNI_PATH: cniPluginDirs().join(':'),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', (e) => reject(new LazyError('NETWORK', `network ${list.name}: cannot run CNI plugin ${type}: ${e.message}`, {cause: e})))
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString('utf8').trim()
      if (code !== 0) {
        reject(pluginError(list.name, type, command, stdout, Buffer.concat(err).toString('utf8').trim(), code))
        return
      }
      if (command !== 'ADD') return resolve(undefined)
      try {
        resolve(JSON.parse(stdout) as CniResult)
      } catch {
        reject(new LazyError('NETWORK', `network ${list.name}: CNI plugin ${type} answered ${command} with something that is not JSON`))
      }
    })
    child.stdin.end(JSON.stringify(config))
  })
}

function pluginError(network: string, type: string, command: string, stdout: string, stderr: string, code: number | null): LazyError {
  let message = stderr.split('\n')[0] || `exit status ${code}`
  try {
    // The spec's error object: {"code": N, "msg": "...", "details": "..."}.
    const parsed = JSON.parse(stdout) as {msg?: string; details?: string}
    if (parsed.msg) message = parsed.details ? `${parsed.msg}: ${parsed.details}` : parsed.msg
  } catch {
    // not JSON: stderr's first line says it
  }
  return new LazyError('NETWORK', `network ${network}: CNI plugin ${type} failed ${command}: ${message}`)
}

/** A plugin's stdin: its config, the list's name and version, runtime config for its capabilities. */
function pluginInput(list: CniNetworkList, plugin: CniPluginConfig, at: CniAttachment, prevResult: CniResult | undefined): Record<string, unknown> {
  const input: Record<string, unknown> = {...plugin, name: list.name, cniVersion: list.cniVersion}
  if (plugin.capabilities?.portMappings && at.portMappings.length > 0) input.runtimeConfig = {portMappings: at.portMappings}
  if (prevResult) input.prevResult = prevResult
  return input
}

/**
 * ADD of every plugin in order, each given the previous one's result; the last result is the
 * attachment's. A failure undoes what the earlier plugins set up (DEL in reverse), then throws.
 */
export async function cniAdd(list: CniNetworkList, at: CniAttachment): Promise<CniResult> {
  let result: CniResult | undefined
  for (const plugin of list.plugins) {
    try {
      result = await execPlugin('ADD', list, pluginInput(list, plugin, at, result), at)
    } catch (err) {
      await cniDel(list, at, result).catch(() => undefined)
      throw err
    }
  }
  if (!result) throw new LazyError('NETWORK', `network ${list.name} has no plugins`)
  return result
}

/**
 * DEL of every plugin in reverse order with the ADD's result, as libcni does. Every plugin is asked
 * even when one fails (each frees its own resources); the first failure is thrown at the end.
 */
export async function cniDel(list: CniNetworkList, at: CniAttachment, result: CniResult | undefined): Promise<void> {
  let first: unknown
  for (const plugin of [...list.plugins].reverse()) {
    try {
      await execPlugin('DEL', list, pluginInput(list, plugin, at, result), at)
    } catch (err) {
      first ??= err
    }
  }
  if (first) throw first
}
