// A node reached through AWS Systems Manager: each command is a SendCommand of the
// AWS-RunShellScript document, then GetCommandInvocation is polled until it ends. There is no
// stdin, so small inputs travel inside the script as base64; large streams are refused. SSM keeps
// every command and its output in its history, so file contents travel sealed (sealed-transfer.ts).
import {GetCommandInvocationCommand, SendCommandCommand, SSMClient, type SSMClientConfig} from '@aws-sdk/client-ssm'
import {setTimeout as delay} from 'node:timers/promises'
import {Readable} from 'node:stream'
import {LazyError, describeError} from '../cli/errors.js'
import {NODE_KEY_SCRIPT, openSealed, openSealedRead, parseNodeKey, removeNodeKeyScript, sealedReadScript, sealedWriteScript, sessionKeys, type ReadSealer, type SessionKeys} from './sealed-transfer.js'
import {ShellFileTransport, shellQuote, type ExecOptions, type ExecResult} from './transport.js'

export interface SsmOptions {
  region?: string
  profile?: string
  /** Overrides the endpoint (AWS_ENDPOINT_URL_SSM works too). */
  endpoint?: string
  /** Longest a single command may take on the node, in seconds (also sent as executionTimeout). */
  commandTimeoutSec?: number
  /** Upper bound of the polling interval; polling starts faster and backs off to it. */
  pollIntervalMs?: number
}

/** Instance IDs (i-…) and managed-instance IDs (mi-…). */
export function isInstanceId(text: string): boolean {
  return /^m?i-[0-9a-f]{8,17}$/.test(text)
}

const TERMINAL = new Set(['Success', 'Failed', 'Cancelled', 'TimedOut', 'Cancelling'])

export class SsmTransport extends ShellFileTransport {
  readonly kind = 'ssm' as const
  readonly streamsStdin = false
  readonly label: string
  private readonly client: SSMClient
  private readonly timeoutSec: number
  private readonly pollMs: number
  /** This process's key pair: the node seals files it sends us to it. */
  private keys: SessionKeys | undefined
  /** The node's key pair for this session (made on the first write, removed at close). */
  private nodeKey: Promise<{dir: string; publicKeyPem: string}> | undefined

  constructor(
    readonly instanceId: string,
    options: SsmOptions = {},
  ) {
    super()
    if (!isInstanceId(instanceId)) throw new LazyError('USAGE', `invalid SSM instance ID "${instanceId}"`, {hint: 'use an EC2 instance ID such as i-0123456789abcdef0'})
    this.label = instanceId
    const config: SSMClientConfig = {maxAttempts: 3}
    if (options.region) config.region = options.region
    if (options.profile) config.profile = options.profile
    if (options.endpoint) config.endpoint = options.endpoint
    this.client = new SSMClient(config)
    this.timeoutSec = options.commandTimeoutSec ?? 600
    this.pollMs = options.pollIntervalMs ?? 1000
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    if (options.stdin instanceof Readable) {
      throw new LazyError('NODE_UNSUPPORTED', `${this.label}: SSM cannot stream input to a command`)
    }
    const script = options.stdin === undefined ? `/bin/sh -c ${shellQuote(command)} </dev/null` : withInlineStdin(command, Buffer.from(options.stdin))
    // --ssm-timeout bounds every command; a step may ask for less.
    const timeoutSec = Math.max(1, Math.ceil(Math.min(options.timeoutMs ?? Infinity, this.timeoutSec * 1000) / 1000))
    let commandId: string
    try {
      const sent = await this.client.send(
        new SendCommandCommand({
          InstanceIds: [this.instanceId],
          DocumentName: 'AWS-RunShellScript',
          Comment: 'lazyctl node setup',
          Parameters: {commands: [script], executionTimeout: [String(timeoutSec)]},
        }),
      )
      commandId = sent.Command?.CommandId ?? ''
      if (!commandId) throw new Error('SendCommand returned no command ID')
    } catch (err) {
      throw awsError(this.label, 'SendCommand', err)
    }
    // The agent enforces executionTimeout; we wait a little longer for it to report, then give up.
    const deadline = Date.now() + timeoutSec * 1000 + Math.min(30_000, timeoutSec * 500)
    let wait = Math.min(200, this.pollMs)
    let lastStatus = 'Pending'
    while (Date.now() < deadline) {
      await delay(wait)
      wait = Math.min(this.pollMs, wait * 2)
      let inv
      try {
        inv = await this.client.send(new GetCommandInvocationCommand({CommandId: commandId, InstanceId: this.instanceId}))
      } catch (err) {
        // Right after SendCommand the invocation may not exist yet.
        if ((err as {name?: string}).name === 'InvocationDoesNotExist') continue
        throw awsError(this.label, 'GetCommandInvocation', err)
      }
      lastStatus = inv.Status ?? 'Pending'
      if (!TERMINAL.has(lastStatus)) continue
      if (lastStatus === 'TimedOut') {
        throw new LazyError('SSM', `${this.label}: command ${commandId} timed out on the node after ${timeoutSec} s`)
      }
      if (lastStatus === 'Cancelled' || lastStatus === 'Cancelling') throw new LazyError('SSM', `${this.label}: command ${commandId} was cancelled`)
      return {code: inv.ResponseCode ?? (lastStatus === 'Success' ? 0 : 1), stdout: inv.StandardOutputContent ?? '', stderr: inv.StandardErrorContent ?? ''}
    }
    throw new LazyError('SSM', `${this.label}: command ${commandId} did not finish within ${timeoutSec} s (last status ${lastStatus})`, {
      hint: 'is the SSM agent on the instance running and online? (aws ssm describe-instance-information)',
    })
  }

