// `lazyctl convert` and `lazyctl push` end to end against a real docker-registry 2.8, checked with
// skopeo (an independent client) and lazyctl's eStargz verifier.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {blobPath, busyboxImage, inspectRaw, pushImage, skopeoRegistryFlags, writeOciArchive, writeOciLayout, type WrittenImage} from '../rig/images.js'
import {runCli} from '../rig/cli.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {openFileSource} from '../../src/estargz/random-access.js'
import {verifyEstargz} from '../../src/estargz/verify.js'
import {openEstargz} from '../../src/estargz/reader.js'
import {imageFiles} from './layer-files.js'
import {CLI_ENTRY} from '../../src/paths.js'

const TOC = 'containerd.io/snapshot/stargz/toc.digest'
const USIZE = 'io.containers.estargz.uncompressed-size'

interface Manifest {
  mediaType: string
  config: {digest: string}
  layers: Array<{mediaType: string; digest: string; size: number; annotations?: Record<string, string>}>
}

function skopeoCopyToLayout(registry: RegistryRig, ref: string, dir: string, extra: string[] = []): void {
  execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', ...extra, ...skopeoRegistryFlags(registry, 'src'), `docker://${registry.host}/${ref}`, `oci:${dir}:x`], {stdio: ['ignore', 'pipe', 'pipe']})
}

function layoutManifest(dir: string): Manifest {
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {manifests: Array<{digest: string}>}
  return JSON.parse(readFileSync(blobPath(dir, index.manifests[0]!.digest), 'utf8')) as Manifest
}

