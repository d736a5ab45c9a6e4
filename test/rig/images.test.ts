import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {createReadStream, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync, linkSync, symlinkSync, chmodSync, readdirSync} from 'node:fs'
import {basename, dirname, join} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {createGunzip} from 'node:zlib'
import tar from 'tar-stream'
import {
  blobPath, busyboxImage, busyboxRoot, inspectRaw, pushImage, writeDockerArchive, writeOciArchive, writeOciIndex, writeOciLayout,
} from './images.js'
import {startRegistry, type RegistryRig} from './registry.js'
import {aptMirrorFor, debootstrapRoot} from './debootstrap.js'
import {startContainerd, type ContainerdRig} from './containerd.js'
import {ctrRun} from './ctr.js'
import {removeDir, rigTempDir} from './tmp.js'

interface TarEntry {
  header: tar.Header
  content: Buffer
}

/** Reads a layer blob back with an independent decoder (gunzip + tar-stream extract). */
async function readLayer(layoutDir: string, digest: string): Promise<{entries: Map<string, TarEntry>; diffId: string}> {
  const entries = new Map<string, TarEntry>()
  const hash = createHash('sha256')
  const extract = tar.extract()
  const gunzip = createGunzip()
  gunzip.on('data', (chunk: Buffer) => hash.update(chunk))
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = []
      for await (const chunk of entry) chunks.push(chunk as Buffer)
      entries.set(entry.header.name, {header: entry.header, content: Buffer.concat(chunks)})
    }
  })()
  await pipeline(createReadStream(blobPath(layoutDir, digest)), gunzip, extract as unknown as NodeJS.WritableStream)
  await reading
  return {entries, diffId: `sha256:${hash.digest('hex')}`}
}

function skopeoInspect(transportRef: string, raw = false): Record<string, unknown> {
  return JSON.parse(execFileSync('skopeo', ['--insecure-policy', 'inspect', ...(raw ? ['--raw'] : []), transportRef], {encoding: 'utf8'})) as Record<string, unknown>
}

let work: string
before(() => {
  work = rigTempDir('images-test')
})
after(() => {
  removeDir(work)
})

