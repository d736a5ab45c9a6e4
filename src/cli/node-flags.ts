// Flags of `lazyctl node setup` and `teardown`: targets, SSH/SSM access, on-node paths. Turned
// into typed options (src/node/node-run.ts) by nodeRunOptions().
import * as Flags from '@oclif/core/flags'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {DEFAULT_CONTAINERD_ADDRESS} from './flags.js'
import {defaultNodePaths, type NodeRunOptions} from '../node/node-run.js'
import {parseTarget, readInventory, type Target} from '../node/targets.js'
import {parseSshTarget, formatSshTarget} from '../node/ssh-transport.js'

const defaults = defaultNodePaths()

export const nodeTargetFlags = {
  local: Flags.boolean({summary: 'Set up the machine lazyctl runs on.', helpGroup: 'TARGET'}),
  ssh: Flags.string({summary: 'A node over SSH: user@host[:port] (repeatable).', multiple: true, helpGroup: 'TARGET'}),
  ssm: Flags.string({summary: 'An EC2 instance through AWS Systems Manager: i-… (repeatable).', multiple: true, helpGroup: 'TARGET'}),
  inventory: Flags.string({summary: 'File with one target per line (user@host[:port], ssm://i-…, local; optional root=DIR).', helpGroup: 'TARGET'}),
  concurrency: Flags.integer({summary: 'Targets worked on at once.', default: 10, min: 1, helpGroup: 'TARGET'}),
  root: Flags.string({summary: 'Apply the file steps to this offline root filesystem (image bake): no restarts, no live verification.', helpGroup: 'TARGET'}),
  'dry-run': Flags.boolean({summary: 'Print the plan and the exact config diffs; change nothing.'}),
  identity: Flags.string({char: 'i', summary: 'SSH private key (repeatable; default: ssh-agent, then ~/.ssh/id_*).', multiple: true, helpGroup: 'SSH'}),
  'known-hosts': Flags.string({summary: 'known_hosts file to check host keys against.', default: join(homedir(), '.ssh', 'known_hosts'), helpGroup: 'SSH'}),
  'accept-new-host-key': Flags.boolean({summary: 'Trust a host key seen for the first time and add it to known_hosts (never a changed one).', helpGroup: 'SSH'}),
  'connect-timeout': Flags.integer({summary: 'Seconds to wait for an SSH connection.', default: 15, min: 1, helpGroup: 'SSH'}),
  region: Flags.string({summary: 'AWS region for --ssm (default: the standard AWS chain).', env: 'AWS_REGION', helpGroup: 'SSM'}),
  profile: Flags.string({summary: 'AWS profile for --ssm.', env: 'AWS_PROFILE', helpGroup: 'SSM'}),
  'ssm-timeout': Flags.integer({summary: 'Seconds one SSM command may run.', default: 600, min: 1, helpGroup: 'SSM'}),
  address: Flags.string({char: 'a', summary: "containerd's gRPC socket on the node (for verification).", env: 'CONTAINERD_ADDRESS', default: DEFAULT_CONTAINERD_ADDRESS, helpGroup: 'NODE PATHS'}),
  'snapshotter-socket': Flags.string({summary: "The snapshotter's socket on the node.", default: defaults.snapshotterSocket, helpGroup: 'NODE PATHS'}),
  'snapshotter-root': Flags.string({summary: "The snapshotter's state directory on the node.", default: defaults.snapshotterRoot, helpGroup: 'NODE PATHS'}),
  config: Flags.string({summary: "lazyctl's config file on the node.", default: defaults.lazyctlConfig, helpGroup: 'NODE PATHS'}),
  'containerd-config': Flags.string({summary: "containerd's config file on the node.", default: defaults.containerdConfig, helpGroup: 'NODE PATHS'}),
  'kubelet-config': Flags.string({summary: "kubelet's config file (KubeletConfiguration, JSON or YAML): setup points its imageServiceEndpoint at the snapshotter's socket, teardown restores it.", helpGroup: 'NODE PATHS'}),
  'install-dir': Flags.string({summary: 'Where lazyctl is installed on the node.', default: defaults.installDir, helpGroup: 'NODE PATHS'}),
  format: Flags.string({summary: 'Output format of the summary.', options: ['table', 'json'], default: 'table'}),
}

export interface NodeTargetFlagValues {
  local: boolean
  ssh?: string[]
  ssm?: string[]
  inventory?: string
  concurrency: number
  root?: string
  'dry-run': boolean
  identity?: string[]
  'known-hosts': string
  'accept-new-host-key': boolean
  'connect-timeout': number
  region?: string
  profile?: string
  'ssm-timeout': number
  address: string
  'snapshotter-socket': string
  'snapshotter-root': string
  config: string
  'containerd-config': string
  'kubelet-config'?: string | undefined
  'install-dir': string
}

export async function nodeRunOptions(flags: NodeTargetFlagValues): Promise<NodeRunOptions> {
  const targets: Target[] = []
  if (flags.local) targets.push(parseTarget('local'))
  for (const s of flags.ssh ?? []) targets.push({kind: 'ssh', ssh: parseSshTarget(s), label: formatSshTarget(parseSshTarget(s))})
  for (const s of flags.ssm ?? []) targets.push(parseTarget(`ssm://${s}`))
  if (flags.inventory) targets.push(...(await readInventory(flags.inventory)))
  return {
    targets,
    ...(flags.root !== undefined ? {root: flags.root} : {}),
    dryRun: flags['dry-run'],
    concurrency: flags.concurrency,
    progress: process.stderr.isTTY ? 'tty' : 'lines',
    connect: {
      ssh: {
        ...(flags.identity ? {identityFiles: flags.identity} : {}),
        knownHostsFile: flags['known-hosts'],
        acceptNewHostKey: flags['accept-new-host-key'],
        connectTimeoutMs: flags['connect-timeout'] * 1000,
      },
      ssm: {
        ...(flags.region ? {region: flags.region} : {}),
        ...(flags.profile ? {profile: flags.profile} : {}),
        commandTimeoutSec: flags['ssm-timeout'],
      },
    },
    paths: {
      ...defaults,
      containerdAddress: flags.address.replace(/^unix:\/\//, ''),
      snapshotterSocket: flags['snapshotter-socket'],
      snapshotterRoot: flags['snapshotter-root'],
      lazyctlConfig: flags.config,
      containerdConfig: flags['containerd-config'],
      kubeletConfig: flags['kubelet-config'] ?? '',
      installDir: flags['install-dir'],
    },
  }
}
