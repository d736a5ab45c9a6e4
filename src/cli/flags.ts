// Flags shared by many commands, defined once and spread into each command's `flags`.
// Names, short forms and environment variables follow nerdctl.
import * as Flags from '@oclif/core/flags'

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock'
export const DEFAULT_NAMESPACE = 'default'

export const containerdFlags = {
  address: Flags.string({
    char: 'a',
    summary: "containerd's gRPC socket.",
    env: 'CONTAINERD_ADDRESS',
    default: DEFAULT_CONTAINERD_ADDRESS,
    helpGroup: 'GLOBAL',
  }),
  namespace: Flags.string({
    char: 'n',
    summary: 'containerd namespace.',
    env: 'CONTAINERD_NAMESPACE',
    default: DEFAULT_NAMESPACE,
    helpGroup: 'GLOBAL',
  }),
}

export const formatFlag = {
  format: Flags.string({
    summary: 'Output format.',
    options: ['table', 'json'],
    default: 'table',
  }),
}

/** Where lazyctl's snapshotter listens (lookup: this flag, then the config file, then the default; src/snapshotter/locate.ts). */
export const snapshotterSocketFlag = {
  'snapshotter-socket': Flags.string({
    summary: "lazyctl snapshotter's socket (default: from /etc/lazyctl/config.toml, else /run/containerd-stargz-grpc/containerd-stargz-grpc.sock).",
    env: 'LAZYCTL_SNAPSHOTTER_SOCKET',
    helpGroup: 'GLOBAL',
  }),
}

/**
 * Which containerd snapshotter pulls unpack into and containers run on (nerdctl's global
 * --snapshotter). Lazy by default: `stargz` is the proxy plugin name lazyctl's snapshotter serves
 * (and stargz-snapshotter's, so nodes configured for either work); `run` starts the snapshotter
 * when nothing answers, and says how to configure containerd when it has no such plugin.
 */
export const DEFAULT_SNAPSHOTTER = 'stargz'
export const snapshotterFlag = {
  snapshotter: Flags.string({
    summary: 'containerd snapshotter to unpack into and run on.',
    env: 'CONTAINERD_SNAPSHOTTER',
    default: DEFAULT_SNAPSHOTTER,
    helpGroup: 'GLOBAL',
  }),
}

/** lazyctl's own per-container files (logs, resolv.conf, FIFOs): <data-root>/<addr hash>/containers/<ns>/<id>. */
export const dataRootFlag = {
  'data-root': Flags.string({
    summary: "lazyctl's state directory for per-container files.",
    env: 'LAZYCTL_DATA_ROOT',
    default: '/var/lib/lazyctl',
    helpGroup: 'GLOBAL',
  }),
}

/** How registries are reached (nerdctl's --insecure-registry and --hosts-dir). */
export const registryFlags = {
  'insecure-registry': Flags.string({
    summary: 'Registry host[:port] where plain HTTP and unverified TLS are allowed (repeatable).',
    multiple: true,
    multipleNonGreedy: true,
    helpGroup: 'REGISTRY',
  }),
  'hosts-dir': Flags.string({
    summary: "containerd's certs.d directory: <dir>/<host>/hosts.toml and CA files.",
    default: '/etc/containerd/certs.d',
    helpGroup: 'REGISTRY',
  }),
}
