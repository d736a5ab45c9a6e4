// The metrics endpoint binds loopback unless told otherwise: a bare `:PORT` must not expose the
// node's image names and registries to every address of the node.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {Writable} from 'node:stream'
import {startMetricsServer} from '../../src/snapshotter/metrics.js'
import {createJsonLogger} from '../../src/snapshotter/log.js'
import {RefusingLayerMounter} from '../../src/snapshotter/remote-layer-mounter.js'

const quiet = createJsonLogger({level: 'error', stream: new Writable({write: (_chunk, _encoding, done) => done()})})

test('a metrics address without a host binds 127.0.0.1, and the endpoint answers there', async () => {
  const server = await startMetricsServer(':0', {mounter: new RefusingLayerMounter('test'), fallbacks: () => ({range_unsupported: 1})}, quiet)
  try {
    assert.match(server.address, /^127\.0\.0\.1:\d+$/)
    const res = await fetch(`http://${server.address}/metrics`)
    assert.equal(res.status, 200)
    assert.match(await res.text(), /range_unsupported/)
  } finally {
    await server.close()
  }
})
