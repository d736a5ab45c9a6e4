// The node commands from the outside: bad input refused with distinct codes and one-line
// messages; the local transport on an offline root; teardown --purge; verify; the DaemonSet.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, existsSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {productionPackageDirs} from '../../src/node/bundle.js'
import {PACKAGE_ROOT} from '../../src/paths.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {EKS_CONFIG, freezeApp, makeEksRoot, runCli, treeChecksums, type FrozenApp} from './helpers.js'

let app: FrozenApp
let work: string
before(() => {
  app = freezeApp()
  work = rigTempDir('node-cli')
})
after(() => {
  app?.remove()
  if (work) removeDir(work)
})

test('refuses bad targets and options with distinct codes and one line saying where', async () => {
  const noTarget = await runCli(app, ['node', 'setup'])
  assert.equal(noTarget.code, 2)
  assert.match(noTarget.stderr, /lazyctl: no target given\nhint: pass --local, --ssh/)
  const badSsm = await runCli(app, ['node', 'setup', '--ssm', 'not-an-instance'])
  assert.equal(badSsm.code, 2)
  assert.match(badSsm.stderr, /invalid SSM instance ID "not-an-instance"/)
  const relative = await runCli(app, ['node', 'setup', '--local', '--root', 'relative/dir'])
  assert.equal(relative.code, 2)
  assert.match(relative.stderr, /offline root "relative\/dir" must be an absolute path/)
  const inventory = join(work, 'bad-inventory')
  writeFileSync(inventory, 'root@10.0.0.5\nroot@10.0.0.6 rooot=/x\n')
  const badLine = await runCli(app, ['node', 'setup', '--inventory', inventory])
  assert.equal(badLine.code, 2)
  assert.match(badLine.stderr, /bad-inventory:2: unknown target option "rooot=\/x"/)
  const twice = await runCli(app, ['node', 'setup', '--ssh', 'root@10.0.0.5', '--ssh', 'root@10.0.0.5:22'])
  assert.equal(twice.code, 2)
  assert.match(twice.stderr, /target root@10\.0\.0\.5 is listed twice/)
  const missingKey = await runCli(app, ['node', 'setup', '--ssh', 'root@127.0.0.1:1', '-i', join(work, 'no-such-key')])
  assert.equal(missingKey.code, 51)
  assert.match(missingKey.stderr, /cannot read identity file .*no-such-key: ENOENT/)
})

test('the local transport sets up an offline root and teardown --purge leaves only the original files', async () => {
  const root = makeEksRoot('node-local-root')
  try {
    const pristine = treeChecksums(root)
    const setup = await runCli(app, ['node', 'setup', '--local', '--root', root, '--skip', 'install'])
    assert.equal(setup.code, 0, setup.stderr)
    assert.match(setup.stdout, /^local +ok +5 +1 +0/m)
    assert.ok(existsSync(join(root, 'etc/lazyctl/config.toml')))
    const teardown = await runCli(app, ['node', 'teardown', '--local', '--root', root, '--purge'])
    assert.equal(teardown.code, 0, teardown.stderr)
    assert.equal(readFileSync(join(root, 'etc/containerd/config.toml'), 'utf8'), readFileSync(EKS_CONFIG, 'utf8'))
    const left = treeChecksums(root)
    // What stays is the original tree plus FUSE's modules-load file (FUSE is node state, not lazyctl's).
    left.delete('etc/modules-load.d/fuse.conf')
    assert.deepEqual(left, pristine)
    const again = await runCli(app, ['node', 'teardown', '--local', '--root', root])
    assert.equal(again.code, 0)
    assert.match(again.stderr, /Restore containerd's original config: unchanged — no .*lazyctl-backup: nothing to restore/)
  } finally {
    removeDir(root)
  }
})

test('a 0600 containerd config holding a registry password keeps its mode through setup and teardown, and --dry-run never prints the password', async () => {
  const root = makeEksRoot('node-secret-root')
  try {
    const config = join(root, 'etc/containerd/config.toml')
    const secret = 'Upstr3am-Passw0rd'
    const original = `${readFileSync(config, 'utf8')}\n[plugins."io.containerd.grpc.v1.cri".registry.configs."reg.example".auth]\n  username = "bot"\n  password = "${secret}"\n  auth = "${Buffer.from(`bot:${secret}`).toString('base64')}"\n`
    writeFileSync(config, original)
    chmodSync(config, 0o600)
    const dry = await runCli(app, ['node', 'setup', '--local', '--root', root, '--skip', 'install', '--dry-run'])
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /^\+disable_snapshot_annotations = false$/m, 'the diff is printed')
    assert.ok(!dry.stdout.includes(secret) && !dry.stderr.includes(secret), 'the password is not in the dry run\'s output')
    assert.ok(!dry.stdout.includes(Buffer.from(`bot:${secret}`).toString('base64')), 'nor its base64')
    const setup = await runCli(app, ['node', 'setup', '--local', '--root', root, '--skip', 'install'])
    assert.equal(setup.code, 0, setup.stderr)
    assert.equal(statSync(config).mode & 0o777, 0o600, 'the merged config keeps the original\'s mode')
    assert.ok(!setup.stdout.includes(secret) && !setup.stderr.includes(secret))
    const teardown = await runCli(app, ['node', 'teardown', '--local', '--root', root])
    assert.equal(teardown.code, 0, teardown.stderr)
    assert.equal(readFileSync(config, 'utf8'), original)
    assert.equal(statSync(config).mode & 0o777, 0o600, 'the restored config keeps it too')
  } finally {
    removeDir(root)
  }
})

