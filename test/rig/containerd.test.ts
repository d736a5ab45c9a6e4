import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync} from 'node:fs'
import {startContainerd, type ContainerdRig} from './containerd.js'

let rig: ContainerdRig

before(async () => {
  rig = await startContainerd()
})
after(async () => {
  await rig?.stop()
})

test('the rig containerd lists the stargz proxy snapshotter among its plugins', () => {
  const plugins = rig.ctr(['plugins', 'ls'])
  assert.match(plugins, /io\.containerd\.snapshotter\.v1\s+stargz/)
  assert.match(plugins, /io\.containerd\.snapshotter\.v1\s+overlayfs\s+linux\/amd64\s+ok/)
})

test('the rig containerd keeps its state inside its own temp dir', () => {
  assert.ok(existsSync(rig.address))
  assert.ok(rig.address.startsWith(rig.dir))
})