describe('convert and push against a real registry', () => {
  let registry: RegistryRig
  let work: string
  let archive: string
  let source: WrittenImage

  before(async () => {
    registry = await startRegistry({auth: 'none'})
    work = rigTempDir('convert')
    archive = join(work, 'source.tar')
    source = (await writeOciArchive(
      archive,
      busyboxImage({
        layers: [
          {
            files: [
              {path: 'data/big.bin', random: {size: 6 << 20, seed: 'big'}},
              {path: 'data/small.txt', content: 'hello eStargz\n', mode: 0o640, uid: 1000, gid: 1000},
              {path: 'data/link', symlink: 'small.txt'},
              {path: 'data/empty', content: ''},
            ],
          },
        ],
      }),
    )) as WrittenImage
  })
  after(async () => {
    await registry?.stop()
    if (work) removeDir(work)
  })

  test('converts an OCI archive into an eStargz image in the registry whose files equal the source', async () => {
    const res = await runCli(['convert', '--estargz-chunk-size', String(1 << 20), `oci-archive:${archive}`, `docker://${registry.host}/demo:esgz`])
    assert.equal(res.status, 0, res.stderr)
    const raw = JSON.parse(await inspectRaw('demo:esgz', registry)) as Manifest
    assert.equal(raw.mediaType, 'application/vnd.oci.image.manifest.v1+json')
    assert.equal(raw.layers.length, source.layers.length)
    for (const l of raw.layers) {
      assert.match(l.annotations?.[TOC] ?? '', /^sha256:[0-9a-f]{64}$/)
      assert.match(l.annotations?.[USIZE] ?? '', /^\d+$/)
      assert.equal(l.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip')
    }
    assert.ok(res.stdout.includes(`docker://${registry.host}/demo:esgz@sha256:`))

    // An independent client copies it back; every layer passes the verifier and matches its annotations.
    const back = join(work, 'back')
    skopeoCopyToLayout(registry, 'demo:esgz', back)
    const manifest = layoutManifest(back)
    const config = JSON.parse(readFileSync(blobPath(back, manifest.config.digest), 'utf8')) as {rootfs: {diff_ids: string[]}}
    for (const [i, l] of manifest.layers.entries()) {
      const src = await openFileSource(blobPath(back, l.digest))
      try {
        const v = await verifyEstargz(src, {expectedTocDigest: l.annotations![TOC]!})
        assert.equal(v.uncompressedSize, Number(l.annotations![USIZE]))
        assert.equal(v.diffID, config.rootfs.diff_ids[i], 'config diff_ids are the new uncompressed layers')
      } finally {
        await src.close()
      }
    }
    const sourceDir = join(work, 'source-layout')
    execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', `oci-archive:${archive}`, `oci:${sourceDir}:x`], {stdio: 'pipe'})
    const before = await imageFiles(layoutManifest(sourceDir).layers.map((l) => blobPath(sourceDir, l.digest)))
    const afterConv = await imageFiles(manifest.layers.map((l) => blobPath(back, l.digest)))
    assert.ok(before.size > 100, 'the busybox root has many entries')
    assert.deepEqual(afterConv, before)
  })

  test('reuses layers that are already eStargz instead of converting them again', async () => {
    const res = await runCli(['convert', '--format', 'json', `docker://${registry.host}/demo:esgz`, `docker://${registry.host}/demo:esgz-again`])
    assert.equal(res.status, 0, res.stderr)
    const out = JSON.parse(res.stdout) as {digest: string; images: Array<{layers: Array<{action: string; transfer: string}>}>}
    assert.deepEqual(out.images[0]!.layers.map((l) => l.action), ['reused-estargz', 'reused-estargz'])
    assert.deepEqual(out.images[0]!.layers.map((l) => l.transfer), ['exists', 'exists'])
    const first = JSON.parse(await inspectRaw('demo:esgz', registry)) as Manifest
    const again = JSON.parse(await inspectRaw('demo:esgz-again', registry)) as Manifest
    assert.deepEqual(again.layers, first.layers)
  })

  test('converts a multi-platform index registry to registry, keeping its structure, or one platform with --platform', async () => {
    const multi = join(work, 'multi')
    const index = await (await import('../rig/images.js')).writeOciIndex(multi, {
      tag: 'v1',
      manifests: [
        {platform: {os: 'linux', architecture: 'amd64'}, layers: [{files: [{path: 'arch', content: 'amd64\n'}]}]},
        {platform: {os: 'linux', architecture: 'arm64'}, layers: [{files: [{path: 'arch', content: 'arm64\n'}]}]},
      ],
    })
    await pushImage(multi, 'multi:v1', registry, {sourceTag: 'v1'})
    const all = await runCli(['convert', '-q', `docker://${registry.host}/multi:v1`, `docker://${registry.host}/multi:esgz`])
    assert.equal(all.status, 0, all.stderr)
    const idx = JSON.parse(await inspectRaw('multi:esgz', registry)) as {mediaType: string; manifests: Array<{digest: string; platform: {architecture: string}}>}
    assert.equal(idx.mediaType, 'application/vnd.oci.image.index.v1+json')
    assert.deepEqual(idx.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64'])
    assert.equal(all.stdout.trim(), execFileSync('sha256sum', {input: await inspectRaw('multi:esgz', registry)}).toString().split(' ')[0]!.replace(/^/, 'sha256:'))
    for (const m of idx.manifests) {
      const man = JSON.parse(await inspectRaw(`multi@${m.digest}`, registry)) as Manifest
      assert.ok(man.layers.every((l) => l.annotations?.[TOC]), 'every platform converted')
    }
    assert.notDeepEqual(idx.manifests.map((m) => m.digest), index.index.manifests.map((m) => m.digest))

    const one = await runCli(['convert', '-q', '--platform', 'linux/amd64', `docker://${registry.host}/multi:v1`, `docker://${registry.host}/multi:amd64`])
    assert.equal(one.status, 0, one.stderr)
    const only = JSON.parse(await inspectRaw('multi:amd64', registry)) as {manifests: Array<{platform: {architecture: string}}>}
    assert.deepEqual(only.manifests.map((m) => m.platform.architecture), ['amd64'])

    const none = await runCli(['convert', '--platform', 'linux/s390x', `docker://${registry.host}/multi:v1`, `docker://${registry.host}/multi:none`])
    assert.equal(none.status, 25, none.stderr)
    assert.match(none.stderr, /no image for platform linux\/s390x/)
  })

  test('pushing an image to a second repository of the same registry mounts every blob (no blob bytes uploaded)', async () => {
    const first = await runCli(['push', '-q', `oci-archive:${archive}`, `docker://${registry.host}/mount/src:v1`])
    assert.equal(first.status, 0, first.stderr)
    const mark = (await registry.requests()).length
    const second = await runCli(['push', `docker://${registry.host}/mount/src:v1`, `docker://${registry.host}/mount/dst:v1`])
    assert.equal(second.status, 0, second.stderr)
    const reqs = (await registry.requests()).slice(mark).filter((r) => r.repository === 'mount/dst')
    const uploads = reqs.filter((r) => r.kind === 'upload' && (r.method === 'PUT' || r.method === 'PATCH'))
    assert.deepEqual(uploads, [], 'no upload session carried bytes')
    const mounts = reqs.filter((r) => r.kind === 'upload' && r.method === 'POST' && r.uri.includes('mount=') && r.status === 201)
    assert.equal(mounts.length, source.layers.length + 1, 'every layer and the config mounted')
    // The blobs served from the source repository were manifests only: no layer was downloaded either.
    const servedBlobs = (await registry.requests()).slice(mark).filter((r) => r.kind === 'blob' && r.method === 'GET')
    assert.deepEqual(servedBlobs, [])
    assert.equal(first.stdout.trim(), second.stdout.trim().split('\n').at(-1))
  })

  test('a blob whose bytes do not match its digest is refused and nothing is left as if complete', async () => {
    const layout = join(work, 'corrupt')
    const img = await writeOciLayout(layout, {tag: 'v1', layers: [{files: [{path: 'f', random: {size: 200_000, seed: 'c'}}]}]})
    const file = blobPath(layout, img.layers[0]!.digest)
    const bytes = readFileSync(file)
    bytes[bytes.length >> 1] ^= 0xff
    writeFileSync(file, bytes)

    const push = await runCli(['push', `oci:${layout}:v1`, `docker://${registry.host}/corrupt:v1`])
    assert.equal(push.status, 24, push.stderr)
    assert.match(push.stderr, /^lazyctl: .*does not match/m)
    await assert.rejects(inspectRaw('corrupt:v1', registry), /manifest unknown/i, 'no manifest was pushed')

    const out = join(work, 'converted-layout')
    const conv = await runCli(['convert', `oci:${layout}:v1`, `oci:${out}:v1`])
    assert.equal(conv.status, 24, conv.stderr)
    assert.equal(existsSync(out), false, 'the destination layout does not exist')
    assert.deepEqual(readdirSync(work).filter((n) => n.includes('converted-layout')), [], 'no staging dir left behind')

    const archiveOut = join(work, 'converted.tar')
    const conv2 = await runCli(['convert', `oci:${layout}:v1`, `oci-archive:${archiveOut}`])
    assert.equal(conv2.status, 24, conv2.stderr)
    assert.deepEqual(readdirSync(work).filter((n) => n.includes('converted.tar')), [])
  })

  test('writes OCI layouts and archives that skopeo reads back', async () => {
    const out = join(work, 'out-layout')
    const res = await runCli(['convert', '-q', `oci-archive:${archive}`, `oci:${out}:esgz`])
    assert.equal(res.status, 0, res.stderr)
    const digest = res.stdout.trim()
    const inspected = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${out}:esgz`]).toString()) as {Digest: string}
    assert.equal(inspected.Digest, digest)
    const tarOut = join(work, 'out.tar')
    const res2 = await runCli(['push', `oci:${out}:esgz`, `docker://${registry.host}/from-layout:v1`])
    assert.equal(res2.status, 0, res2.stderr)
    const res3 = await runCli(['convert', '--no-estargz', '--oci', '-q', `docker://${registry.host}/from-layout:v1`, `oci-archive:${tarOut}:t`])
    assert.equal(res3.status, 0, res3.stderr)
    const inspected2 = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${tarOut}:t`]).toString()) as {Digest: string}
    assert.equal(inspected2.Digest, digest, 'already-OCI image copied to an archive keeps its digest')
  })

  test('an archive sink keeps the other tags of an existing OCI archive and never replaces a file of another kind', async () => {
    const notes = join(work, 'notes.txt')
    writeFileSync(notes, 'my notes\n')
    const refused = await runCli(['convert', '-q', `oci-archive:${archive}`, `oci-archive:${notes}:x`])
    assert.equal(refused.status, 2, refused.stderr)
    assert.match(refused.stderr, /^lazyctl: .*notes\.txt exists and is not an OCI archive; refusing to replace it$/m)
    assert.equal(readFileSync(notes, 'utf8'), 'my notes\n', 'the file is untouched')
    assert.deepEqual(readdirSync(work).filter((f) => f.startsWith('.notes.txt')), [], 'no staging left behind')
    const dirAsArchive = join(work, 'a-dir')
    mkdirSync(dirAsArchive)
    assert.equal((await runCli(['convert', '-q', `oci-archive:${archive}`, `oci-archive:${dirAsArchive}:x`])).status, 2)

    const multi = join(work, 'multi.tar')
    const a = await runCli(['convert', '-q', '--no-estargz', '--oci', `oci-archive:${archive}`, `oci-archive:${multi}:a`])
    assert.equal(a.status, 0, a.stderr)
    const b = await runCli(['convert', '-q', `oci-archive:${archive}`, `oci-archive:${multi}:b`])
    assert.equal(b.status, 0, b.stderr)
    const digestOf = (tag: string) => (JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${multi}:${tag}`]).toString()) as {Digest: string}).Digest
    assert.equal(digestOf('a'), a.stdout.trim(), 'tag a kept, with its blobs')
    assert.equal(digestOf('b'), b.stdout.trim())
    assert.notEqual(a.stdout.trim(), b.stdout.trim())
    // Writing a tag again replaces that tag only.
    const again = await runCli(['convert', '-q', '--no-estargz', '--oci', `oci-archive:${archive}`, `oci-archive:${multi}:b`])
    assert.equal(again.status, 0, again.stderr)
    assert.equal(digestOf('b'), a.stdout.trim())
    assert.equal(digestOf('a'), a.stdout.trim())
  })

  test('puts the files of --estargz-record-in first, before the prefetch landmark', async () => {
    const record = join(work, 'record.json')
    writeFileSync(record, '{"path": "/data/small.txt"}\n{"path": "/bin/busybox"}\n')
    const out = join(work, 'recorded')
    const res = await runCli(['convert', '-q', '--estargz-record-in', record, `oci-archive:${archive}`, `oci:${out}:v1`])
    assert.equal(res.status, 0, res.stderr)
    const manifest = layoutManifest(out)
    const orders: string[][] = []
    for (const l of manifest.layers) {
      const src = await openFileSource(blobPath(out, l.digest))
      try {
        const reader = await openEstargz(src, {expectedTocDigest: l.annotations![TOC]!})
        assert.equal(reader.prefetch.kind, 'landmark', 'every layer has a prefetch landmark')
        orders.push(reader.toc.entries.filter((e) => e.type !== 'chunk' && e.type !== 'dir').map((e) => e.name.replace(/^\.?\//, '')))
      } finally {
        await src.close()
      }
    }
    // In each layer the recorded file is the first file, right before the landmark.
    assert.deepEqual(orders.map((o) => o.slice(0, 2)), [['bin/busybox', '.prefetch.landmark'], ['data/small.txt', '.prefetch.landmark']])
  })

  test('an interrupted conversion leaves neither its spool nor a destination behind', async () => {
    const bigLayout = join(work, 'big-layout')
    await writeOciLayout(bigLayout, {tag: 'v1', layers: [{files: [{path: 'big', random: {size: 96 << 20, seed: 'int'}}]}]})
    const tmp = join(work, 'tmp-int')
    mkdirSync(tmp)
    const out = join(work, 'interrupted')
    const child = spawn(process.execPath, [CLI_ENTRY, 'convert', '-q', `oci:${bigLayout}:v1`, `oci:${out}:v1`], {env: {...process.env, TMPDIR: tmp}, stdio: ['ignore', 'pipe', 'pipe']})
    let stderr = ''
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
    // Signal once conversion has really started: its spool holds a layer being written.
    while (!readdirSync(tmp).some((d) => d.startsWith('lazyctl-convert-') && readdirSync(join(tmp, d)).length > 0)) {
      if (child.exitCode !== null) break
      await new Promise((resolve) => setImmediate(resolve))
    }
    child.kill('SIGTERM')
    assert.equal(await exited, 143, stderr)
    assert.match(stderr, /interrupted \(SIGTERM\); nothing was committed/)
    assert.deepEqual(readdirSync(tmp), [], 'spool removed')
    assert.equal(existsSync(out), false)
    assert.deepEqual(readdirSync(work).filter((n) => n.startsWith('.interrupted')), [], 'no staging dir left')
  })

  test('reads docker save archives', async () => {
    const dockerArchive = join(work, 'saved.tar')
    execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', `oci-archive:${archive}`, `docker-archive:${dockerArchive}:demo/saved:v1`], {stdio: 'pipe'})
    const res = await runCli(['convert', '-q', `docker-archive:${dockerArchive}`, `docker://${registry.host}/saved:esgz`])
    assert.equal(res.status, 0, res.stderr)
    const raw = JSON.parse(await inspectRaw('saved:esgz', registry)) as Manifest
    assert.equal(raw.layers.length, source.layers.length)
    assert.ok(raw.layers.every((l) => l.annotations?.[TOC]))
  })
})