test('on a live node without systemd, setup says so and prints the commands to run instead of restarting', async () => {
  // Every file the live plan writes is pointed into the test dir (image-fs, a directory under the real
  // /var/lib/containerd, is skipped); this machine has no systemd.
  const dir = join(work, 'live')
  const args = ['node', 'setup', '--local', '--skip', 'fuse', '--skip', 'install', '--skip', 'image-fs', '--containerd-config', join(dir, 'config.toml'), '--config', join(dir, 'lazyctl.toml'), '--snapshotter-socket', join(dir, 's.sock')]
  const r = await runCli(app, args)
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stderr, /Install the snapshotter service: skipped — no systemd on the node; start the snapshotter yourself: nohup \/opt\/lazyctl\/bin\/lazyctl snapshotter serve --socket .*s\.sock/)
  assert.match(r.stderr, /Restart containerd: skipped — no systemd on the node: restart containerd yourself/)
  assert.match(r.stderr, /Verify the snapshotter: skipped — containerd was not restarted/)
  assert.ok(existsSync(join(dir, 'config.toml.lazyctl-created')))
  const again = await runCli(app, args)
  assert.match(again.stderr, /Merge containerd's config: unchanged/)
  assert.match(again.stderr, /Restart containerd: unchanged — containerd config unchanged; no restart/)
  // Now containerd is presumed to run the merged config, so verification runs — and nothing answers.
  assert.equal(again.code, 54)
  assert.match(again.stderr, /Verify the snapshotter: failed — FAILED: nothing answers on .*s\.sock/)
})

test('node verify fails with its own code and says what does not answer', async () => {
  const r = await runCli(app, ['node', 'verify', '-a', join(work, 'none.sock'), '--snapshotter-socket', join(work, 'none-stargz.sock')])
  assert.equal(r.code, 54)
  assert.match(r.stdout, /FAILED +snapshotter socket: nothing answers on .*none-stargz\.sock/)
  assert.match(r.stdout, /FAILED +containerd proxy plugin: cannot reach containerd at .*none\.sock: no such socket/)
})

test('the DaemonSet is privileged, shares the host PID namespace, mounts the host root and runs setup in the host', async () => {
  const r = await runCli(app, ['node', 'manifest', '-o', 'json', '--image', 'registry.local/lazyctl:1', '--node-selector', 'lazy=yes'])
  assert.equal(r.code, 0, r.stderr)
  const ds = JSON.parse(r.stdout) as {kind: string; spec: {template: {spec: Record<string, unknown> & {initContainers: Array<Record<string, unknown>>; volumes: Array<Record<string, unknown>>}}}}
  const pod = ds.spec.template.spec
  assert.equal(ds.kind, 'DaemonSet')
  assert.equal(pod.hostPID, true)
  assert.deepEqual(pod.nodeSelector, {lazy: 'yes'})
  assert.deepEqual(pod.initContainers[0]!.securityContext, {privileged: true})
  assert.equal(pod.initContainers[0]!.image, 'registry.local/lazyctl:1')
  assert.match(String((pod.initContainers[0]!.args as string[])[0]), /nsenter --target 1 --mount .* \/opt\/lazyctl\/bin\/lazyctl node setup --local --skip install/)
  assert.deepEqual(pod.volumes[0], {name: 'host-root', hostPath: {path: '/', type: 'Directory'}})
  // node verify is the verify container's readiness: a failing node shows as not ready.
  const verify = (ds.spec.template.spec as unknown as {containers: Array<{readinessProbe: {exec: {command: string[]}}}>}).containers[0]!
  assert.match(verify.readinessProbe.exec.command.at(-1)!, /nsenter --target 1 .* \/opt\/lazyctl\/bin\/lazyctl node verify$/)
  // Setup arguments reach the host shell quoted, and verify checks the socket setup was given.
  const odd = await runCli(app, ['node', 'manifest', '-o', 'json', '--setup-arg=--snapshotter-socket', '--setup-arg=/run/lazy ctl/s.sock', '--setup-arg=--config', "--setup-arg=/etc/x;rm -rf /'y"])
  assert.equal(odd.code, 0, odd.stderr)
  const oddPod = (JSON.parse(odd.stdout) as {spec: {template: {spec: {initContainers: Array<{args: string[]}>; containers: Array<{readinessProbe: {exec: {command: string[]}}}>}}}}).spec.template.spec
  const script = oddPod.initContainers[0]!.args[0]!
  assert.match(script, / --snapshotter-socket '\/run\/lazy ctl\/s\.sock' --config '\/etc\/x;rm -rf \/'\\''y'$/m)
  assert.match(oddPod.containers[0]!.readinessProbe.exec.command.at(-1)!, /node verify --snapshotter-socket '\/run\/lazy ctl\/s\.sock'$/)
  const yaml = await runCli(app, ['node', 'manifest', '--image', 'registry.local/lazyctl:1'])
  assert.match(yaml.stdout, /^kind: "DaemonSet"$/m)
  assert.match(yaml.stdout, /^ {6}hostPID: true$/m)
})

test('the shipped node_modules are the production closure: runtime deps in, dev tools out', () => {
  const names = productionPackageDirs(PACKAGE_ROOT).map((d) => d.slice(PACKAGE_ROOT.length + 1))
  for (const dep of ['node_modules/ssh2', 'node_modules/smol-toml', 'node_modules/@grpc/grpc-js', 'node_modules/@oclif/core']) assert.ok(names.includes(dep), dep)
  for (const dev of ['node_modules/typescript', 'node_modules/eslint', 'node_modules/oclif']) assert.ok(!names.includes(dev), dev)
})
