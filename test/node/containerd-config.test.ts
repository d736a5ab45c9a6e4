import {test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse} from 'smol-toml'
import {mergeContainerdConfig, parseContainerdVersion} from '../../src/node/containerd-config.js'
import {unifiedDiff} from '../../src/node/unified-diff.js'
import {isLazyError} from '../../src/cli/errors.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {EKS_CONFIG, leaves} from './helpers.js'

const eks = readFileSync(EKS_CONFIG, 'utf8')
const v16 = parseContainerdVersion('containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3')!
const v20 = parseContainerdVersion('containerd github.com/containerd/containerd/v2 v2.0.4 1a43cb6a1035441f9aca8f5666a9b3ef9e70ab20')!

test('reads the major version from containerd --version, Debian and upstream builds alike', () => {
  assert.deepEqual(v16, {version: '1.6.20~ds1', major: 1, minor: 6})
  assert.deepEqual(v20, {version: '2.0.4', major: 2, minor: 0})
})

test('merging into an EKS config edits the text in place: original lines and comments stay, in order', () => {
  const r = mergeContainerdConfig(eks, {containerd: v16})
  assert.equal(r.method, 'edit')
  assert.equal(r.schema, 2)
  const kept = r.text.split('\n').filter((line) => eks.split('\n').includes(line))
  assert.deepEqual(kept.filter(Boolean), eks.split('\n').filter(Boolean))
  const before = leaves(parse(eks))
  const after = leaves(parse(r.text))
  for (const [k, v] of before) assert.deepEqual(after.get(k), v, k)
  assert.equal(after.get(JSON.stringify(['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'snapshotter'])), 'stargz')
})

test('merging twice changes nothing the second time', () => {
  const once = mergeContainerdConfig(eks, {containerd: v16})
  const twice = mergeContainerdConfig(once.text, {containerd: v16})
  assert.equal(twice.changed, false)
  assert.equal(twice.text, once.text)
})

test('a missing config becomes version 3 with the CRI images plugin for containerd 2.x', () => {
  const r = mergeContainerdConfig(undefined, {containerd: v20})
  const tree = parse(r.text) as Record<string, Record<string, Record<string, unknown>>>
  assert.equal(r.schema, 3)
  assert.equal(tree.version as unknown, 3)
  assert.equal(tree.plugins!['io.containerd.cri.v1.images']!.snapshotter, 'stargz')
  assert.equal(tree.plugins!['io.containerd.cri.v1.images']!.disable_snapshot_annotations, false)
  assert.equal((tree.proxy_plugins!.stargz as Record<string, unknown>).type, 'snapshot')
})

test('an existing wrong value is replaced on its own line, and dotted-key layouts fall back to a full rewrite', () => {
  const replaced = mergeContainerdConfig('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd]\n  snapshotter = "overlayfs" # default\n', {})
  assert.equal(replaced.method, 'edit')
  assert.match(replaced.text, /^ {2}snapshotter = "stargz"$/m)
  const dotted = mergeContainerdConfig('version = 2\n[plugins]\n  "io.containerd.grpc.v1.cri".containerd.snapshotter = "overlayfs"\n', {})
  assert.equal(dotted.method, 'rewrite')
  const tree = parse(dotted.text) as Record<string, Record<string, Record<string, Record<string, unknown>>>>
  assert.equal(tree.plugins!['io.containerd.grpc.v1.cri']!.containerd!.snapshotter, 'stargz')
})

test('refuses a version 1 config and a version 3 config for containerd 1.x', () => {
  assert.throws(() => mergeContainerdConfig('[plugins.cri]\nsandbox_image = "x"\n', {}), (e) => isLazyError(e, 'NODE_UNSUPPORTED') && /version 1/.test(e.message))
  assert.throws(() => mergeContainerdConfig('version = 3\n', {containerd: v16}), (e) => isLazyError(e, 'NODE_UNSUPPORTED') && /reads only versions 1 and 2/.test(e.message))
})

test('refuses a config that is not TOML, naming the line', () => {
  assert.throws(() => mergeContainerdConfig('version = 2\n[grpc\n', {path: '/etc/containerd/config.toml'}), (e) => isLazyError(e, 'NODE_STEP_FAILED') && /config\.toml is not valid TOML at line 2/.test(e.message))
})

test('the unified diff applies with patch(1) and reproduces the merged file', () => {
  const dir = rigTempDir('diff')
  try {
    const r = mergeContainerdConfig(eks, {containerd: v16})
    writeFileSync(join(dir, 'config.toml'), eks)
    writeFileSync(join(dir, 'merged.diff'), unifiedDiff(eks, r.text, 'config.toml', 'config.toml'))
    execFileSync('patch', ['-s', join(dir, 'config.toml'), join(dir, 'merged.diff')])
    assert.equal(readFileSync(join(dir, 'config.toml'), 'utf8'), r.text)
  } finally {
    removeDir(dir)
  }
})
