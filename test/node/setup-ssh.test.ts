// `lazyctl node setup` over a real sshd on loopback, into an offline root that looks like an EKS
// node. The merged config then drives a real containerd, with the snapshotter that setup
// installed (run from the root) answering on the proxy socket.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse} from 'smol-toml'
import {ContainerdConnection} from '../../src/containerd/connection.js'
import {serverVersion} from '../../src/containerd/version.js'
import {snapshotterAnswers, proxyPluginStatus} from '../../src/node/verify.js'
import {unmountUnder} from '../rig/containerd.js'
import {busyboxImage, writeOciArchive} from '../rig/images.js'
import {requireCommand, startService, waitUntilReady, type ServiceProcess} from '../rig/process.js'
import {ctrRun} from '../rig/ctr.js'
import {startSshd, type SshdRig} from '../rig/sshd.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {EKS_CONFIG, freezeApp, leaves, makeEksRoot, runCli, secretFragments, treeChecksums, type CliResult, type FrozenApp} from './helpers.js'

let sshd: SshdRig
let app: FrozenApp
let root: string
let work: string
let socket: string
const outputs: string[] = []

before(async () => {
  requireCommand('containerd', 'containerd')
  sshd = await startSshd()
  app = freezeApp()
  root = makeEksRoot()
  work = rigTempDir('node-work')
  socket = join(work, 'stargz.sock')
})
after(async () => {
  await sshd?.stop()
  app?.remove()
  for (const dir of [root, work]) {
    if (!dir) continue
    unmountUnder(dir)
    removeDir(dir)
  }
})

function sshArgs(extra: string[] = []): string[] {
  return ['--ssh', sshd.target, '-i', sshd.clientKey, '--known-hosts', sshd.knownHosts, ...extra]
}

async function setup(extra: string[]): Promise<CliResult> {
  const r = await runCli(app, ['node', 'setup', ...sshArgs(['--root', root, '--snapshotter-socket', socket, '--snapshotter-root', join(work, 'state'), ...extra])])
  outputs.push(r.stdout, r.stderr)
  return r
}

/** Step lines of the plain progress output: `host: title: status — reason`. */
function statuses(r: CliResult): Map<string, string> {
  const map = new Map<string, string>()
  for (const line of r.stderr.split('\n')) {
    const m = /^\S+: (.+?): (changed|unchanged|skipped|failed|would-change)( — |$)/.exec(line)
    if (m) map.set(m[1]!, m[2]!)
  }
  return map
}

