// The OCI runtime spec of a container: containerd's Linux default (oci.WithDefaultSpec) with
// nerdctl's additions (default device rules, no /run tmpfs, a read-only cgroup mount, no rlimits,
// resolv.conf/hosts/hostname bind mounts), then the image config and the user's flags.
// nerdctl's seccomp default profile is containerd's (seccomp.ts). No AppArmor profile: nerdctl loads
// one only where AppArmor is enabled, and lazyctl does not ship one yet.

import {defaultSeccompProfile, type SeccompChoice, type SeccompProfile} from './seccomp.js'

export interface OciMount {
  destination: string
  type: string
  source: string
  options: string[]
}

export interface OciUser {
  uid: number
  gid: number
  additionalGids?: number[]
}

export interface OciSpec {
  ociVersion: string
  process: {
    terminal: boolean
    user: OciUser
    args: string[]
    env: string[]
    cwd: string
    capabilities: {bounding: string[]; effective: string[]; permitted: string[]}
    noNewPrivileges: boolean
  }
  root: {path: string; readonly: boolean}
  hostname: string
  mounts: OciMount[]
  linux: {
    resources: {devices: Array<{allow: boolean; type?: string; major?: number; minor?: number; access: string}>}
    cgroupsPath: string
    namespaces: Array<{type: string; path?: string}>
    maskedPaths: string[]
    readonlyPaths: string[]
    seccomp?: SeccompProfile
  }
}

export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
]

/** containerd's default mounts, minus /run (nerdctl's WithoutRunMount), plus nerdctl's cgroup mount. */
function defaultMounts(): OciMount[] {
  return [
    {destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev']},
    {destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
    {destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']},
    {destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
    {destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev']},
    {destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro']},
    {destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev']},
  ]
}

/** Device cgroup rules: deny all, then allow the standard nodes (oci.WithDefaultUnixDevices). */
function defaultDeviceRules(): OciSpec['linux']['resources']['devices'] {
  const allow = (major: number, minor: number | undefined) => {
    const rule: {allow: boolean; type: string; major: number; minor?: number; access: string} = {allow: true, type: 'c', major, access: 'rwm'}
    if (minor !== undefined) rule.minor = minor
    return rule
  }
  return [
    {allow: false, access: 'rwm'},
    allow(1, 3), allow(1, 8), allow(1, 7), allow(5, 0), allow(1, 5), allow(1, 9), allow(5, 1), allow(136, undefined), allow(5, 2),
  ]
}

export interface SpecOptions {
  namespace: string
  containerId: string
  hostname: string
  args: string[]
  env: string[]
  cwd: string
  user: OciUser
  terminal: boolean
  readOnlyRootfs: boolean
  /**
   * 'host' shares the host's network namespace; 'none' keeps a fresh one with only lo; `{netns}`
   * joins a namespace CNI has set up (the bridge network).
   */
  network: 'host' | 'none' | {netns: string}
  /** Files bind-mounted at /etc/resolv.conf, /etc/hosts, /etc/hostname. */
  etcFiles: {resolvConf: string; hosts: string; hostname: string}
  /** User bind mounts (-v). */
  binds: Array<{source: string; destination: string; readOnly: boolean}>
  /** The seccomp filter: containerd's default for the container's capabilities, none, or the user's. */
  seccomp: SeccompChoice
}

export function buildSpec(o: SpecOptions): OciSpec {
  const network = o.network
  const namespaces: Array<{type: string; path?: string}> = ['pid', 'ipc', 'uts', 'mount'].map((type) => ({type}))
  if (network !== 'host') namespaces.push(typeof network === 'object' ? {type: 'network', path: network.netns} : {type: 'network'})
  const mounts = defaultMounts()
  mounts.push(
    {destination: '/etc/resolv.conf', type: 'bind', source: o.etcFiles.resolvConf, options: ['bind', o.readOnlyRootfs ? 'ro' : 'rw']},
    {destination: '/etc/hosts', type: 'bind', source: o.etcFiles.hosts, options: ['bind', o.readOnlyRootfs ? 'ro' : 'rw']},
    {destination: '/etc/hostname', type: 'bind', source: o.etcFiles.hostname, options: ['bind', o.readOnlyRootfs ? 'ro' : 'rw']},
  )
  for (const b of o.binds) mounts.push({destination: b.destination, type: 'bind', source: b.source, options: ['rbind', b.readOnly ? 'ro' : 'rw']})
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: o.terminal,
      user: o.user,
      args: o.args,
      env: o.env,
      cwd: o.cwd,
      capabilities: {bounding: DEFAULT_CAPABILITIES, effective: DEFAULT_CAPABILITIES, permitted: DEFAULT_CAPABILITIES},
      noNewPrivileges: true,
    },
    root: {path: 'rootfs', readonly: o.readOnlyRootfs},
    hostname: o.hostname,
    mounts,
    linux: {
      resources: {devices: defaultDeviceRules()},
      cgroupsPath: `/${o.namespace}/${o.containerId}`,
      namespaces,
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi', '/sys/devices/virtual/powercap',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      ...seccompOf(o.seccomp),
    },
  }
}

function seccompOf(choice: SeccompChoice): {seccomp?: SeccompProfile} {
  if (choice.kind === 'unconfined') return {}
  return {seccomp: choice.kind === 'file' ? choice.profile : defaultSeccompProfile(DEFAULT_CAPABILITIES)}
}

/**
 * The process args from the image config and the user's command, as docker/nerdctl do: an
 * --entrypoint replaces the image's Entrypoint and drops its Cmd; user args replace Cmd.
 */
export function processArgs(image: {Entrypoint?: string[] | null; Cmd?: string[] | null}, userArgs: string[], entrypoint?: string): string[] {
  if (entrypoint !== undefined) return [...(entrypoint === '' ? [] : [entrypoint]), ...userArgs]
  return [...(image.Entrypoint ?? []), ...(userArgs.length > 0 ? userArgs : (image.Cmd ?? []))]
}

/** Merges KEY=VALUE lists; later ones win per key, order of first appearance kept. */
export function mergeEnv(...lists: string[][]): string[] {
  const map = new Map<string, string>()
  for (const list of lists) for (const entry of list) {
    const eq = entry.indexOf('=')
    const key = eq < 0 ? entry : entry.slice(0, eq)
    map.set(key, entry)
  }
  return [...map.values()]
}
