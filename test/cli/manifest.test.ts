import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import {join, relative} from 'node:path'
import {PACKAGE_ROOT} from '../../src/paths.js'
import {runCli} from '../rig/cli.js'

interface ManifestCommand {
  summary?: string
  flags: Record<string, unknown>
  args: Record<string, unknown>
  aliases: string[]
}

const manifest = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, ManifestCommand>}
const commandsDir = join(PACKAGE_ROOT, 'dist', 'commands')

function commandFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return commandFiles(path)
    return name.endsWith('.js') ? [path] : []
  })
}

test('the committed oclif.manifest.json lists exactly the commands that exist, with their flags and args', async () => {
  const ids = commandFiles(commandsDir).map((file) => relative(commandsDir, file).replace(/\.js$/, '').split('/').join(':'))
  assert.deepEqual(Object.keys(manifest.commands).sort(), ids.sort(), 'stale manifest: run `npm run build` and commit oclif.manifest.json')
  for (const id of ids) {
    const mod = (await import(join(commandsDir, `${id.split(':').join('/')}.js`))) as {default: {summary?: string; flags?: object; args?: object}}
    const entry = manifest.commands[id]!
    assert.equal(entry.summary, mod.default.summary, `${id}: summary differs from the manifest`)
    assert.deepEqual(Object.keys(entry.flags).sort(), Object.keys(mod.default.flags ?? {}).sort(), `${id}: flags differ from the manifest`)
    assert.deepEqual(Object.keys(entry.args).sort(), Object.keys(mod.default.args ?? {}).sort(), `${id}: args differ from the manifest`)
  }
})

test('--help lists every command with a one-line summary', async () => {
  const res = await runCli(['--help'])
  assert.equal(res.status, 0, res.stderr)
  for (const [id, cmd] of Object.entries(manifest.commands)) {
    assert.ok(cmd.summary && !cmd.summary.includes('\n'), `${id} needs a one-line summary`)
    const topic = id.split(':')[0]!
    assert.match(res.stdout, new RegExp(`^\\s+${topic}\\b`, 'm'), `--help should list ${topic}`)
  }
})

test('an unknown command fails with a usage error', async () => {
  const res = await runCli(['no-such-command'])
  assert.notEqual(res.status, 0)
  assert.match(res.stderr, /no-such-command/)
})

test('bin/run.js runs the bundle, and the bundle is built from the current tsc output', () => {
  const bundleDir = join(PACKAGE_ROOT, 'dist', 'bundle')
  for (const cmd of Object.values(manifest.commands) as Array<ManifestCommand & {relativePath?: string[]}>) {
    assert.deepEqual(cmd.relativePath?.slice(0, 3), ['dist', 'bundle', 'commands'], 'commands load from the bundle')
    assert.ok(statSync(join(PACKAGE_ROOT, ...cmd.relativePath!)).isFile())
  }
  assert.match(readFileSync(join(PACKAGE_ROOT, 'bin', 'run.js'), 'utf8'), /dist\/bundle\/src\/cli\/main\.js/)
  // A bundle older than tsc's output runs old code in every test that starts the CLI.
  const newest = Math.max(...[...commandFiles(commandsDir), ...commandFiles(join(PACKAGE_ROOT, 'dist', 'src'))].map((f) => statSync(f).mtimeMs))
  assert.ok(statSync(join(bundleDir, 'src', 'cli', 'main.js')).mtimeMs >= newest, 'dist/bundle is older than tsc output: run `npm run build`')
})
