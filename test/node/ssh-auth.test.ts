// Where the SSH key comes from: ssh-agent (SSH_AUTH_SOCK), ~/.ssh/id_*, or -i; a
// passphrase-protected -i key is refused with the way forward, and never echoed.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdirSync} from 'node:fs'
import {join} from 'node:path'
import {requireCommand, startService, waitUntilReady, type ServiceProcess} from '../rig/process.js'
import {startSshd, type SshdRig} from '../rig/sshd.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {freezeApp, makeEksRoot, runCli, secretFragments, type FrozenApp} from './helpers.js'

let sshd: SshdRig
let app: FrozenApp
let work: string
let root: string
let agent: ServiceProcess | undefined

before(async () => {
  requireCommand('ssh-agent', 'openssh-client')
  sshd = await startSshd()
  app = freezeApp()
  work = rigTempDir('ssh-auth')
  root = makeEksRoot('ssh-auth-root')
})
after(async () => {
  await agent?.stop()
  await sshd?.stop()
  app?.remove()
  for (const d of [work, root]) if (d) removeDir(d)
})

const plan = (extra: string[]) => ['node', 'setup', '--ssh', sshd.target, '--known-hosts', sshd.knownHosts, '--root', root, '--dry-run', '--skip', 'install', ...extra]

test('authenticates with a key held by ssh-agent (SSH_AUTH_SOCK), no -i needed', async () => {
  const socket = join(work, 'agent.sock')
  agent = startService('ssh-agent', 'ssh-agent', ['-D', '-a', socket], {logFile: join(work, 'agent.log')})
  await waitUntilReady(agent, 'its socket', async () => existsSync(socket))
  execFileSync('ssh-add', ['-q', sshd.clientKey], {env: {...process.env, SSH_AUTH_SOCK: socket}, stdio: 'ignore'})
  const emptyHome = join(work, 'home-empty')
  mkdirSync(emptyHome)
  const r = await runCli(app, plan([]), {env: {SSH_AUTH_SOCK: socket, HOME: emptyHome}})
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /ok +\d+ +\d+/)
})

test('falls back to ~/.ssh/id_ed25519 when no -i and no agent', async () => {
  const home = join(work, 'home-key')
  mkdirSync(join(home, '.ssh'), {recursive: true, mode: 0o700})
  copyFileSync(sshd.clientKey, join(home, '.ssh', 'id_ed25519'))
  const r = await runCli(app, plan([]), {env: {HOME: home}})
  assert.equal(r.code, 0, r.stderr)
})

test('a passphrase-protected -i key is refused with the way forward and never printed', async () => {
  const key = join(work, 'locked_key')
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'correct horse battery', '-f', key])
  const r = await runCli(app, plan(['-i', key]), {env: {HOME: join(work, 'home-empty')}})
  assert.equal(r.code, 51, r.stderr)
  assert.match(r.stderr, /identity .*locked_key is passphrase-protected; load it into ssh-agent/)
  for (const f of secretFragments(key)) assert.ok(!r.stderr.includes(f) && !r.stdout.includes(f))
})
