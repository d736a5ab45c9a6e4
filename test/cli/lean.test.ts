// `--version`, `run` and `snapshotter serve` start without loading oclif (src/cli/lean.ts); other lines
// still go through it. Which files a start loads is read with a module loader hook, and a loaded
// file is oclif's if it (a bundle chunk) carries @oclif/core's code.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {ERROR_CODES} from '../../src/cli/errors.js'
import {CLI_ENTRY} from '../../src/paths.js'

const hook = `
import {registerHooks} from 'node:module'
import {appendFileSync} from 'node:fs'
registerHooks({load(url, context, next) { appendFileSync(process.env.LOADED_LOG, url + '\\n'); return next(url, context) }})
`

function start(args: string[], env: NodeJS.ProcessEnv = {}): {status: number | null; stdout: string; stderr: string; loadsOclif: boolean} {
  const dir = mkdtempSync(join(tmpdir(), 'lazyctl-lean-'))
  try {
    const log = join(dir, 'loaded')
    const run = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, CLI_ENTRY, ...args], {
      encoding: 'utf8',
      env: {...process.env, ...env, LOADED_LOG: log},
    })
    const loaded = readFileSync(log, 'utf8').split('\n').filter((url) => url.startsWith('file:'))
    const loadsOclif = loaded.some((url) => /node_modules\/@oclif\/core/.test(url) || readFileSync(fileURLToPath(url), 'utf8').includes('node_modules/@oclif/core/lib/'))
    return {status: run.status, stdout: run.stdout, stderr: run.stderr, loadsOclif}
  } finally {
    rmSync(dir, {recursive: true, force: true})
  }
}

test('--version prints oclif\'s format without loading oclif', () => {
  const r = start(['--version'])
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, `lazyctl/0.1.0 ${process.platform}-${process.arch} node-${process.version}\n`)
  assert.equal(r.loadsOclif, false)
})

test('the snapshotter daemon starts without oclif, and its failures are rendered at the edge', () => {
  const missing = join(tmpdir(), `lazyctl-no-such-config-${process.pid}.toml`)
  const r = start(['snapshotter', 'serve', '--config', missing, '--socket', join(tmpdir(), `lazyctl-lean-${process.pid}.sock`)])
  assert.equal(r.loadsOclif, false)
  assert.notEqual(r.status, 0)
  assert.match(r.stderr, new RegExp(`^lazyctl: .*${missing.replace(/[.]/g, '\\.')}`, 'm'))
})

test('run starts without oclif; a line the lean parser does not take gets oclif\'s answer', () => {
  // An unreachable containerd: the run fails at its first call, after the whole run path has loaded.
  const address = join(tmpdir(), `lazyctl-no-containerd-${process.pid}.sock`)
  const lean = start(['run', '--rm', '-a', address, '--snapshotter', 'overlayfs', 'busybox', 'true'])
  assert.equal(lean.loadsOclif, false)
  assert.equal(lean.status, ERROR_CODES.CONTAINERD_UNREACHABLE, lean.stderr)
  assert.match(lean.stderr, /^lazyctl: cannot reach containerd at /m)

  const typo = start(['run', '--rmm', 'busybox'])
  assert.equal(typo.loadsOclif, true)
  assert.equal(typo.status, ERROR_CODES.USAGE)
  assert.match(typo.stderr, /^lazyctl: .*--rmm/m)
})
