// Is the node ready for kubelet? Asked of containerd's CRI plugin itself (its live config, not
// the file): CRI pulls through the lazy snapshotter with image labels on; the image filesystem
// kubelet is told about exists; the sandbox image is present and unpacked in the lazy snapshotter
// (else the first pod pulls it without credentials, or unpacks it without labels); and whether the
// snapshotter's socket serves kubelet's image calls ([cri_keychain]). A containerd without its CRI
// plugin is not a Kubernetes node: one line says so and nothing fails. What does not keep pods from
// starting (image GC, the sandbox image's first pull) is a warning, so setup does not roll back on it.
import {stat} from 'node:fs/promises'
import {join} from 'node:path'
import {describeError} from '../cli/errors.js'
import {ContainerdConnection, GrpcStatus, isGrpcStatus} from '../containerd/connection.js'
import {statSnapshot} from '../containerd/snapshots.js'
import {serverVersion} from '../containerd/version.js'
import {chainId} from '../oci/chain-id.js'
import type {Digest} from '../oci/digest.js'
import {containerdNeedsImageFsDir} from './setup-steps.js'
import type {VerifyCheck, VerifyOptions} from './verify.js'

const RUNTIME_SERVICE = 'runtime.v1.RuntimeService'
const IMAGE_SERVICE = 'runtime.v1.ImageService'
const CRI_NAMESPACE = 'k8s.io'

/** The part of the CRI plugin's config (Status verbose, `info.config`) these checks read. */
interface CriLiveConfig {
  containerd?: {snapshotter?: string; disableSnapshotAnnotations?: boolean}
  sandboxImage?: string
  containerdRootDir?: string
}

export async function criChecks(options: VerifyOptions): Promise<VerifyCheck[]> {
  const conn = new ContainerdConnection({address: options.containerdAddress, namespace: CRI_NAMESPACE})
  const timeoutMs = options.timeoutMs ?? 5000
  try {
    let config: CriLiveConfig
    try {
      const status = await conn.unary<{verbose: boolean}, {info: Record<string, string>}>(RUNTIME_SERVICE, 'Status', {verbose: true}, 'CRI status', {timeoutMs})
      config = JSON.parse(status.info.config ?? '{}') as CriLiveConfig
    } catch (err) {
      if (isGrpcStatus(err, GrpcStatus.UNIMPLEMENTED)) return [{name: 'CRI', ok: true, detail: "containerd's CRI plugin is off: not a Kubernetes node, nothing to check for kubelet"}]
      return [{name: 'CRI', ok: false, detail: `containerd's CRI plugin does not answer: ${describeError(err)}`}]
    }
    return [
      snapshotterCheck(config, options.pluginName),
      await imageFsCheck(conn, config, options.pluginName),
      await sandboxImageCheck(conn, config, options.pluginName, timeoutMs),
      await imageServiceCheck(options.snapshotterSocket, timeoutMs),
    ]
  } finally {
    conn.close()
  }
}

function snapshotterCheck(config: CriLiveConfig, plugin: string): VerifyCheck {
  const name = 'CRI snapshotter'
  const snapshotter = config.containerd?.snapshotter ?? ''
  if (snapshotter !== plugin) return {name, ok: false, detail: `CRI pulls through "${snapshotter}", not "${plugin}": pods do not start lazily (run lazyctl node setup)`}
  if (config.containerd?.disableSnapshotAnnotations !== false) return {name, ok: false, detail: 'disable_snapshot_annotations is on: CRI passes no image labels, every layer is downloaded (run lazyctl node setup)'}
  return {name, ok: true, detail: `CRI pulls through "${plugin}" with snapshot annotations`}
}

async function imageFsCheck(conn: ContainerdConnection, config: CriLiveConfig, plugin: string): Promise<VerifyCheck> {
  const name = 'image filesystem'
  const version = (await serverVersion(conn).catch(() => undefined))?.version.replace(/^v/, '')
  if (!version || !containerdNeedsImageFsDir(version)) return {name, ok: true, detail: `containerd ${version ?? '(version unknown)'} reports the snapshotter's own root to kubelet`}
  const dir = join(config.containerdRootDir ?? '/var/lib/containerd', `io.containerd.snapshotter.v1.${plugin}`)
  const present = await stat(dir).then((s) => s.isDirectory(), () => false)
  return present
    ? {name, ok: true, detail: `${dir} exists (kubelet's image filesystem on containerd ${version})`}
    : {name, ok: false, warning: true, detail: `${dir} is missing: containerd ${version} names it to kubelet, whose image GC then never runs (run lazyctl node setup)`}
}

async function sandboxImageCheck(conn: ContainerdConnection, config: CriLiveConfig, plugin: string, timeoutMs: number): Promise<VerifyCheck> {
  const name = 'sandbox image'
  const image = config.sandboxImage ?? ''
  const importHint = `import it: ctr -n ${CRI_NAMESPACE} images import --snapshotter ${plugin} pause.tar`
  try {
    const res = await conn.unary<object, {image: {id: string} | null; info: Record<string, string>}>(IMAGE_SERVICE, 'ImageStatus', {image: {image}, verbose: true}, `image status of ${image}`, {timeoutMs})
    if (!res.image) return {name, ok: false, warning: true, detail: `${image} is not on the node: the first pod pulls it without credentials; ${importHint}`}
    const spec = JSON.parse(res.info.info ?? '{}') as {imageSpec?: {rootfs?: {diff_ids?: string[]}}}
    const top = chainId((spec.imageSpec?.rootfs?.diff_ids ?? []) as Digest[])
    if (!top) return {name, ok: true, detail: `${image} is present`}
    if (await statSnapshot(conn, plugin, top)) return {name, ok: true, detail: `${image} is present and unpacked in "${plugin}"`}
    return {name, ok: false, warning: true, detail: `${image} is present but not unpacked in "${plugin}": CRI would unpack it without image labels at the first pod; ${importHint}`}
  } catch (err) {
    return {name, ok: false, warning: true, detail: `cannot check ${image}: ${describeError(err)}`}
  }
}

async function imageServiceCheck(socket: string, timeoutMs: number): Promise<VerifyCheck> {
  const name = 'CRI image service'
  const conn = new ContainerdConnection({address: socket, namespace: CRI_NAMESPACE})
  try {
    await conn.unary(IMAGE_SERVICE, 'ImageFsInfo', {}, 'image filesystem info', {timeoutMs})
    return {name, ok: true, detail: `${socket} serves kubelet's image calls ([cri_keychain]): point kubelet's imageServiceEndpoint at unix://${socket}`}
  } catch (err) {
    if (isGrpcStatus(err, GrpcStatus.UNIMPLEMENTED)) return {name, ok: true, detail: `${socket} does not serve kubelet's image calls ([cri_keychain] off): lazy reads use the docker config's credentials only`}
    return {name, ok: false, detail: `${socket} serves kubelet's image calls but containerd's answer failed: ${describeError(err)}`}
  } finally {
    conn.close()
  }
}