describe('OCI layouts and archives', () => {
  test('a busybox image layout is valid OCI: skopeo inspect reads its manifest, config and layers', async () => {
    const dir = join(work, 'busybox')
    const written = await writeOciLayout(dir, busyboxImage({tag: 'v1', config: {WorkingDir: '/tmp', User: '1000'}}))
    const info = skopeoInspect(`oci:${dir}:v1`)
    assert.equal(info.Digest, written.manifestDigest)
    assert.equal(info.Architecture, 'amd64')
    assert.equal(info.Os, 'linux')
    assert.deepEqual(info.Layers, written.layers.map((l) => l.digest))
    const raw = execFileSync('skopeo', ['--insecure-policy', 'inspect', '--config', `oci:${dir}:v1`], {encoding: 'utf8'})
    const imageConfig = JSON.parse(raw) as {config: {Cmd: string[]; WorkingDir: string; User: string}; rootfs: {diff_ids: string[]}}
    assert.deepEqual(imageConfig.config.Cmd, ['sh'])
    assert.equal(imageConfig.config.WorkingDir, '/tmp')
    assert.equal(imageConfig.config.User, '1000')
    assert.deepEqual(imageConfig.rootfs.diff_ids, written.layers.map((l) => l.diffId))
  })

  test('the busybox root has a static busybox, applet links and users for containers', () => {
    const root = busyboxRoot()
    assert.equal(readlinkSync(join(root, 'bin/sh')), '/bin/busybox')
    assert.equal(readlinkSync(join(root, 'usr/bin/sha256sum')), '/bin/busybox')
    assert.equal(lstatSync(join(root, 'tmp')).mode & 0o7777, 0o1777)
    assert.match(readFileSync(join(root, 'etc/passwd'), 'utf8'), /^user:x:1000:1000:/m)
    assert.match(readFileSync(join(root, 'etc/group'), 'utf8'), /^nogroup:x:65534:/m)
    const out = execFileSync('chroot', [root, '/bin/sh', '-c', 'echo hi from $(id -un)'], {encoding: 'utf8'})
    assert.equal(out, 'hi from root\n')
  })

  test('inline layer entries keep content, modes, owners, symlinks, hard links and whiteouts; diff_id is the tar digest', async () => {
    const dir = join(work, 'inline')
    const written = await writeOciLayout(dir, {
      layers: [{
        files: [
          {path: '/etc', dir: true, mode: 0o750, uid: 0, gid: 4},
          {path: '/etc/app.conf', content: 'answer=42\n', mode: 0o640, uid: 1000, gid: 1000},
          {path: 'bin/tool', content: '#!/bin/sh\necho tool\n', mode: 0o4755},
          {path: 'bin/tool-link', symlink: 'tool'},
          {path: 'bin/tool-hard', hardlink: 'bin/tool'},
          {path: 'data/blob', random: {size: 3 * 1024 * 1024 + 7, seed: 'x'}},
          {path: 'old/file', whiteout: true},
          {path: 'cache', opaque: true},
          {path: 'bin/ping', content: 'cap', xattrs: {'security.capability': 'raw-cap-bytes'}},
          {path: '../escape', content: 'hostile', rawPath: true},
        ],
      }],
    })
    const {entries, diffId} = await readLayer(dir, written.layers[0].digest)
    assert.equal(diffId, written.layers[0].diffId)
    assert.equal(entries.get('etc')?.header.type, 'directory')
    assert.equal(entries.get('etc')?.header.mode, 0o750)
    assert.equal(entries.get('etc')?.header.gid, 4)
    assert.equal(entries.get('etc/app.conf')?.content.toString(), 'answer=42\n')
    assert.equal(entries.get('etc/app.conf')?.header.uid, 1000)
    assert.equal(entries.get('etc/app.conf')?.header.mode, 0o640)
    assert.equal(entries.get('bin/tool')?.header.mode, 0o4755)
    assert.equal(entries.get('bin/tool-link')?.header.type, 'symlink')
    assert.equal(entries.get('bin/tool-link')?.header.linkname, 'tool')
    assert.equal(entries.get('bin/tool-hard')?.header.type, 'link')
    assert.equal(entries.get('bin/tool-hard')?.header.linkname, 'bin/tool')
    assert.equal(entries.get('data/blob')?.content.length, 3 * 1024 * 1024 + 7)
    assert.ok(entries.has('old/.wh.file'))
    assert.ok(entries.has('cache/.wh..wh..opq'))
    assert.equal((entries.get('bin/ping')?.header.pax as Record<string, string> | undefined)?.['SCHILY.xattr.security.capability'], 'raw-cap-bytes')
    assert.equal(entries.get('../escape')?.content.toString(), 'hostile')
    // Incompressible content: gzip cannot shrink it, which is what range-read tests rely on.
    assert.ok(written.layers[0].size > 3 * 1024 * 1024)
  })

  test('a host directory layer keeps modes, symlinks and hard links', async () => {
    const src = join(work, 'tree')
    mkdirSync(join(src, 'sub'), {recursive: true})
    writeFileSync(join(src, 'sub/a'), 'aaa')
    chmodSync(join(src, 'sub/a'), 0o600)
    linkSync(join(src, 'sub/a'), join(src, 'sub/a-hard'))
    symlinkSync('sub/a', join(src, 'a-sym'))
    const dir = join(work, 'tree-layout')
    const written = await writeOciLayout(dir, {layers: [{dir: src}]})
    const {entries} = await readLayer(dir, written.layers[0].digest)
    assert.equal(entries.get('sub/a')?.header.mode, 0o600)
    assert.equal(entries.get('sub/a')?.content.toString(), 'aaa')
    assert.equal(entries.get('sub/a-hard')?.header.type, 'link')
    assert.equal(entries.get('sub/a-hard')?.header.linkname, 'sub/a')
    assert.equal(entries.get('a-sym')?.header.linkname, 'sub/a')
  })

  test('the same spec gives the same digests (fixed timestamps, deterministic gzip)', async () => {
    const spec = {layers: [{files: [{path: 'f', content: 'same'}, {path: 'r', random: {size: 100_000}}]}], tag: 't'}
    const a = await writeOciLayout(join(work, 'det-a'), spec)
    const b = await writeOciLayout(join(work, 'det-b'), spec)
    assert.equal(a.manifestDigest, b.manifestDigest)
    const c = await writeOciLayout(join(work, 'det-c'), {...spec, layers: [{files: [{path: 'f', content: 'different'}]}]})
    assert.notEqual(a.manifestDigest, c.manifestDigest)
  })

  test('a layout holds several tags; rewriting a tag replaces only that entry', async () => {
    const dir = join(work, 'tags')
    await writeOciLayout(dir, {layers: [{files: [{path: 'a', content: '1'}]}], tag: 'one'})
    await writeOciLayout(dir, {layers: [{files: [{path: 'a', content: '2'}]}], tag: 'two'})
    const three = await writeOciLayout(dir, {layers: [{files: [{path: 'a', content: '3'}]}], tag: 'one'})
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {manifests: {digest: string; annotations: Record<string, string>}[]}
    assert.deepEqual(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']).sort(), ['one', 'two'])
    assert.equal(skopeoInspect(`oci:${dir}:one`).Digest, three.manifestDigest)
  })

  test('a multi-platform index carries one manifest per platform', async () => {
    const dir = join(work, 'index')
    const written = await writeOciIndex(dir, {
      tag: 'multi',
      manifests: [
        {layers: [{files: [{path: 'arch', content: 'amd64'}]}], platform: {os: 'linux', architecture: 'amd64'}},
        {layers: [{files: [{path: 'arch', content: 'arm64'}]}], platform: {os: 'linux', architecture: 'arm64', variant: 'v8'}},
      ],
    })
    const raw = skopeoInspect(`oci:${dir}:multi`, true) as {mediaType: string; manifests: {digest: string; platform: {architecture: string; variant?: string}}[]}
    assert.equal(raw.mediaType, 'application/vnd.oci.image.index.v1+json')
    assert.deepEqual(raw.manifests.map((m) => m.platform.architecture), ['amd64', 'arm64'])
    assert.equal(raw.manifests[1].platform.variant, 'v8')
    assert.deepEqual(raw.manifests.map((m) => m.digest), written.images.map((i) => i.manifestDigest))
  })

  test('an OCI archive is complete and readable by skopeo (oci-archive:)', async () => {
    const file = join(work, 'image.tar')
    const written = await writeOciArchive(file, {layers: [{files: [{path: 'hello', content: 'world'}]}], tag: 'arch'})
    assert.ok(existsSync(file))
    assert.equal(skopeoInspect(`oci-archive:${file}:arch`).Digest, written.manifestDigest)
  })
})

describe('docker archives', () => {
  test('a docker-archive (docker save format) holds the same filesystem diff_ids and the tag', async () => {
    const file = join(work, 'docker.tar')
    const written = await writeDockerArchive(file, {layers: [{files: [{path: 'd', content: 'docker'}]}], config: {Cmd: ['true']}}, 'rig/docker:v1')
    const config = JSON.parse(execFileSync('skopeo', ['--insecure-policy', 'inspect', '--config', `docker-archive:${file}`], {encoding: 'utf8'})) as {rootfs: {diff_ids: string[]}}
    assert.deepEqual(config.rootfs.diff_ids, written.layers.map((l) => l.diffId))
    const raw = skopeoInspect(`docker-archive:${file}`, true) as {mediaType: string}
    assert.equal(raw.mediaType, 'application/vnd.docker.distribution.manifest.v2+json')
    const manifestJson = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], {encoding: 'utf8'})) as {RepoTags: string[]}[]
    // skopeo writes the fully qualified name where `docker save` writes the familiar one.
    assert.deepEqual(manifestJson[0].RepoTags, ['docker.io/rig/docker:v1'])
  })
})

