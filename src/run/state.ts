// lazyctl's own per-container files (log, resolv.conf, hosts, hostname, FIFOs) under a data root,
// and the labels that tie a containerd container record to them.
import {createHash, randomBytes} from 'node:crypto'
import {mkdirSync, readdirSync, rmSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {LazyError} from '../cli/errors.js'

export const DEFAULT_DATA_ROOT = '/var/lib/lazyctl'

export const LABELS = {
  name: 'lazyctl/name',
  stateDir: 'lazyctl/state-dir',
  logPath: 'lazyctl/log-path',
  autoRemove: 'lazyctl/auto-remove',
  exitCode: 'lazyctl/exit-code',
  command: 'lazyctl/command',
  stopSignal: 'io.containerd.image.config.stop-signal',
} as const

/** Per-daemon subdirectory, as nerdctl: two containerds on one host never share container dirs. */
export function addressHash(address: string): string {
  return createHash('sha256').update(resolve(address.replace(/^unix:\/\//, ''))).digest('hex').slice(0, 8)
}

export function containerStateDir(dataRoot: string, address: string, namespace: string, id: string): string {
  return join(dataRoot, addressHash(address), 'containers', namespace, id)
}

/** Every container state dir under `dataRoot`: of any containerd, any namespace. */
export function allContainerStateDirs(dataRoot: string): string[] {
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir)
    } catch {
      return []
    }
  }
  const found: string[] = []
  for (const daemon of list(dataRoot)) {
    const containers = join(dataRoot, daemon, 'containers')
    for (const namespace of list(containers)) for (const id of list(join(containers, namespace))) found.push(join(containers, namespace, id))
  }
  return found
}

export function fifoRoot(dataRoot: string): string {
  return join(dataRoot, 'fifo')
}

export function ensureDir(dir: string, mode = 0o700): string {
  try {
    mkdirSync(dir, {recursive: true, mode})
  } catch (err) {
    throw new LazyError('IO', `cannot create ${dir}: ${(err as Error).message}`, {hint: 'choose another --data-root (or LAZYCTL_DATA_ROOT)', cause: err})
  }
  return dir
}

export function removeStateDir(dir: string | undefined): void {
  if (dir) rmSync(dir, {recursive: true, force: true})
}

/** 64 hex characters, as nerdctl and docker. */
export function newContainerId(): string {
  return randomBytes(32).toString('hex')
}

const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/

export function checkContainerName(name: string): string {
  if (!NAME_PATTERN.test(name) || name.length > 128) {
    throw new LazyError('USAGE', `invalid container name "${name}": use letters, digits, '_', '.', '-' (starting with a letter or digit)`)
  }
  return name
}

/** `<image basename>-<5 hex>`, like nerdctl's generated names. */
export function defaultContainerName(image: string): string {
  const base = image.split('@')[0]!.split('/').at(-1)!.split(':')[0]!.replace(/[^a-zA-Z0-9_.-]/g, '') || 'container'
  return `${base}-${randomBytes(3).toString('hex').slice(0, 5)}`
}
