// `lazyctl node setup --ssm` through @aws-sdk/client-ssm against the SSM API stand-in (AWS is
// not reachable here): same plan, scripts run on this machine as the agent would run them.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, existsSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse} from 'smol-toml'
import {startSsmStandIn, type SsmStandIn} from '../rig/ssm-stand-in.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {EKS_CONFIG, freezeApp, makeEksRoot, runCli, treeChecksums, type FrozenApp} from './helpers.js'

const ONLINE = 'i-0aaaaaaaaaaaaaaa1'
const OFFLINE = 'i-0bbbbbbbbbbbbbbb2'
const UNKNOWN = 'i-0ccccccccccccccc3'
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRETzz'
const TOKEN = 'IQoJb3JpZ2luX2VjEXAMPLETOKENzz'

let ssm: SsmStandIn
let app: FrozenApp
let work: string
const roots: string[] = []

before(async () => {
  ssm = await startSsmStandIn({[ONLINE]: 'online', [OFFLINE]: 'unresponsive'})
  app = freezeApp()
  work = rigTempDir('ssm-work')
})
after(async () => {
  await ssm?.stop()
  app?.remove()
  for (const dir of [work, ...roots]) if (dir) removeDir(dir)
})

const env = () => ({
  AWS_ENDPOINT_URL_SSM: ssm.endpoint,
  AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
  AWS_SECRET_ACCESS_KEY: SECRET,
  AWS_SESSION_TOKEN: TOKEN,
  AWS_REGION: 'us-west-2',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_CONFIG_FILE: join(work, 'no-aws-config'),
  AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-aws-credentials'),
})

test('setup through SSM (SSM API stand-in) merges the config; a second run changes nothing', async () => {
  const root = makeEksRoot('ssm-root')
  roots.push(root)
  const args = ['node', 'setup', '--ssm', ONLINE, '--root', root, '--skip', 'install', '--ssm-timeout', '60']
  const first = await runCli(app, args, {env: env()})
  assert.equal(first.code, 0, first.stderr + first.stdout)
  assert.match(first.stderr, new RegExp(`${ONLINE}: Merge containerd's config: changed`))
  const tree = parse(readFileSync(join(root, 'etc/containerd/config.toml'), 'utf8')) as {proxy_plugins?: {stargz?: {type?: string}}}
  assert.equal(tree.proxy_plugins?.stargz?.type, 'snapshot')
  assert.equal(readFileSync(join(root, 'etc/containerd/config.toml.lazyctl-backup'), 'utf8'), readFileSync(EKS_CONFIG, 'utf8'))
  assert.ok(existsSync(join(root, 'etc/systemd/system/lazyctl-snapshotter.service')))
  assert.ok(ssm.calls.length > 0 && ssm.calls.every((c) => c.signed), 'every call was SigV4-signed')
  assert.ok(ssm.calls.some((c) => c.target === 'AmazonSSM.SendCommand') && ssm.calls.some((c) => c.target === 'AmazonSSM.GetCommandInvocation'))

  const before = treeChecksums(root)
  const second = await runCli(app, args, {env: env()})
  assert.equal(second.code, 0, second.stderr)
  const statuses = second.stderr.split('\n').filter((l) => l.startsWith(`${ONLINE}: `)).map((l) => /: (changed|unchanged|skipped|failed) /.exec(l)?.[1])
  assert.ok(statuses.length >= 5)
  assert.ok(statuses.every((s) => s === 'unchanged'), second.stderr)
  assert.deepEqual(treeChecksums(root), before)
})

/** Whether `secret` can be read out of `text`: in clear, or inside base64 at any of its three alignments. */
function readableIn(text: string, secret: string): boolean {
  if (text.includes(secret)) return true
  return [0, 1, 2].some((pad) => {
    const encoded = Buffer.from('x'.repeat(pad) + secret).toString('base64')
    // Drop the characters that depend on bytes around the secret.
    const inner = encoded.slice(Math.ceil((pad * 4) / 3) + 1, -4)
    return inner.length > 8 && text.replace(/\s+/g, '').includes(inner)
  })
}

