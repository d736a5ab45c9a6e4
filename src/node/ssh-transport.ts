// A node reached over SSH (ssh2). The host key is checked against known_hosts before any
// credential is offered; keys come from -i, ssh-agent, or ~/.ssh/id_*. Commands run under
// /bin/sh, through `sudo -n` when the login user is not root.
import {existsSync, readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {Client, type AuthenticationType, type ConnectConfig} from 'ssh2'
import {LazyError, describeError} from '../cli/errors.js'
import {appendKnownHost, readKnownHosts, verifyHostKey, type HostKeyVerdict} from './known-hosts.js'
import {feedStdin} from './local-transport.js'
import {ShellFileTransport, shellQuote, type ExecOptions, type ExecResult} from './transport.js'

export interface SshTarget {
  user: string
  host: string
  port: number
}

export interface SshOptions {
  /** Private key files given with -i (tried first, in order). */
  identityFiles?: string[]
  /** Defaults to ~/.ssh/known_hosts. */
  knownHostsFile?: string
  /** Trust and record a host key seen for the first time (never a changed one). */
  acceptNewHostKey?: boolean
  connectTimeoutMs?: number
  /** Defaults to $SSH_AUTH_SOCK. */
  agentSocket?: string
}

/** Parses `user@host[:port]`, `user@[v6addr]:port` or `host` (user defaults to root). */
export function parseSshTarget(spec: string): SshTarget {
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?$/.exec(spec)
  if (!m) throw new LazyError('USAGE', `invalid SSH target "${spec}"`, {hint: 'use user@host or user@host:port'})
  const port = m[3] ? Number(m[3]) : 22
  if (!(port > 0 && port < 65536)) throw new LazyError('USAGE', `invalid SSH port in "${spec}"`)
  return {user: m[1] ?? 'root', host: m[2]!.replace(/^\[|\]$/g, ''), port}
}

export function formatSshTarget(t: SshTarget): string {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host
  return `${t.user}@${host}${t.port === 22 ? '' : `:${t.port}`}`
}

interface KeyCandidate {
  file: string
  key: Buffer
}

function defaultIdentityFiles(): string[] {
  const dir = join(homedir(), '.ssh')
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((f) => join(dir, f)).filter((f) => existsSync(f))
}

export class SshTransport extends ShellFileTransport {
  readonly kind = 'ssh' as const
  readonly streamsStdin = true
  readonly label: string
  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
  ) {
    super()
    this.label = formatSshTarget(target)
  }

  static async connect(target: SshTarget, options: SshOptions = {}): Promise<SshTransport> {
    const label = formatSshTarget(target)
    const knownHostsFile = options.knownHostsFile ?? join(homedir(), '.ssh', 'known_hosts')
    const knownHosts = await readKnownHosts(knownHostsFile)
    const explicit = options.identityFiles ?? []
    const keys: KeyCandidate[] = []
    for (const file of explicit.length ? explicit : defaultIdentityFiles()) {
      try {
        keys.push({file, key: readFileSync(file)})
      } catch (err) {
        if (explicit.length) throw new LazyError('NODE_AUTH', `${label}: cannot read identity file ${file}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`)
      }
    }
    const agent = options.agentSocket ?? process.env.SSH_AUTH_SOCK
    if (!keys.length && !agent) {
      throw new LazyError('NODE_AUTH', `${label}: no SSH key to offer`, {hint: 'pass -i KEY, start ssh-agent, or create ~/.ssh/id_ed25519'})
    }

    let hostKeyProblem: LazyError | undefined
    let pendingAppend: Promise<void> | undefined
    const strategies: Array<{type: 'publickey'; key: KeyCandidate} | {type: 'agent'}> = [...keys.map((key) => ({type: 'publickey' as const, key})), ...(agent ? [{type: 'agent' as const}] : [])]
    let keyProblem: string | undefined
    const client = new Client()
    const config: ConnectConfig = {
      host: target.host,
      port: target.port,
      username: target.user,
      readyTimeout: options.connectTimeoutMs ?? 15_000,
      hostVerifier: (blob: Buffer) => {
        const verdict: HostKeyVerdict = verifyHostKey(knownHosts, target.host, target.port, blob)
        if (verdict.kind === 'known') return true
        if (verdict.kind === 'unknown' && options.acceptNewHostKey) {
          pendingAppend = appendKnownHost(knownHostsFile, target.host, target.port, blob)
          return true
        }
        hostKeyProblem = hostKeyError(label, verdict, knownHostsFile)
        return false
      },
      authHandler: ((_methodsLeft: AuthenticationType[] | null, _partial: boolean | null, next: (s: unknown) => void) => {
        // ssh2 calls this once per attempt; hand out the next credential until none is left.
        for (;;) {
          const s = strategies.shift()
          if (!s) return next(false)
          if (s.type === 'agent') return next({type: 'agent', username: target.user, agent})
          if (isEncryptedKey(s.key.key)) {
            keyProblem = `identity ${s.key.file} is passphrase-protected; load it into ssh-agent`
            continue
          }
          return next({type: 'publickey', username: target.user, key: s.key.key})
        }
      }) as unknown as ConnectConfig['authHandler'],
    }
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error & {level?: string; code?: string}) => {
        client.removeListener('ready', onReady)
        client.end()
        reject(mapConnectError(label, err, hostKeyProblem, keyProblem))
      }
      const onReady = () => {
        client.removeListener('error', onError)
        resolve()
      }
      client.once('ready', onReady)
      client.once('error', onError)
      try {
        client.connect(config)
      } catch (err) {
        // ssh2 throws synchronously on unparsable keys: never echo key material, only the file.
        onError(err as Error)
      }
    })
    if (pendingAppend) await pendingAppend
    client.on('error', () => {
      // late transport errors surface through the pending exec's channel close
    })
    return new SshTransport(client, target)
  }

  private wrap(command: string): string {
    const sh = `/bin/sh -c ${shellQuote(command)}`
    return this.target.user === 'root' ? sh : `sudo -n ${sh}`
  }

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(this.wrap(command), (err, stream) => {
        if (err) return reject(new LazyError('NODE_UNREACHABLE', `${this.label}: cannot run a command: ${describeError(err)}`, {cause: err}))
        const out: Buffer[] = []
        const errOut: Buffer[] = []
        let timer: NodeJS.Timeout | undefined
        if (options.timeoutMs) {
          timer = setTimeout(() => {
            stream.close()
            reject(new LazyError('NODE_STEP_FAILED', `${this.label}: command timed out after ${options.timeoutMs} ms`))
          }, options.timeoutMs)
        }
        stream.on('data', (d: Buffer) => out.push(d))
        stream.stderr.on('data', (d: Buffer) => errOut.push(d))
        stream.on('close', (code: number | null, signal?: string) => {
          if (timer) clearTimeout(timer)
          resolve({code: code ?? (signal ? 128 : 255), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errOut).toString('utf8')})
        })
        feedStdin(stream, options.stdin)
      })
    })
  }

  async close(): Promise<void> {
    this.client.end()
  }
}