describe('seeding a registry with skopeo', () => {
  let registry: RegistryRig
  before(async () => {
    registry = await startRegistry()
  })
  after(async () => {
    await registry?.stop()
  })

  test('a pushed image can be inspected back with the same manifest digest', async () => {
    const dir = join(work, 'push')
    const written = await writeOciLayout(dir, {layers: [{files: [{path: 'x', content: 'pushed'}]}], tag: 'p'})
    const digest = await pushImage(dir, 'rig/pushed:v1', registry, {sourceTag: 'p'})
    assert.equal(digest, written.manifestDigest)
    const raw = await inspectRaw('rig/pushed:v1', registry)
    assert.equal(`sha256:${createHash('sha256').update(raw).digest('hex')}`, written.manifestDigest)
    assert.equal(await registry.bytesServed({repository: 'rig/pushed', digest: written.layers[0].digest, method: 'GET'}), 0)
    const blobBytes = written.layers.reduce((sum, l) => sum + l.size, 0) + written.manifest.config.size
    assert.equal(await registry.bytesReceived({repository: 'rig/pushed'}), blobBytes)
    assert.equal(await registry.bytesReceived({digest: written.layers[0].digest}), written.layers[0].size)
  })

  test('a multi-platform index is pushed whole (every platform, digests kept)', async () => {
    const file = join(work, 'multi.tar')
    const written = await writeOciArchive(file, {
      manifests: [
        {layers: [{files: [{path: 'a', content: 'amd64'}]}]},
        {layers: [{files: [{path: 'a', content: 'arm64'}]}], platform: {os: 'linux', architecture: 'arm64'}},
      ],
    })
    assert.equal(await pushImage(file, 'rig/multi:latest', registry), written.indexDigest)
    const index = JSON.parse(await inspectRaw('rig/multi:latest', registry)) as {manifests: {digest: string}[]}
    assert.deepEqual(index.manifests.map((m) => m.digest), written.images.map((i) => i.manifestDigest))
  })
})

