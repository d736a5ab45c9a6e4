// Failures a user meets most: each is one `lazyctl:` line (plus an optional hint) with its own
// exit status, and never shows a secret.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {runCli, type CliResult} from '../rig/cli.js'
import {freePort} from '../rig/ports.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {sha256Digest} from '../../src/oci/digest.js'
import {ERROR_CODES} from '../../src/cli/errors.js'

function assertOneLineError(res: CliResult, code: keyof typeof ERROR_CODES, pattern: RegExp): void {
  assert.equal(res.status, ERROR_CODES[code], res.stderr)
  const lines = res.stderr.trimEnd().split('\n')
  assert.ok(lines.length <= 2, `at most an error line and a hint line:\n${res.stderr}`)
  assert.match(lines[0]!, /^lazyctl: /)
  assert.match(lines[0]!, pattern)
  if (lines[1]) assert.match(lines[1], /^hint: /)
  assert.equal(res.stdout, '')
}

describe('error reporting', () => {
  let registry: RegistryRig
  let work: string
  const secret = 'hunter2-secret-password'
  let env: NodeJS.ProcessEnv

  before(async () => {
    registry = await startRegistry({auth: 'none'})
    work = rigTempDir('errors')
    // Credentials are configured for every host used below: none may ever be printed.
    const docker = join(work, 'docker')
    mkdirSync(docker)
    const auth = Buffer.from(`someone:${secret}`).toString('base64')
    writeFileSync(join(docker, 'config.json'), JSON.stringify({auths: {[registry.host]: {auth}}}), {mode: 0o600})
    env = {DOCKER_CONFIG: docker, HOME: work}
  })
  after(async () => {
    await registry?.stop()
    if (work) removeDir(work)
  })

  test('each failure kind is one line with a distinct exit status and no secret', async () => {
    const results: Array<[keyof typeof ERROR_CODES, CliResult]> = []

    const missing = await runCli(['convert', '-q', `docker://${registry.host}/nothing/here:v1`, `oci:${join(work, 'o1')}`], {env})
    assertOneLineError(missing, 'MANIFEST_UNKNOWN', /nothing\/here:v1: not found/)
    results.push(['MANIFEST_UNKNOWN', missing])

    const badRef = await runCli(['push', 'oci:/nonexistent', 'docker://Registry.Example/Upper/Case:v1'], {env})
    assertOneLineError(badRef, 'INVALID_REFERENCE', /invalid image reference "Registry\.Example\/Upper\/Case:v1": repository name must be lowercase/)
    results.push(['INVALID_REFERENCE', badRef])

    const port = await freePort()
    const unreachable = await runCli(['convert', `docker://127.0.0.1:${port}/demo:v1`, `oci:${join(work, 'o2')}`], {env})
    assertOneLineError(unreachable, 'REGISTRY_UNREACHABLE', new RegExp(`cannot reach registry 127\\.0\\.0\\.1:${port}: ECONNREFUSED`))
    results.push(['REGISTRY_UNREACHABLE', unreachable])

    // A layout whose only image is a Docker schema 1 manifest: a type lazyctl does not read.
    const layout = join(work, 'schema1')
    const schema1 = Buffer.from(JSON.stringify({schemaVersion: 1, name: 'x', tag: 'v1', fsLayers: [], history: []}))
    const digest = sha256Digest(schema1)
    mkdirSync(join(layout, 'blobs', 'sha256'), {recursive: true})
    writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
    writeFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), schema1)
    const mediaType = 'application/vnd.docker.distribution.manifest.v1+prettyjws'
    writeFileSync(join(layout, 'index.json'), JSON.stringify({schemaVersion: 2, manifests: [{mediaType, digest, size: schema1.length}]}))
    const unknownType = await runCli(['push', `oci:${layout}`, `docker://${registry.host}/schema1:v1`], {env})
    assertOneLineError(unknownType, 'UNSUPPORTED_MEDIA_TYPE', /unsupported manifest media type "application\/vnd\.docker\.distribution\.manifest\.v1\+prettyjws"/)
    results.push(['UNSUPPORTED_MEDIA_TYPE', unknownType])

    const statuses = results.map(([, r]) => r.status)
    assert.equal(new Set(statuses).size, statuses.length, `distinct exit statuses: ${statuses.join(', ')}`)
    for (const [, r] of results) {
      const all = r.stdout + r.stderr
      assert.ok(!all.includes(secret) && !all.includes(Buffer.from(`someone:${secret}`).toString('base64')), 'no secret in any output')
    }
  })
})