test("a registry password in containerd's config never appears in SSM's command history, and the config is merged with it kept (SSM API stand-in)", async () => {
  const password = 'Registry-Pass-7f3c9e'
  const root = makeEksRoot('ssm-root')
  roots.push(root)
  const configPath = join(root, 'etc/containerd/config.toml')
  writeFileSync(configPath, `${readFileSync(configPath, 'utf8')}\n[plugins."io.containerd.grpc.v1.cri".registry.configs."registry.example.com".auth]\n  username = "ci"\n  password = "${password}"\n`)
  chmodSync(configPath, 0o600)
  const mark = ssm.history.length
  const r = await runCli(app, ['node', 'setup', '--ssm', ONLINE, '--root', root, '--skip', 'install', '--ssm-timeout', '60'], {env: env()})
  assert.equal(r.code, 0, r.stderr + r.stdout)
  const merged = readFileSync(configPath, 'utf8')
  assert.match(merged, /proxy_plugins/)
  assert.ok(merged.includes(password), 'the merged config keeps the registry password')
  assert.equal(statSync(configPath).mode & 0o777, 0o600)
  const history = ssm.history.slice(mark).join('\n')
  assert.ok(history.length > 0)
  assert.ok(history.includes('Salted__') || /U2FsdGVkX1/.test(history), 'file contents crossed sealed')
  assert.equal(readableIn(history, password), false, "the password is nowhere in SSM's record")
  assert.equal(readableIn(history, 'proxy_plugins'), false, 'nor is any other content of the config')
})

test('installing the program over SSM is refused with a way forward (SSM API stand-in)', async () => {
  const root = makeEksRoot('ssm-root')
  roots.push(root)
  const r = await runCli(app, ['node', 'setup', '--ssm', ONLINE, '--root', root], {env: env()})
  assert.equal(r.code, 55, r.stderr)
  assert.match(r.stderr, /Install lazyctl: failed — ssm cannot stream the \d+ MB program to the node.*--skip install/)
})

test('a fleet over SSM (SSM API stand-in) reports a SendCommand failure and a command timeout per host; the good host completes', async () => {
  const inventory = join(work, 'inventory')
  const rootsByHost = Object.fromEntries([ONLINE, OFFLINE, UNKNOWN].map((id) => [id, makeEksRoot('ssm-root')]))
  roots.push(...Object.values(rootsByHost))
  writeFileSync(inventory, Object.entries(rootsByHost).map(([id, root]) => `ssm://${id} root=${root}`).join('\n') + '\n')
  const r = await runCli(app, ['node', 'setup', '--inventory', inventory, '--skip', 'install', '--ssm-timeout', '3'], {env: env()})
  assert.equal(r.code, 56, r.stderr)
  const row = (id: string) => r.stdout.split('\n').find((l) => l.startsWith(id)) ?? ''
  assert.match(row(ONLINE), /\bok\b/)
  assert.match(row(OFFLINE), /FAILED .*did not finish within 3 s \(last status Pending\)/)
  assert.match(row(UNKNOWN), /FAILED .*SendCommand failed: InvalidInstanceId/)
  assert.match(r.stderr, new RegExp(`2 of 3 hosts failed: .*${OFFLINE}.*${UNKNOWN}|2 of 3 hosts failed: .*${UNKNOWN}.*${OFFLINE}`))
  assert.notEqual(readFileSync(join(rootsByHost[ONLINE]!, 'etc/containerd/config.toml'), 'utf8'), readFileSync(EKS_CONFIG, 'utf8'))
  for (const text of [r.stdout, r.stderr]) {
    assert.ok(!text.includes(SECRET) && !text.includes(TOKEN), 'AWS credentials leaked into output')
  }
})