describe('busybox image in the rig containerd', () => {
  let containerd: ContainerdRig
  before(async () => {
    containerd = await startContainerd()
  })
  after(async () => {
    await containerd?.stop()
  })

  test('runs a command as the image user', async () => {
    const file = join(work, 'busybox-run.tar')
    await writeOciArchive(file, busyboxImage({tag: 'run', config: {User: '1000', WorkingDir: '/home/user', Cmd: ['sh', '-c', 'echo $(id -u):$(pwd)']}}))
    containerd.ctr(['images', 'import', '--index-name', 'rig/busybox:run', file])
    // The image's User and WorkingDir apply; the output comes through a bind mount (see ctrRun).
    const out = await ctrRun(async (args) => containerd.ctr(args), work, 'rig/busybox:run', `busybox-${process.pid}`, ['sh', '-c', 'echo $(id -u):$(pwd)'])
    assert.equal(out.trim(), '1000:/home/user')
  })

  test('containerd pulls from the TLS htpasswd registry with the rig hosts dir, and runs the image', async () => {
    const registry = await startRegistry({auth: 'htpasswd', tls: true})
    try {
      const dir = join(work, 'busybox-tls')
      await writeOciLayout(dir, busyboxImage({config: {Cmd: ['cat', '/etc/motd']}, layers: [{files: [{path: 'etc/motd', content: 'pulled over TLS\n'}]}]}))
      await pushImage(dir, 'rig/busybox:tls', registry)
      const ref = `${registry.host}/rig/busybox:tls`
      containerd.ctr(['images', 'pull', '--hosts-dir', registry.hostsDir!, '--user', `${registry.username}:${registry.password}`, ref])
      assert.equal(await ctrRun(async (args) => containerd.ctr(args), work, ref, `busybox-tls-${process.pid}`, ['cat', '/etc/motd']), 'pulled over TLS\n')
    } finally {
      await registry.stop()
    }
  })
})

describe('cached debootstrap root', () => {
  test('finds the apt mirror of the suite in deb822 and one-line sources', () => {
    const apt = join(work, 'apt')
    mkdirSync(join(apt, 'sources.list.d'), {recursive: true})
    writeFileSync(join(apt, 'sources.list.d', 'debian.sources'), [
      'Types: deb', 'URIs: http://security.example/debian-security', 'Suites: bookworm-security', 'Components: main', '',
      'Types: deb', 'URIs: http://mirror.example/debian', 'Suites: bookworm bookworm-updates', 'Components: main contrib', '',
    ].join('\n'))
    assert.equal(aptMirrorFor('bookworm', apt), 'http://mirror.example/debian')
    writeFileSync(join(apt, 'sources.list'), 'deb [arch=amd64] http://old.example/debian bullseye main\n')
    assert.equal(aptMirrorFor('bullseye', apt), 'http://old.example/debian')
    assert.throws(() => aptMirrorFor('trixie', apt), /no apt source for trixie/)
  })

  test('a bookworm root with python3 is built once, runs python3, and is reused', async () => {
    const root = await debootstrapRoot({include: ['python3']})
    const out = execFileSync('chroot', [root, 'python3', '-c', 'import sys; print(sys.version_info[0])'], {encoding: 'utf8'})
    assert.equal(out.trim(), '3')
    assert.match(readFileSync(join(root, 'etc/os-release'), 'utf8'), /VERSION_CODENAME=bookworm/)
    const inode = lstatSync(root).ino
    assert.equal(await debootstrapRoot({include: ['python3']}), root)
    assert.equal(lstatSync(root).ino, inode)
    assert.equal(readdirSync(dirname(root)).filter((name) => name.startsWith(`${basename(root)}.tmp-`)).length, 0)
  })
})
