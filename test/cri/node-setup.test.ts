// A node that `lazyctl node setup --cri-keychain --kubelet-config` prepared is ready for kubelet: containerd's stock
// config (`containerd config default`) is merged into an offline root, the CRI and proxy-plugin
// sections and lazyctl's config (with the CRI keychain) are used exactly as written (only the
// paths are made private to the test: root, state, sockets, CNI, the test's pause image), kubelet's
// config (EKS's JSON) names the snapshotter's socket as its image service, and a pod started with
// kubelet's calls on those endpoints runs lazily. A second
// setup changes nothing; teardown restores the original files byte for byte.
import {after, before, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {parse, stringify} from 'smol-toml'
import {querySnapshotterStatus} from '../../src/snapshotter/status-service.js'
import {runCli as runBuiltCli} from '../rig/cli.js'
import {CriClient, PAUSE_IMAGE, plainHttpHostsDir, readCriLog, startCriContainerd, type CriRig} from '../rig/cri.js'
import {busyboxImage, inspectRaw, pushImage, writeOciArchive} from '../rig/images.js'
import {startRegistry, type RegistryRig} from '../rig/registry.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'
import {startSnapshotterDaemon, type SnapshotterDaemon} from '../snapshotter/daemon.js'
import {freezeApp, runCli, treeChecksums, type FrozenApp} from '../node/helpers.js'

let dir: string
let app: FrozenApp
let registry: RegistryRig
let daemon: SnapshotterDaemon | undefined
let cri: CriRig | undefined

before(async () => {
  dir = rigTempDir('cri-node-setup')
  app = freezeApp()
  registry = await startRegistry()
})
after(async () => {
  await cri?.stop()
  await daemon?.stop()
  await registry?.stop()
  app?.remove()
  if (dir) removeDir(dir)
})

type Table = Record<string, unknown>
const table = (parent: Table, ...path: string[]): Table => path.reduce((t, key) => (t[key] ??= {}) as Table, parent)

test('a pod runs lazily on a containerd and snapshotter configured by node setup --cri-keychain; setup is idempotent and teardown restores the files', async () => {
  const root = join(dir, 'node-root')
  mkdirSync(join(root, 'etc/containerd'), {recursive: true})
  const stock = execFileSync('containerd', ['config', 'default'], {encoding: 'utf8'})
  writeFileSync(join(root, 'etc/containerd/config.toml'), stock)
  // kubelet's config as EKS writes it (JSON KubeletConfiguration).
  mkdirSync(join(root, 'etc/kubernetes/kubelet'), {recursive: true})
  const kubeletConfigPath = '/etc/kubernetes/kubelet/kubelet-config.json'
  const kubeletStock = `${JSON.stringify({kind: 'KubeletConfiguration', apiVersion: 'kubelet.config.k8s.io/v1beta1', containerRuntimeEndpoint: 'unix:///run/containerd/containerd.sock', clusterDomain: 'cluster.local', maxPods: 17}, null, 4)}\n`
  writeFileSync(join(root, kubeletConfigPath), kubeletStock)
  const pristine = treeChecksums(root)
  const socket = join(dir, 'run', 'lazyctl.sock')
  const containerdSocket = join(dir, 'run', 'containerd.sock')
  mkdirSync(join(dir, 'run'))
  const nodeArgs = ['--local', '--root', root, '--snapshotter-socket', socket, '--snapshotter-root', join(dir, 'state'), '--address', containerdSocket, '--kubelet-config', kubeletConfigPath]
  const setupArgs = ['node', 'setup', ...nodeArgs, '--skip', 'install', '--skip', 'service', '--skip', 'fuse', '--cri-keychain']
  const setup = await runCli(app, setupArgs)
  assert.equal(setup.code, 0, setup.stderr)

  const written = parse(readFileSync(join(root, 'etc/containerd/config.toml'), 'utf8')) as Table
  const lazyctlConfig = readFileSync(join(root, 'etc/lazyctl/config.toml'), 'utf8')
  // kubelet's image calls now go to the snapshotter's socket; every other key is as it was.
  const kubeletConfig = JSON.parse(readFileSync(join(root, kubeletConfigPath), 'utf8')) as Record<string, unknown>
  assert.deepEqual(kubeletConfig, {...(JSON.parse(kubeletStock) as object), imageServiceEndpoint: `unix://${socket}`})
  assert.match(lazyctlConfig, /\[cri_keychain\]\s+enable_keychain = true\s+image_service_path = ".*containerd\.sock"/)

  // The image filesystem containerd < 1.6.32 names to kubelet (the root's containerd cannot run here, so assumed old).
  assert.ok(existsSync(join(root, 'var/lib/containerd/io.containerd.snapshotter.v1.stargz')), 'image filesystem dir for kubelet')

  daemon = await startSnapshotterDaemon({dir: join(dir, 'snapshotter'), socket, root: join(dir, 'state'), config: lazyctlConfig})
  const hostsDir = plainHttpHostsDir(dir, registry.host)
  cri = await startCriContainerd({
    snapshotterSocket: socket,
    address: containerdSocket,
    configText: (paths) => {
      // node setup's file, with only what a test on a shared machine must make private.
      const config = structuredClone(written)
      Object.assign(config, {root: paths.root, state: paths.state})
      table(config, 'grpc').address = paths.address
      table(config, 'plugins', 'io.containerd.internal.v1.opt').path = join(paths.dir, 'opt')
      const criPlugin = table(config, 'plugins', 'io.containerd.grpc.v1.cri')
      Object.assign(criPlugin, {sandbox_image: PAUSE_IMAGE, restrict_oom_score_adj: true, netns_mounts_under_state_dir: true})
      Object.assign(table(criPlugin, 'cni'), {bin_dir: '/usr/lib/cni', conf_dir: join(paths.dir, 'cni')})
      table(criPlugin, 'registry').config_path = hostsDir
      return stringify(config)
    },
  })

  const archive = join(dir, 'app.tar')
  await writeOciArchive(archive, busyboxImage({layers: [{files: [{path: 'greeting', content: 'hello from a node set up by lazyctl\n'}, {path: 'pad', random: {size: 4 << 20, seed: 'pad'}}], compressionLevel: 0}]}))
  await pushImage(archive, 'app:plain', registry)
  const image = `${registry.host}/app:esgz`
  const converted = await runBuiltCli(['convert', '--quiet', `docker://${registry.host}/app:plain`, `docker://${image}`])
  assert.equal(converted.status, 0, converted.stderr)

  // The kubelet-like client uses the endpoints kubelet's config names.
  const kubelet = new CriClient(containerdSocket, String(kubeletConfig.imageServiceEndpoint).replace(/^unix:\/\//, ''))
  try {
    const pod = await kubelet.startPod({name: 'greeter', image, command: ['cat', '/greeting'], logDirectory: join(dir, 'pods')})
    const exited = await kubelet.waitForExit(pod.containerId)
    assert.equal(exited.exit_code, 0, `${exited.reason} ${exited.message}`)
    assert.deepEqual(readCriLog(pod.logPath).map((l) => l.content), ['hello from a node set up by lazyctl'])
    const layer = (JSON.parse(await inspectRaw('app:esgz', registry)) as {layers: Array<{digest: string}>}).layers.at(-1)!
    assert.ok((await querySnapshotterStatus(socket)).layers.some((l) => l.layerDigest === layer.digest), 'the layer is lazy')
    await kubelet.removePod(pod.sandboxId)
  } finally {
    kubelet.close()
  }

  // node verify asks the live CRI plugin. Setup created the image filesystem under the offline
  // root's /var/lib/containerd; this containerd runs on a private root, so the same dir is made there.
  mkdirSync(join(cri.containerd.root, 'io.containerd.snapshotter.v1.stargz'), {recursive: true})
  const verify = await runCli(app, ['node', 'verify', '--address', containerdSocket, '--snapshotter-socket', socket])
  assert.equal(verify.code, 0, verify.stdout + verify.stderr)
  assert.match(verify.stdout, /^ok +CRI snapshotter: CRI pulls through "stargz" with snapshot annotations$/m)
  assert.match(verify.stdout, /^ok +image filesystem: /m)
  assert.match(verify.stdout, new RegExp(`^ok +sandbox image: ${PAUSE_IMAGE.replace(/[.]/g, '\\.')} is present and unpacked in "stargz"$`, 'm'))
  assert.match(verify.stdout, /^ok +CRI image service: .* serves kubelet's image calls/m)
  // The pause image gone: verify warns and says how to import it (pods still start: no failure).
  cri.ctr(['images', 'rm', PAUSE_IMAGE])
  const missing = await runCli(app, ['node', 'verify', '--address', containerdSocket, '--snapshotter-socket', socket])
  assert.equal(missing.code, 0, missing.stderr)
  assert.match(missing.stdout, /^WARN +sandbox image: .* is not on the node: .*ctr -n k8s\.io images import --snapshotter stargz/m)

  const again = await runCli(app, setupArgs)
  assert.equal(again.code, 0, again.stderr)
  assert.match(again.stdout, /^local +ok +0 +/m, 'a second setup changes nothing')

  const teardown = await runCli(app, ['node', 'teardown', ...nodeArgs, '--purge'])
  assert.equal(teardown.code, 0, teardown.stderr)
  assert.equal(readFileSync(join(root, 'etc/containerd/config.toml'), 'utf8'), stock)
  assert.equal(readFileSync(join(root, kubeletConfigPath), 'utf8'), kubeletStock)
  const left = treeChecksums(root)
  for (const key of [...left.keys()]) if (!pristine.has(key)) left.delete(key)
  assert.deepEqual(left, pristine, 'every original file is back byte for byte')
})
