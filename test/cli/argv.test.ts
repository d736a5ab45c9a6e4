// The commands that start without oclif (src/cli/lean.ts) parse their line with the manifest's flag
// definitions (src/cli/argv.ts). For every line that parser takes, the flags must be exactly what
// oclif's own parser gives for the command's real flag definitions; every line it does not take goes
// to oclif, so it must refuse anything it cannot reproduce.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {parse} from '@oclif/core/parser'
import {parseWithManifest} from '../../src/cli/argv.js'
import {imageArgIndex} from '../../src/cli/image-arg.js'
import {cliManifest} from '../../src/cli/manifest.js'
import Run from '../../commands/run.js'
import SnapshotterServe from '../../commands/snapshotter/serve.js'

const manifest = cliManifest()
const env = {} as NodeJS.ProcessEnv

async function oclifRun(argv: string[], withEnv: NodeJS.ProcessEnv = env): Promise<Record<string, unknown>> {
  const saved = {...process.env}
  for (const key of Object.keys(process.env)) delete process.env[key]
  Object.assign(process.env, withEnv)
  try {
    const split = imageArgIndex(argv, Run.flags)
    const out = await parse(argv.slice(0, split + 1), {flags: Run.flags, args: Run.args, strict: true})
    return {...out.flags, image: out.args.image}
  } finally {
    for (const key of Object.keys(process.env)) delete process.env[key]
    Object.assign(process.env, saved)
  }
}

function leanRun(argv: string[], withEnv: NodeJS.ProcessEnv = env): Record<string, unknown> | undefined {
  const defs = manifest.commands['run']!.flags
  const split = imageArgIndex(argv, defs)
  if (split < 0) return undefined // no IMAGE: lean.ts leaves the line to oclif
  const parsed = parseWithManifest(argv.slice(0, split + 1), defs, {stopAtPositional: true, env: withEnv})
  if (!parsed) return undefined
  // oclif leaves flags without a value or default out; the lean parser gives them as undefined.
  const flags = Object.fromEntries(Object.entries(parsed.flags).filter(([, v]) => v !== undefined))
  return {...flags, image: parsed.positionals[0]}
}

test('run lines the lean parser takes give exactly the flags oclif gives', async () => {
  const lines: Array<{argv: string[]; env?: NodeJS.ProcessEnv}> = [
    {argv: ['img']},
    {argv: ['--rm', 'img', 'true']},
    {argv: ['-it', '--rm', '-e', 'A=1', '-e', 'B=2', '--env=C=3', '--name', 'web', 'img', 'sh', '-c', 'echo $A']},
    {argv: ['-d', '-v', '/a:/b:ro', '--volume=/c:/d', '-w', '/tmp', '-u', '1000:1000', 'img']},
    {argv: ['--net', 'none', '--read-only', '--security-opt', 'seccomp=unconfined', '--pull', 'always', 'img']},
    {argv: ['--network=host', '--platform', 'linux/amd64', '--entrypoint', '/bin/sh', '--env-file', '/e', 'img']},
    {argv: ['-a', '/run/x.sock', '-n', 'k8s.io', '--snapshotter', 'overlayfs', '--data-root', '/d', 'img']},
    {argv: ['--rm', 'img'], env: {CONTAINERD_ADDRESS: '/run/y.sock', CONTAINERD_NAMESPACE: 'ns', CONTAINERD_SNAPSHOTTER: 'native', LAZYCTL_DATA_ROOT: '/dr'}},
    {argv: ['-a', '/run/flag.sock', 'img'], env: {CONTAINERD_ADDRESS: '/run/env.sock'}},
    {argv: ['-ti', 'img', '--rm', '-x']},
    {argv: ['img'], env: {CONTAINERD_SNAPSHOTTER: ''}}, // an empty variable counts as unset
  ]
  for (const {argv, env: lineEnv} of lines) {
    const lean = leanRun(argv, lineEnv)
    assert.ok(lean, `the lean parser takes ${argv.join(' ')}`)
    assert.deepEqual(lean, await oclifRun(argv, lineEnv), argv.join(' '))
  }
})

test('lines the lean parser cannot reproduce go to oclif', () => {
  const refused = [
    ['--help', 'img'],
    ['-h'],
    ['--rmm', 'img'], // a typo: oclif says so
    ['--pull', 'sometimes', 'img'], // not one of the options
    ['-eA=1', 'img'], // a value glued to a short flag
    ['--rm=true', 'img'],
    ['--no-rm', 'img'],
    ['-x', 'img'],
  ]
  for (const argv of refused) assert.equal(leanRun(argv), undefined, argv.join(' '))
  const serve = manifest.commands['snapshotter:serve']!.flags
  assert.equal(parseWithManifest(['--log-level', 'loud'], serve), undefined)
  assert.equal(parseWithManifest(['--socket'], serve), undefined, 'a flag missing its value')
})

test('snapshotter serve lines give the flags oclif gives', async () => {
  const defs = manifest.commands['snapshotter:serve']!.flags
  const argv = ['--socket', '/run/s.sock', '--root=/var/lib/x', '--log-level', 'debug', '--ready-fd', '3', '--metrics-address', '127.0.0.1:0']
  const lean = parseWithManifest(argv, defs, {env})
  assert.ok(lean)
  const out = await parse(argv, {flags: SnapshotterServe.flags, strict: true})
  const leanFlags = Object.fromEntries(Object.entries(lean.flags).filter(([, v]) => v !== undefined))
  assert.deepEqual({...leanFlags, 'ready-fd': Number(leanFlags['ready-fd'])}, out.flags)
})