function isEncryptedKey(key: Buffer): boolean {
  const text = key.toString('latin1')
  if (text.includes('ENCRYPTED')) return true
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]+?)-----END/.exec(text)
  if (!m) return false
  const raw = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64')
  // "openssh-key-v1\0" then string ciphername; "none" means unencrypted.
  const off = 15
  const len = raw.readUInt32BE(off)
  return raw.subarray(off + 4, off + 4 + len).toString('latin1') !== 'none'
}

function hostKeyError(label: string, verdict: HostKeyVerdict, file: string): LazyError {
  switch (verdict.kind) {
    case 'changed':
      return new LazyError('NODE_HOST_KEY', `${label}: host key differs from the one in ${file} (line ${verdict.line}); refusing to connect`, {
        hint: 'if the host was rebuilt, remove the old entry with ssh-keygen -R',
      })
    case 'other-type':
      // OpenSSH's accept-new would not take this either: a known host offering a new key type may be an impostor.
      return new LazyError('NODE_HOST_KEY', `${label}: ${file} knows this host with a ${verdict.knownType} key (line ${verdict.line}), but it offered another type; refusing to connect`, {
        hint: 'verify the new key\'s fingerprint and add it (ssh-keyscan -t TYPE), or remove the old entry with ssh-keygen -R',
      })
    case 'revoked':
      return new LazyError('NODE_HOST_KEY', `${label}: host key is marked @revoked in ${file} (line ${verdict.line})`)
    default:
      return new LazyError('NODE_HOST_KEY', `${label}: host key is not in ${file}; refusing to connect`, {
        hint: 'verify the fingerprint and add it (ssh-keyscan), or pass --accept-new-host-key to trust it on first use',
      })
  }
}

function mapConnectError(label: string, err: Error & {level?: string; code?: string}, hostKeyProblem: LazyError | undefined, keyProblem: string | undefined): LazyError {
  if (hostKeyProblem) return hostKeyProblem
  if (err.level === 'client-authentication') {
    return new LazyError('NODE_AUTH', `${label}: the server refused every key offered${keyProblem ? ` (${keyProblem})` : ''}`, {
      hint: 'check the user name and that the public key is in authorized_keys on the node',
    })
  }
  if (err.code && ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET'].includes(err.code)) {
    return new LazyError('NODE_UNREACHABLE', `${label}: cannot connect (${err.code})`)
  }
  if (/Timed out while waiting for handshake/.test(err.message)) return new LazyError('NODE_UNREACHABLE', `${label}: SSH handshake timed out`)
  if (/private key|parse|passphrase/i.test(err.message)) return new LazyError('NODE_AUTH', `${label}: cannot use the SSH key: ${keyProblem ?? 'unsupported or malformed key'}`)
  return new LazyError('NODE_UNREACHABLE', `${label}: SSH failed: ${describeError(err)}`)
}
