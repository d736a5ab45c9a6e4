import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {describeLeftovers, findLeftovers} from './leftovers.js'

const fixture = fileURLToPath(new URL('./fixtures/failing-suite.js', import.meta.url))

test('a failing test still tears the rig down: no process, mount or temp dir is left', () => {
  const base = mkdtempSync('/tmp/lazyctl-teardown-')
  try {
    // NODE_TEST_CONTEXT would make the child report to this runner instead of running on its own.
    const env: NodeJS.ProcessEnv = {...process.env, TMPDIR: base}
    delete env.NODE_TEST_CONTEXT
    const run = spawnSync(process.execPath, ['--test', fixture], {env, encoding: 'utf8'})
    // The fixture must really have failed, after really starting containerd.
    assert.notEqual(run.status, 0, 'the fixture suite was expected to fail')
    assert.match(run.stdout, /intentional failure/)
    assert.deepEqual(describeLeftovers(findLeftovers(base)), [])
  } finally {
    rmSync(base, {recursive: true, force: true})
  }
})

test('the leftovers check sees a rig dir that was not removed', () => {
  const base = mkdtempSync('/tmp/lazyctl-teardown-')
  try {
    mkdtempSync(join(base, 'lazyctl-rig-stray-'))
    const found = findLeftovers(base)
    assert.equal(found.dirs.length, 1)
  } finally {
    rmSync(base, {recursive: true, force: true})
  }
})
