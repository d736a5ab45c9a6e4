// What `node setup` ships: files keep only their executable bit (0755/0644), never the setup
// machine's group- or world-writable modes, since root runs them on the node.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {buildBundle} from '../../src/node/bundle.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

test('bundle files are 0755 or 0644 whatever their local modes', async () => {
  const app = rigTempDir('bundle-modes')
  try {
    mkdirSync(join(app, 'bin'))
    mkdirSync(join(app, 'dist', 'src'), {recursive: true})
    writeFileSync(join(app, 'package.json'), JSON.stringify({name: 'app', version: '0.0.0', dependencies: {}}))
    writeFileSync(join(app, 'bin', 'run.js'), '#!/usr/bin/env node\n')
    writeFileSync(join(app, 'dist', 'src', 'main.js'), 'export {}\n')
    chmodSync(join(app, 'package.json'), 0o666)
    chmodSync(join(app, 'bin', 'run.js'), 0o777)
    chmodSync(join(app, 'dist', 'src', 'main.js'), 0o660)
    const bundle = await buildBundle({installDir: '/opt/lazyctl', appRoot: app, nodeOnNode: '/usr/bin/node'})
    const modes = Object.fromEntries(bundle.files.filter((f) => !f.linkTarget).map((f) => [f.name, f.mode]))
    assert.equal(modes['app/package.json'], 0o644)
    assert.equal(modes['app/bin/run.js'], 0o755)
    assert.equal(modes['app/dist/src/main.js'], 0o644)
  } finally {
    removeDir(app)
  }
})
