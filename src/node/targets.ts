// Who to set up: --local, --ssh user@host[:port], --ssm i-…, or an inventory file with one
// target per line (`ssh://root@10.0.0.5:22`, `root@10.0.0.5`, `ssm://i-0abc…`, `i-0abc…`,
// `local`), each optionally followed by `root=DIR` to bake that target's offline root.
import {readFile} from 'node:fs/promises'
import {LazyError} from '../cli/errors.js'
import {LocalTransport} from './local-transport.js'
import {formatSshTarget, parseSshTarget, SshTransport, type SshOptions, type SshTarget} from './ssh-transport.js'
import {isInstanceId, SsmTransport, type SsmOptions} from './ssm-transport.js'
import type {NodeTransport} from './transport.js'

export type Target = ({kind: 'local'} | {kind: 'ssh'; ssh: SshTarget} | {kind: 'ssm'; instanceId: string}) & {
  label: string
  /** Offline root for this target (overrides --root). */
  root?: string
}

export function parseTarget(spec: string): Target {
  const [head, ...opts] = spec.trim().split(/\s+/)
  if (!head) throw new LazyError('USAGE', 'empty target')
  let target: Target
  if (head === 'local') target = {kind: 'local', label: 'local'}
  else if (head.startsWith('ssm://') || isInstanceId(head)) {
    const id = head.replace(/^ssm:\/\//, '')
    if (!isInstanceId(id)) throw new LazyError('USAGE', `invalid SSM instance ID "${id}"`)
    target = {kind: 'ssm', instanceId: id, label: id}
  } else {
    const ssh = parseSshTarget(head.replace(/^ssh:\/\//, ''))
    target = {kind: 'ssh', ssh, label: formatSshTarget(ssh)}
  }
  for (const opt of opts) {
    const m = /^root=(\/.*)$/.exec(opt)
    if (!m) throw new LazyError('USAGE', `unknown target option "${opt}" in "${spec}"`, {hint: 'the only option is root=/absolute/dir'})
    target.root = m[1]!
  }
  return target
}

export async function readInventory(file: string): Promise<Target[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new LazyError('NOT_FOUND', `cannot read inventory ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
  const targets: Target[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim()
    if (!line) return
    try {
      targets.push(parseTarget(line))
    } catch (err) {
      throw new LazyError('USAGE', `${file}:${i + 1}: ${(err as Error).message}`)
    }
  })
  return targets
}

export interface ConnectOptions {
  ssh?: SshOptions
  ssm?: SsmOptions
}

export async function connectTarget(target: Target, options: ConnectOptions = {}): Promise<NodeTransport> {
  switch (target.kind) {
    case 'local':
      return new LocalTransport()
    case 'ssh':
      return SshTransport.connect(target.ssh, options.ssh)
    case 'ssm':
      return new SsmTransport(target.instanceId, options.ssm)
  }
}

/** Refuses two entries for the same target: concurrent runs would race on the same files. */
export function checkUnique(targets: Target[]): void {
  const seen = new Set<string>()
  for (const t of targets) {
    const key = `${t.label} ${t.root ?? ''}`
    if (seen.has(key)) throw new LazyError('USAGE', `target ${t.label}${t.root ? ` root=${t.root}` : ''} is listed twice`)
    seen.add(key)
  }
}