describe('setup over SSH into an offline EKS root', () => {
  let merged: string
  const original = readFileSync(EKS_CONFIG, 'utf8')

  test('--dry-run prints the plan and the exact config diff and changes no file', async () => {
    const before = treeChecksums(root)
    const r = await setup(['--dry-run'])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /would-change +Merge containerd's config/)
    assert.match(r.stdout, /^\+\[proxy_plugins\.stargz\]$/m)
    assert.match(r.stdout, /^\+snapshotter = "stargz"$/m)
    assert.match(r.stdout, /^\+disable_snapshot_annotations = false$/m)
    assert.match(r.stdout, /^@@ -\d+,\d+ \+\d+,\d+ @@$/m)
    assert.deepEqual(treeChecksums(root), before)
  })

  test('the first run installs everything and merges the config, keeping every original key', async () => {
    const r = await setup([])
    assert.equal(r.code, 0, r.stderr + r.stdout)
    const s = statuses(r)
    assert.equal(s.get("Merge containerd's config"), 'changed')
    assert.equal(s.get('Install lazyctl'), 'changed')
    assert.equal(s.get('Install FUSE and load its module'), 'changed')
    merged = readFileSync(join(root, 'etc/containerd/config.toml'), 'utf8')
    const before = leaves(parse(original))
    const afterLeaves = leaves(parse(merged))
    for (const [key, value] of before) assert.deepEqual(afterLeaves.get(key), value, `kept ${key}`)
    const tree = parse(merged) as {proxy_plugins: {stargz: unknown}; plugins: {'io.containerd.grpc.v1.cri': {containerd: Record<string, unknown>}}}
    assert.deepEqual({...(tree.proxy_plugins.stargz as object)}, {type: 'snapshot', address: socket})
    assert.equal(tree.plugins['io.containerd.grpc.v1.cri'].containerd.snapshotter, 'stargz')
    assert.equal(tree.plugins['io.containerd.grpc.v1.cri'].containerd.disable_snapshot_annotations, false)
    assert.equal(readFileSync(join(root, 'etc/containerd/config.toml.lazyctl-backup'), 'utf8'), original)
    assert.equal(readFileSync(join(root, 'etc/modules-load.d/fuse.conf'), 'utf8'), 'fuse\n')
    const unit = readFileSync(join(root, 'etc/systemd/system/lazyctl-snapshotter.service'), 'utf8')
    assert.match(unit, new RegExp(`ExecStart=/opt/lazyctl/bin/lazyctl snapshotter serve --socket ${socket} --root ${join(work, 'state')} --config /etc/lazyctl/config.toml`))
    assert.equal(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/lazyctl-snapshotter.service')), '/etc/systemd/system/lazyctl-snapshotter.service')
    assert.ok(existsSync(join(root, 'opt/lazyctl/app/bin/run.js')))
  })

  describe('with a real containerd on the merged config and the installed snapshotter', () => {
    let containerd: ServiceProcess
    let snapshotter: ServiceProcess
    let address: string
    const namespace = `lazytest-node-${process.pid}`

    before(async () => {
      // The service's command line from the unit, with the root's binaries (paths rebased to the test).
      const node = join(root, 'opt/lazyctl/node/bin/node')
      snapshotter = startService('lazyctl-snapshotter', node, [join(root, 'opt/lazyctl/app/bin/run.js'), 'snapshotter', 'serve', '--socket', socket, '--root', join(work, 'state'), '--config', join(root, 'etc/lazyctl/config.toml')], {
        logFile: join(work, 'snapshotter.log'),
      })
      await waitUntilReady(snapshotter, 'its socket answering', async () => (await snapshotterAnswers(socket, 1000)).ok)
      // containerd reads the merged file as is; only where it keeps its own state moves to the test dir.
      const cdDir = join(work, 'containerd')
      mkdirSync(cdDir, {recursive: true})
      address = join(cdDir, 'containerd.sock')
      const config = join(cdDir, 'config.toml')
      writeFileSync(config, `${merged}\n[plugins."io.containerd.internal.v1.opt"]\n  path = ${JSON.stringify(join(cdDir, 'opt'))}\n`)
      containerd = startService('containerd', 'containerd', ['-c', config, '--root', join(cdDir, 'root'), '--state', join(cdDir, 'state'), '--address', address, '-l', 'debug'], {logFile: join(cdDir, 'containerd.log')})
      const conn = new ContainerdConnection({address, namespace})
      try {
        await waitUntilReady(containerd, 'its socket answering', async () => Boolean(await serverVersion(conn)))
      } finally {
        conn.close()
      }
    })
    after(async () => {
      await containerd?.stop()
      await snapshotter?.stop()
    })

    test('the node got the supported Node.js runtime lazyctl runs on here, and its snapshotter runs on it', () => {
      const installed = join(root, 'opt/lazyctl/node/bin/node')
      const version = execFileSync(installed, ['--version'], {encoding: 'utf8'}).trim()
      assert.equal(version, process.version)
      assert.ok(Number(version.slice(1).split('.')[0]) >= 22, `${version} is a supported line`)
      // The service is the shipped binary itself, not a node found on PATH (this machine's is older).
      assert.equal(readlinkSync(`/proc/${snapshotter.child.pid}/exe`), installed)
    })

    test('containerd lists the stargz proxy plugin as ok, and the CRI plugin loaded with the merged settings', async () => {
      const status = await proxyPluginStatus({containerdAddress: address, snapshotterSocket: socket, pluginName: 'stargz'})
      assert.ok(status.ok, status.detail)
      const plugins = execFileSync('ctr', ['-a', address, 'plugins', 'ls'], {encoding: 'utf8'})
      assert.match(plugins, /io\.containerd\.snapshotter\.v1\s+stargz\s+-\s+ok/)
      assert.match(plugins, /io\.containerd\.grpc\.v1\s+cri\s+linux\/amd64\s+ok/)
    })

    test('an image imported through the stargz snapshotter runs', async () => {
      const archive = join(work, 'busybox.tar')
      await writeOciArchive(archive, busyboxImage({tag: 'node'}))
      const ctr = (args: string[]) => execFileSync('ctr', ['-a', address, '-n', namespace, ...args], {encoding: 'utf8'})
      // containerd dials the proxy lazily and backs off; wait until a snapshotter call goes through.
      await waitUntilReady(containerd, 'containerd reaching the snapshotter', async () => (ctr(['snapshots', '--snapshotter', 'stargz', 'ls']), true))
      ctr(['images', 'import', '--snapshotter', 'stargz', '--index-name', 'rig/busybox:node', archive])
      const out = await ctrRun(async (args) => ctr(args), work, 'rig/busybox:node', `node-${process.pid}`, ['echo', 'hello from stargz'], {snapshotter: 'stargz'})
      assert.equal(out.trim(), 'hello from stargz')
    })

    test('a second run with verification reports every step unchanged and changes no file', async () => {
      const before = treeChecksums(root)
      const r = await setup(['--verify', '-a', address])
      assert.equal(r.code, 0, r.stderr + r.stdout)
      const s = statuses(r)
      assert.deepEqual([...s.keys()], ['Detect the node', 'Install FUSE and load its module', 'Install lazyctl', "Write lazyctl's config", 'Install the snapshotter service', "Merge containerd's config", "Give kubelet containerd's image filesystem", 'Verify the snapshotter'])
      for (const [step, status] of s) assert.equal(status, 'unchanged', `${step}: ${status}`)
      assert.match(r.stderr, /Verify the snapshotter: unchanged — ok: .*answers; ok: io\.containerd\.snapshotter\.v1 stargz ok/)
      assert.deepEqual(treeChecksums(root), before)
    })
  })

  test('teardown restores the original config byte for byte and removes the service', async () => {
    const r = await runCli(app, ['node', 'teardown', ...sshArgs(['--root', root])])
    outputs.push(r.stdout, r.stderr)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readFileSync(join(root, 'etc/containerd/config.toml'), 'utf8'), original)
    assert.ok(!existsSync(join(root, 'etc/systemd/system/lazyctl-snapshotter.service')))
    assert.ok(!existsSync(join(root, 'etc/containerd/config.toml.lazyctl-backup')))
  })

  test('a verification failure restores the original config byte for byte', async () => {
    // Nothing serves the snapshotter socket now, and no containerd listens at this address.
    const r = await setup(['--verify', '-a', join(work, 'no-containerd.sock')])
    assert.notEqual(r.code, 0)
    assert.match(r.stderr, /Verify the snapshotter: failed — .*nothing answers on .*stargz\.sock.*rolled back: restored \/etc\/containerd\/config\.toml/)
    assert.equal(statuses(r).get("Merge containerd's config"), 'changed')
    assert.equal(readFileSync(join(root, 'etc/containerd/config.toml'), 'utf8'), original)
    assert.match(r.stdout, /FAILED/)
  })

  test('no private key material appears in any output or in the sshd log', () => {
    const fragments = secretFragments(sshd.clientKey)
    assert.ok(fragments.length > 2)
    for (const text of [...outputs, sshd.log()]) {
      for (const f of fragments) assert.ok(!text.includes(f), 'a private key line leaked into output')
    }
  })
})

