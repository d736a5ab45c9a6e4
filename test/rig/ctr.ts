// containerd's own client against the rig: what a node configured for stargz-snapshotter runs.
import {execFile} from 'node:child_process'
import {chmodSync, mkdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

const execFileAsync = promisify(execFile)

export type Ctr = (args: string[], command?: string) => Promise<string>

/** `ctr` (or `ctr-remote`) with the rig containerd's address and namespace; stdout, or an error with stderr. */
export function ctrFor(target: () => {address: string; namespace: string}): Ctr {
  return async (args, command = 'ctr') => {
    const {address, namespace} = target()
    try {
      return (await execFileAsync(command, ['-a', address, '-n', namespace, ...args], {encoding: 'utf8', maxBuffer: 16 << 20})).stdout
    } catch (err) {
      throw new Error(`${command} ${args.join(' ')} failed: ${(err as {stderr?: string}).stderr ?? String(err)}`, {cause: err})
    }
  }
}

/**
 * `ctr run --rm` of `args` in a container of `image` (on `snapshotter`, else containerd's default); returns what the
 * command wrote to stdout and stderr. The output goes to a bind-mounted host file rather than
 * through ctr's FIFOs: ctr can lose the output of a container that exits at once
 * (containerd/containerd#770), and these tests are about the snapshotter, not ctr's IO.
 */
export async function ctrRun(ctr: Ctr, outRoot: string, image: string, id: string, args: string[], options: {snapshotter?: string} = {}): Promise<string> {
  const outDir = join(outRoot, 'ctr-run-output', id)
  mkdirSync(outDir, {recursive: true})
  // Writable whatever user the image runs as.
  chmodSync(outDir, 0o777)
  await ctr(['run', '--rm', ...(options.snapshotter ? ['--snapshotter', options.snapshotter] : []), '--mount', `type=bind,src=${outDir},dst=/lazyctl-test-out,options=rbind:rw`,
    image, id, 'sh', '-c', 'exec "$@" > /lazyctl-test-out/output 2>&1', 'sh', ...args])
  return readFileSync(join(outDir, 'output'), 'utf8')
}
