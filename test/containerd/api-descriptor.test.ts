// The JSON descriptor lazyctl loads instead of parsing proto/ must say what proto/ says.
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {test} from 'node:test'
import {API_DESCRIPTOR_FILE, containerdService} from '../../src/containerd/api-descriptor.js'
import {buildApiDescriptor} from '../../src/containerd/api-descriptor-build.js'

test('proto/containerd-api.json is current with proto/ (else run scripts/gen-proto-types)', () => {
  assert.equal(readFileSync(API_DESCRIPTOR_FILE, 'utf8'), buildApiDescriptor(), 'proto/containerd-api.json is stale: run scripts/gen-proto-types and commit it')
})

test('every service lazyctl calls is in the descriptor, with its methods', () => {
  const tasks = containerdService('string', 'containerd.services.tasks.v1.Tasks')
  assert.equal(tasks.service.Create?.path, '/containerd.services.tasks.v1.Tasks/Create')
  const snapshots = containerdService('number', 'containerd.services.snapshots.v1.Snapshots')
  assert.equal(snapshots.service.Prepare?.path, '/containerd.services.snapshots.v1.Snapshots/Prepare')
  assert.throws(() => containerdService('string', 'containerd.services.nothing.v1.Nothing'), /not in/)
})