describe('host keys', () => {
  test('an unknown host key is refused by default and trusted on first use only when asked', async () => {
    const knownHosts = join(work, 'known_hosts_empty')
    writeFileSync(knownHosts, '')
    const args = (extra: string[]) => ['node', 'setup', '--ssh', sshd.target, '-i', sshd.clientKey, '--known-hosts', knownHosts, '--root', root, '--dry-run', '--skip', 'install', ...extra]
    const refused = await runCli(app, args([]))
    assert.equal(refused.code, 52, refused.stderr)
    assert.match(refused.stderr, /host key is not in .*known_hosts_empty; refusing to connect/)
    assert.match(refused.stderr, /--accept-new-host-key/)
    const accepted = await runCli(app, args(['--accept-new-host-key']))
    assert.equal(accepted.code, 0, accepted.stderr)
    assert.equal(readFileSync(knownHosts, 'utf8').trim(), `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}`)
    const again = await runCli(app, args([]))
    assert.equal(again.code, 0, again.stderr)
  })

  test('a changed host key is refused even with --accept-new-host-key', async () => {
    const knownHosts = join(work, 'known_hosts_changed')
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'other_host_key')])
    writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${readFileSync(join(work, 'other_host_key.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}\n`)
    const r = await runCli(app, ['node', 'setup', '--ssh', sshd.target, '-i', sshd.clientKey, '--known-hosts', knownHosts, '--root', root, '--dry-run', '--accept-new-host-key'])
    assert.equal(r.code, 52)
    assert.match(r.stderr, /host key differs from the one in .*known_hosts_changed \(line 1\)/)
  })
})
