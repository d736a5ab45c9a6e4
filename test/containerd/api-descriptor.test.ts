// The JSON descriptors lazyctl loads instead of parsing proto/ must say what proto/ says.
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {test} from 'node:test'
import {API_DESCRIPTOR_FILE, CRI_DESCRIPTOR_FILE} from '../../src/containerd/api-descriptor.js'
import {buildApiDescriptor} from '../../src/containerd/api-descriptor-build.js'

test('proto/containerd-api.json is current with proto/containerd (else run scripts/gen-proto-types)', () => {
  assert.equal(readFileSync(API_DESCRIPTOR_FILE, 'utf8'), buildApiDescriptor('containerd'), 'proto/containerd-api.json is stale: run scripts/gen-proto-types and commit it')
})

test('proto/cri-api.json is current with proto/cri (else run scripts/gen-proto-types)', () => {
  assert.equal(readFileSync(CRI_DESCRIPTOR_FILE, 'utf8'), buildApiDescriptor('cri'), 'proto/cri-api.json is stale: run scripts/gen-proto-types and commit it')
})
