// --platform is enforced as nerdctl enforces it, and index entries without a platform are matched
// by their config's os/architecture, as containerd matches them: `pull`, `run` and `convert`
// refuse a single-platform image of another platform (before anything is written), and pick the
// right image of an index whose entries name no platform.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {ERROR_CODES} from '../../src/cli/errors.js'
import {runCli} from '../rig/cli.js'
import {startContainerd, type ContainerdRig} from '../rig/containerd.js'
import {busyboxImage, pushImage, writeOciArchive, writeOciIndex} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

let dir: string
let registry: RegistryRig
let containerd: ContainerdRig
let amd64Only: string

before(async () => {
  dir = rigTempDir('platform')
  registry = await startRegistry()
  containerd = await startContainerd()
  const archive = join(dir, 'amd64.tar')
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'arch', content: 'amd64\n'}]}]}))
  await pushImage(archive, 'single:amd64', registry)
  amd64Only = `${registry.host}/single:amd64`
})
after(async () => {
  await containerd?.stop()
  await registry?.stop()
  if (dir) removeDir(dir)
})

const cli = (args: string[]) => runCli([args[0]!, '--address', containerd.address, '--namespace', containerd.namespace, ...args.slice(1)], {env: {LAZYCTL_DATA_ROOT: join(dir, 'data')}})

test('pull and run with --platform of another platform than a single-platform image\'s are refused, and leave nothing', async () => {
  for (const platform of ['linux/arm64', 'linux/banana']) {
    const pulled = await cli(['pull', '--snapshotter', 'overlayfs', '--platform', platform, amd64Only])
    assert.equal(pulled.status, ERROR_CODES.NOT_FOUND, pulled.stderr)
    assert.match(pulled.stderr, new RegExp(`^lazyctl: .*single:amd64: no match for platform ${platform} in manifest \\(the image is linux/amd64\\)$`, 'm'))
  }
  const ran = await cli(['run', '--rm', '--snapshotter', 'overlayfs', '--platform', 'linux/arm64', amd64Only, 'cat', '/arch'])
  assert.equal(ran.status, ERROR_CODES.NOT_FOUND, ran.stderr)
  assert.equal(ran.stdout, '')
  assert.doesNotMatch((await cli(['images'])).stdout, /single:amd64/)
  assert.equal((await cli(['ps', '-a', '-q'])).stdout.trim(), '')
  // Its own platform (and none) work.
  const ok = await cli(['run', '--rm', '--snapshotter', 'overlayfs', '--platform', 'linux/amd64', amd64Only, 'cat', '/arch'])
  assert.equal(ok.status, 0, ok.stderr)
  assert.equal(ok.stdout, 'amd64\n')
})

test('convert --platform of another platform than a single-platform image\'s fails before writing anything', async () => {
  const out = join(dir, 'converted')
  const res = await runCli(['convert', '--quiet', '--platform', 'linux/arm64', `docker://${amd64Only}`, `oci:${out}:x`])
  assert.equal(res.status, ERROR_CODES.MANIFEST_UNKNOWN, res.stderr)
  assert.match(res.stderr, /no image for platform linux\/arm64 \(the image is linux\/amd64\)/)
  assert.equal(existsSync(out), false, 'no destination layout was created')
})

/** An arm64 and an amd64 image (each with /arch naming it) in an index whose entries name no platform. */
async function writePlatformlessIndex(layout: string): Promise<void> {
  await writeOciIndex(layout, {
    omitPlatforms: true,
    manifests: [
      {...busyboxImage({layers: [{files: [{path: 'arch', content: 'arm64 image\n'}]}]}), platform: {os: 'linux', architecture: 'arm64'}},
      {...busyboxImage({layers: [{files: [{path: 'arch', content: 'amd64 image\n'}]}]}), platform: {os: 'linux', architecture: 'amd64'}},
    ],
    tag: 'v1',
  })
}

test('an index whose entries carry no platform: pull and run pick the image by its config\'s os/architecture', async () => {
  const layout = join(dir, 'noplatform')
  await writePlatformlessIndex(layout)
  await pushImage(`oci:${layout}:v1`, 'noplatform:v1', registry)
  const image = `${registry.host}/noplatform:v1`
  const ran = await cli(['run', '--rm', '--snapshotter', 'overlayfs', image, 'cat', '/arch'])
  assert.equal(ran.status, 0, ran.stderr)
  assert.equal(ran.stdout, 'amd64 image\n')
  const arm = await cli(['pull', '--snapshotter', 'overlayfs', '--platform', 'linux/arm64', image])
  assert.equal(arm.status, 0, arm.stderr)
  const none = await cli(['pull', '--snapshotter', 'overlayfs', '--platform', 'linux/s390x', image])
  assert.equal(none.status, ERROR_CODES.NOT_FOUND)
  assert.match(none.stderr, /has no manifest for linux\/s390x \(it has: linux\/arm64, linux\/amd64\)/)
})

test('convert --platform of an index whose entries carry no platform keeps the image whose config matches', async () => {
  const layout = join(dir, 'noplatform-convert')
  await writePlatformlessIndex(layout)
  const out = join(dir, 'converted-arm64')
  const res = await runCli(['convert', '--quiet', '--platform', 'linux/arm64', `oci:${layout}:v1`, `oci:${out}:esgz`])
  assert.equal(res.status, 0, res.stderr)
  const inspect = (args: string[]) => JSON.parse(execFileSync('skopeo', ['inspect', ...args, `oci:${out}:esgz`]).toString()) as {Architecture: string; Layers: string[]}
  assert.equal(inspect(['--override-arch', 'arm64']).Architecture, 'arm64')
  const index = JSON.parse(readFileSync(join(out, 'blobs', ...inspectIndexDigest(out).split(':')), 'utf8')) as {manifests: unknown[]}
  assert.equal(index.manifests.length, 1, 'only the arm64 image was kept')
  const none = await runCli(['convert', '--quiet', '--platform', 'linux/s390x', `oci:${layout}:v1`, `oci:${join(dir, 'converted-s390x')}:x`])
  assert.equal(none.status, ERROR_CODES.MANIFEST_UNKNOWN, none.stderr)
  assert.match(none.stderr, /no image for platform linux\/s390x \(has linux\/arm64, linux\/amd64\)/)
})

/** The digest of the index a layout's index.json names (the converted image's root). */
function inspectIndexDigest(layout: string): string {
  return (JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>}).manifests[0]!.digest
}

