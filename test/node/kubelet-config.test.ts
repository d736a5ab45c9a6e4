// kubelet's imageServiceEndpoint set in its config file, JSON (EKS) or YAML (kubeadm), touching
// nothing else; a file that is neither refuses with the path.
import assert from 'node:assert/strict'
import {test} from 'node:test'
import {setImageServiceEndpoint} from '../../src/node/kubelet-config.js'

const ENDPOINT = 'unix:///run/containerd-stargz-grpc/containerd-stargz-grpc.sock'

test('JSON: the key is added or replaced, other keys, their order and the indentation kept; a second edit changes nothing', () => {
  const text = '{\n    "kind": "KubeletConfiguration",\n    "maxPods": 17,\n    "imageServiceEndpoint": "unix:///old.sock"\n}\n'
  const edit = setImageServiceEndpoint(text, ENDPOINT, 'k.json')
  assert.equal(edit.changed, true)
  assert.equal(edit.previous, 'unix:///old.sock')
  assert.equal(edit.text, `{\n    "kind": "KubeletConfiguration",\n    "maxPods": 17,\n    "imageServiceEndpoint": "${ENDPOINT}"\n}\n`)
  assert.deepEqual(setImageServiceEndpoint(edit.text, ENDPOINT, 'k.json'), {changed: false, text: edit.text, previous: ENDPOINT})
})

test('YAML: the top-level line is replaced or appended; comments and nested keys stay', () => {
  const text = '# kubeadm\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nauthentication:\n  imageServiceEndpoint: nested-not-ours\ncgroupDriver: systemd\n'
  const added = setImageServiceEndpoint(text, ENDPOINT, 'config.yaml')
  assert.equal(added.text, `${text}imageServiceEndpoint: "${ENDPOINT}"\n`)
  const replaced = setImageServiceEndpoint(added.text.replace(ENDPOINT, 'unix:///elsewhere.sock'), ENDPOINT, 'config.yaml')
  assert.equal(replaced.previous, 'unix:///elsewhere.sock')
  assert.equal(replaced.text, added.text)
  assert.equal(setImageServiceEndpoint(added.text, ENDPOINT, 'config.yaml').changed, false)
})

test('a file that is not a KubeletConfiguration is refused with its path', () => {
  assert.throws(() => setImageServiceEndpoint('{"kind": ', ENDPOINT, '/etc/k.json'), /\/etc\/k\.json is not valid JSON/)
  assert.throws(() => setImageServiceEndpoint('[1]', ENDPOINT, '/etc/k.json'), /\/etc\/k\.json is not a KubeletConfiguration/)
  assert.throws(() => setImageServiceEndpoint('KUBELET_EXTRA_ARGS=--v=2\n', ENDPOINT, '/etc/default/kubelet'), /\/etc\/default\/kubelet is not a KubeletConfiguration/)
})