  readSealer(): ReadSealer {
    const keys = (this.keys ??= sessionKeys())
    return {publicKeyPem: keys.publicKeyPem, open: (wrapped, sealed) => openSealed(wrapped, sealed, keys.privateKey)}
  }

  override async readFile(path: string): Promise<Buffer | undefined> {
    this.keys ??= sessionKeys()
    const stdout = await this.script(sealedReadScript(path, this.keys.publicKeyPem), 'read', path)
    try {
      return openSealedRead(stdout, this.keys.privateKey, `${this.label}:${path}`)
    } catch (err) {
      throw new LazyError('IO', `${this.label}: cannot read ${path}: ${describeError(err)}`, {cause: err})
    }
  }

  override async writeFileAtomic(path: string, data: Buffer | string, mode: number): Promise<void> {
    this.nodeKey ??= this.script(NODE_KEY_SCRIPT, 'make a session key for', 'the sealed file transfer').then(parseNodeKey)
    const key = await this.nodeKey
    await this.script(sealedWriteScript(path, mode, Buffer.from(data), key), 'write', path)
  }

  async close(): Promise<void> {
    const key = await this.nodeKey?.catch(() => undefined)
    if (key) await this.exec(removeNodeKeyScript(key.dir)).catch(() => undefined)
    this.client.destroy()
  }
}

/** The command with `stdin` fed from a here-document (base64, so no byte can end it early). */
function withInlineStdin(command: string, stdin: Buffer): string {
  const lines = stdin.toString('base64').match(/.{1,76}/g) ?? []
  return `base64 -d <<'LAZYCTL_STDIN' | /bin/sh -c ${shellQuote(command)}\n${lines.join('\n')}\nLAZYCTL_STDIN`
}

/** AWS SDK errors name a condition (`InvalidInstanceId`, `AccessDeniedException`…); keep it, drop request details. */
function awsError(label: string, call: string, err: unknown): LazyError {
  const e = err as {name?: string; message?: string; $metadata?: {httpStatusCode?: number}; code?: string}
  const name = e.name && e.name !== 'Error' ? e.name : e.code
  const reachability = e.code && ['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN'].includes(e.code)
  const text = `${label}: ${call} failed: ${name ? `${name}: ` : ''}${describeError(err)}`
  return new LazyError(reachability ? 'NODE_UNREACHABLE' : 'SSM', text, {cause: err})
}
