// The one interface every node step talks through. Three implementations: local (child_process
// and node:fs), ssh (ssh2) and ssm (AWS Systems Manager). Steps never know which one they run on.
import {LazyError} from '../cli/errors.js'
import type {Readable} from 'node:stream'
import type {ReadSealer} from './sealed-transfer.js'
import {shellCommand, shellQuote} from '../cli/shell-quote.js'

export interface ExecResult {
  code: number
  stdout: string
  stderr: string
}

export interface ExecOptions {
  /** Bytes or a stream fed to the command's stdin (streamed, never buffered whole). */
  stdin?: string | Buffer | Readable
  /** Fails the call with a timeout error when the command runs longer. */
  timeoutMs?: number
}

export interface NodeTransport {
  /** How the user named the target (`root@10.0.0.5:22`, `i-0abc`, `local`); used in every message. */
  readonly label: string
  /** Kind of transport, for the summary. */
  readonly kind: 'local' | 'ssh' | 'ssm'
  /** Whether exec() can stream large stdin (a tarball); SSM cannot. */
  readonly streamsStdin: boolean
  /** Runs `command` with /bin/sh on the target. Resolves with the exit code; rejects only when the transport fails. */
  exec(command: string, options?: ExecOptions): Promise<ExecResult>
  /** The file's bytes, or undefined when it does not exist. */
  readFile(path: string): Promise<Buffer | undefined>
  /** Writes through a temp file in the same directory and renames it over `path` (parents created). */
  writeFileAtomic(path: string, data: Buffer | string, mode: number): Promise<void>
  /** Hex sha256 of the file, or undefined when it does not exist. */
  checksum(path: string): Promise<string | undefined>
  /** For a transport that keeps a record (SSM): file contents it returns must be sealed to this. */
  readSealer?(): ReadSealer
  close(): Promise<void>
}

export {shellCommand, shellQuote}

/**
 * File operations as shell scripts, for transports that only run commands (ssh, ssm). Contents
 * travel as base64 so any byte survives a text channel.
 */
export const shellFileScripts = {
  read(path: string): string {
    const p = shellQuote(path)
    // The size lets the reader detect output a transport truncated (SSM keeps 24,000 characters).
    return `if [ -e ${p} ]; then echo "present $(wc -c < ${p})"; base64 < ${p}; else echo absent; fi`
  },
  /** Expects the base64 content on stdin (or in a here-document appended by the caller). */
  write(path: string, mode: number): string {
    const p = shellQuote(path)
    return [
      'set -e',
      `d=$(dirname ${p})`,
      'mkdir -p "$d"',
      `t=$(mktemp "$d/.lazyctl-tmp-XXXXXX")`,
      `trap 'rm -f "$t"' EXIT`,
      'base64 -d > "$t"',
      `chmod ${mode.toString(8)} "$t"`,
      `mv -f "$t" ${p}`,
      'trap - EXIT',
    ].join('\n')
  },
  checksum(path: string): string {
    const p = shellQuote(path)
    return `if [ -e ${p} ]; then sha256sum < ${p} | cut -d' ' -f1; else echo absent; fi`
  },
}

export function parseReadOutput(stdout: string, what = 'file'): Buffer | undefined {
  const nl = stdout.indexOf('\n')
  const head = (nl < 0 ? stdout : stdout.slice(0, nl)).trim()
  if (head === 'absent') return undefined
  const data = Buffer.from(stdout.slice(nl + 1).replace(/\s+/g, ''), 'base64')
  const size = Number(/^present\s+(\d+)/.exec(head)?.[1] ?? NaN)
  if (data.length !== size) throw new Error(`${what}: read ${data.length} of ${size} bytes (output truncated by the transport)`)
  return data
}

export function parseChecksumOutput(stdout: string): string | undefined {
  const value = stdout.trim()
  return value === 'absent' || value === '' ? undefined : value
}

/**
 * File operations for transports that can only run commands (ssh, ssm): each one is a script of
 * shellFileScripts run through exec(), with its failure reported in the transport's words.
 */
export abstract class ShellFileTransport implements NodeTransport {
  abstract readonly label: string
  abstract readonly kind: NodeTransport['kind']
  abstract readonly streamsStdin: boolean
  abstract exec(command: string, options?: ExecOptions): Promise<ExecResult>
  abstract close(): Promise<void>

  async readFile(path: string): Promise<Buffer | undefined> {
    return parseReadOutput(await this.script(shellFileScripts.read(path), 'read', path), `${this.label}:${path}`)
  }

  async writeFileAtomic(path: string, data: Buffer | string, mode: number): Promise<void> {
    await this.script(shellFileScripts.write(path, mode), 'write', path, Buffer.from(data).toString('base64'))
  }

  async checksum(path: string): Promise<string | undefined> {
    return parseChecksumOutput(await this.script(shellFileScripts.checksum(path), 'checksum', path))
  }

  protected async script(command: string, verb: string, path: string, stdin?: string): Promise<string> {
    const r = await this.exec(command, stdin === undefined ? {} : {stdin})
    if (r.code !== 0) throw new LazyError('IO', `${this.label}: cannot ${verb} ${path}: ${r.stderr.trim()}`)
    return r.stdout
  }
}
