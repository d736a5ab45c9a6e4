// A real OpenSSH server on a free loopback port for one test: its own config, host key,
// authorized_keys and a client key pair; a known_hosts file that trusts its host key. No PAM,
// key-only root login. Always stopped (process group) by stop() or at exit.
import {execFileSync} from 'node:child_process'
import {mkdirSync, readFileSync, writeFileSync, existsSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'
import {freePort} from './ports.js'
import {requireCommand, startService, waitUntilReady, type ServiceProcess} from './process.js'
import {removeDir, rigTempDir} from './tmp.js'

export const SSHD = '/usr/sbin/sshd'

export interface SshdRig {
  host: string
  port: number
  user: string
  /** `root@127.0.0.1:PORT` */
  target: string
  dir: string
  /** Private key the server accepts. */
  clientKey: string
  /** known_hosts with this server's host key (as `[127.0.0.1]:PORT`). */
  knownHosts: string
  /** The server's public host key line (`ssh-ed25519 AAAA…`). */
  hostPublicKey: string
  process: ServiceProcess
  log(): string
  stop(): Promise<void>
}

export interface SshdOptions {
  /** Public key lines to authorize instead of the generated client key (to test a refused key). */
  authorizedKeys?: string[]
}

function keygen(file: string, comment: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {stdio: 'ignore'})
}

export async function startSshd(options: SshdOptions = {}): Promise<SshdRig> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is not installed: run scripts/bootstrap (apt-get install openssh-server)`)
  requireCommand('ssh-keygen', 'openssh-client')
  const dir = rigTempDir('sshd')
  const hostKey = join(dir, 'host_key')
  const clientKey = join(dir, 'client_key')
  keygen(hostKey, 'lazyctl-test-host')
  keygen(clientKey, 'lazyctl-test-client')
  const authorized = options.authorizedKeys ?? [readFileSync(`${clientKey}.pub`, 'utf8').trim()]
  writeFileSync(join(dir, 'authorized_keys'), authorized.join('\n') + '\n', {mode: 0o600})
  const port = await freePort()
  const hostPublicKey = readFileSync(`${hostKey}.pub`, 'utf8').trim().split(/\s+/).slice(0, 2).join(' ')
  const knownHosts = join(dir, 'known_hosts')
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${hostPublicKey}\n`, {mode: 0o600})
  const config = join(dir, 'sshd_config')
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      // The rig dir lives under the world-writable /tmp, which StrictModes would reject.
      'StrictModes no',
      'MaxSessions 30',
      'MaxStartups 100',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  )
  // sshd refuses to start without its privilege-separation directory.
  mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
  const svc = startService('sshd', SSHD, ['-D', '-e', '-f', config], {logFile: join(dir, 'sshd.log')})
  try {
    await waitUntilReady(svc, 'its SSH banner', () => bannerOn(port))
  } catch (err) {
    await svc.stop()
    removeDir(dir)
    throw err
  }
  return {
    host: '127.0.0.1',
    port,
    user: 'root',
    target: `root@127.0.0.1:${port}`,
    dir,
    clientKey,
    knownHosts,
    hostPublicKey,
    process: svc,
    log: () => svc.log(),
    async stop() {
      await svc.stop()
      removeDir(dir)
    },
  }
}

/** True when something on the port greets with an SSH version line. */
function bannerOn(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({host: '127.0.0.1', port})
    let data = ''
    sock.setTimeout(2000, () => {
      sock.destroy()
      resolve(false)
    })
    sock.on('data', (d) => {
      data += d.toString('latin1')
      if (data.includes('\n')) {
        sock.destroy()
        resolve(data.startsWith('SSH-2.0-'))
      }
    })
    sock.on('error', () => resolve(false))
  })
}
