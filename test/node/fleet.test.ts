// A fleet over real sshd servers on loopback: two good nodes, one whose sshd refuses our key,
// one address where nothing listens. The good ones complete; the summary names the others.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {freePort} from '../rig/ports.js'
import {startSshd, type SshdRig} from '../rig/sshd.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {EKS_CONFIG, freezeApp, makeEksRoot, runCli, secretFragments, type FrozenApp} from './helpers.js'

let good: SshdRig[] = []
let refusing: SshdRig
let app: FrozenApp
let work: string
const roots: string[] = []

before(async () => {
  const first = await startSshd()
  const pub = readFileSync(`${first.clientKey}.pub`, 'utf8').trim()
  good = [first, await startSshd({authorizedKeys: [pub]})]
  refusing = await startSshd() // authorizes only its own key, which is never offered
  app = freezeApp()
  work = rigTempDir('fleet-work')
})
after(async () => {
  for (const s of [...good, refusing]) await s?.stop()
  app?.remove()
  for (const dir of [work, ...roots]) if (dir) removeDir(dir)
})

test('a fleet with an unreachable node and one that refuses the key: the others complete, the summary names both failures and why', async () => {
  const deadPort = await freePort()
  const knownHosts = join(work, 'known_hosts')
  writeFileSync(knownHosts, [...good, refusing].map((s) => readFileSync(s.knownHosts, 'utf8')).join(''))
  const lines: string[] = []
  const rootOf = new Map<string, string>()
  for (const s of [...good, refusing]) {
    const root = makeEksRoot('fleet-root')
    roots.push(root)
    rootOf.set(s.target, root)
    lines.push(`${s.target} root=${root}`)
  }
  lines.push(`root@127.0.0.1:${deadPort} root=${join(work, 'never-used')}`)
  const inventory = join(work, 'inventory')
  writeFileSync(inventory, `# test fleet\n${lines.join('\n')}\n`)

  const r = await runCli(app, ['node', 'setup', '--inventory', inventory, '-i', good[0]!.clientKey, '--known-hosts', knownHosts, '--skip', 'install', '--concurrency', '4', '--connect-timeout', '5'])
  assert.equal(r.code, 56, r.stderr)
  const row = (target: string) => r.stdout.split('\n').find((l) => l.startsWith(`${target} `)) ?? ''
  for (const s of good) {
    assert.match(row(s.target), /\bok\b/)
    assert.notEqual(readFileSync(join(rootOf.get(s.target)!, 'etc/containerd/config.toml'), 'utf8'), readFileSync(EKS_CONFIG, 'utf8'))
  }
  assert.match(row(refusing.target), /FAILED .*the server refused every key offered/)
  assert.match(row(`root@127.0.0.1:${deadPort}`), /FAILED .*cannot connect \(ECONNREFUSED\)/)
  assert.match(r.stderr, /lazyctl: 2 of 4 hosts failed: /)
  assert.match(r.stderr, new RegExp(`${refusing.target.replace(/\./g, '\\.')} \\(the server refused every key offered`))
  assert.match(r.stderr, new RegExp(`root@127\\.0\\.0\\.1:${deadPort} \\(cannot connect \\(ECONNREFUSED\\)\\)`))
  assert.equal(readFileSync(join(rootOf.get(refusing.target)!, 'etc/containerd/config.toml'), 'utf8'), readFileSync(EKS_CONFIG, 'utf8'))
  for (const text of [r.stdout, r.stderr, ...good.map((s) => s.log()), refusing.log()]) {
    for (const f of secretFragments(good[0]!.clientKey)) assert.ok(!text.includes(f), 'private key material leaked')
  }
})
