// Kubernetes without kubelet: a containerd with its CRI plugin configured as on a lazy node (the
// `stargz` proxy snapshotter for every pod, snapshot annotations on), a pause image made offline
// from Debian's static busybox, and a client that makes kubelet's calls in kubelet's order
// (shared/ref/kubernetes.md §2): RunPodSandbox (hostNetwork, so no CNI), ImageStatus, PullImage
// with the pod's pull secret, CreateContainer, StartContainer, then ContainerStatus and the CRI
// log file. Image calls go to the image endpoint kubelet would be given: containerd's socket, or
// the snapshotter's when `--image-service-endpoint` points there.
import * as grpc from '@grpc/grpc-js'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {randomUUID} from 'node:crypto'
import {execFileSync} from 'node:child_process'
import {apiSchema, CRI_DESCRIPTOR_FILE, serviceDefinition} from '../../src/containerd/api-descriptor.js'
import {startContainerd, type ContainerdRig} from './containerd.js'
import {busyboxRoot, writeOciArchive} from './images.js'
import {waitUntilReady} from './process.js'

/** The namespace containerd's CRI plugin keeps Kubernetes' images and containers in. */
export const CRI_NAMESPACE = 'k8s.io'
/** The sandbox image every pod of the rig uses (imported, never pulled). */
export const PAUSE_IMAGE = 'lazyctl.test/pause:latest'

export interface CriContainerdOptions {
  snapshotterSocket: string
  /** A config written elsewhere (node setup's), made private to the rig; else the rig's own CRI config. */
  configText?: (paths: {dir: string; root: string; state: string; address: string; snapshotterSocket: string}) => string
  /** containerd's socket, when the snapshotter's config must name it before containerd starts. */
  address?: string
  /** containerd's hosts dir (`[…cri".registry] config_path`), for TLS registries. */
  hostsDir?: string
  /** CRI's snapshotter; default `stargz` (the proxy plugin). `overlayfs` is a node without lazy pulling. */
  snapshotter?: string
}

export interface CriRig {
  containerd: ContainerdRig
  /** Kubelet's runtime endpoint: containerd's socket. */
  runtime: CriClient
  /** `ctr -n k8s.io …`. */
  ctr(args: string[]): string
  /**
   * Waits until containerd reaches the snapshotter again after a restart: its connection to the
   * proxy plugin backs off (up to 3 s) and fails calls meanwhile, which kubelet would retry.
   */
  waitForSnapshotter(): Promise<void>
  stop(): Promise<void>
}

/** A containerd hosts dir under `base` saying `host` speaks plain HTTP: CRI reaches such a registry only so. */
export function plainHttpHostsDir(base: string, host: string): string {
  const hostsDir = join(base, 'certs.d')
  mkdirSync(join(hostsDir, host), {recursive: true})
  writeFileSync(join(hostsDir, host, 'hosts.toml'), `server = "http://${host}"\n[host."http://${host}"]\n  capabilities = ["pull", "resolve"]\n`)
  return hostsDir
}

/** The CRI section of containerd 1.6's config (version 2) for a lazy node in a test. */
export function criConfig(options: {dir: string; hostsDir?: string; snapshotter?: string}): string {
  return [
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = ${JSON.stringify(PAUSE_IMAGE)}`,
    // This VM's containerd lacks CAP_SYS_RESOURCE: without the clamp every sandbox fails in runc.
    '  restrict_oom_score_adj = true',
    '  netns_mounts_under_state_dir = true',
    '[plugins."io.containerd.grpc.v1.cri".containerd]',
    `  snapshotter = ${JSON.stringify(options.snapshotter ?? 'stargz')}`,
    '  disable_snapshot_annotations = false',
    '[plugins."io.containerd.grpc.v1.cri".cni]',
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${JSON.stringify(join(options.dir, 'cni'))}`,
    ...(options.hostsDir ? ['[plugins."io.containerd.grpc.v1.cri".registry]', `  config_path = ${JSON.stringify(options.hostsDir)}`] : []),
  ].join('\n')
}

export async function startCriContainerd(options: CriContainerdOptions): Promise<CriRig> {
  const containerd = await startContainerd({
    cri: true,
    snapshotterSocket: options.snapshotterSocket,
    ...(options.address ? {address: options.address} : {}),
    extraConfig: (dir) => criConfig({dir, ...(options.hostsDir ? {hostsDir: options.hostsDir} : {}), ...(options.snapshotter ? {snapshotter: options.snapshotter} : {})}),
    ...(options.configText ? {configText: options.configText} : {}),
  })
  const runtime = new CriClient(containerd.address)
  try {
    await waitUntilReady(containerd.process, 'its CRI plugin answering', async () => {
      await runtime.version()
      return true
    })
    await importPauseImage(containerd, options.snapshotter ?? 'stargz')
  } catch (err) {
    runtime.close()
    await containerd.stop()
    throw err
  }
  return {
    containerd,
    runtime,
    ctr: (args) => criCtr(containerd, args),
    async waitForSnapshotter() {
      await waitUntilReady(containerd.process, 'its stargz proxy plugin answering again', async () => {
        try {
          criCtr(containerd, ['snapshots', '--snapshotter', 'stargz', 'ls'])
          return true
        } catch {
          return false
        }
      })
    },
    async stop() {
      await runtime.removeAllSandboxes().catch(() => {})
      runtime.close()
      await containerd.stop()
    },
  }
}

/**
 * The pause image as EKS ships it: a tarball imported into the `stargz` snapshotter in `k8s.io`
 * (CRI then never pulls it). One busybox layer that sleeps forever.
 */
async function importPauseImage(containerd: ContainerdRig, snapshotter: string): Promise<void> {
  const archive = join(containerd.dir, 'pause.tar')
  if (!existsSync(archive)) {
    await writeOciArchive(archive, {layers: [{dir: busyboxRoot()}], config: {Entrypoint: ['/bin/busybox', 'sleep', '2147483647']}, tag: 'latest'})
  }
  criCtr(containerd, ['images', 'import', '--snapshotter', snapshotter, '--base-name', PAUSE_IMAGE.replace(/:latest$/, ''), archive])
}

function criCtr(containerd: ContainerdRig, args: string[]): string {
  return execFileSync('ctr', ['-a', containerd.address, '-n', CRI_NAMESPACE, ...args], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})
}

// ---------------------------------------------------------------------------------------------
// The client

type Message = Record<string, unknown>
type Unary = (request: Message, callback: (err: grpc.ServiceError | null, response: Message) => void) => void

function serviceClient(address: string, service: string): grpc.Client & Record<string, Unary> {
  const definition = serviceDefinition(apiSchema(CRI_DESCRIPTOR_FILE, 'string'), service)
  const Constructor = grpc.makeGenericClientConstructor(definition, service)
  return new Constructor(`unix://${address}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Unary>
}

function call<T = Message>(client: grpc.Client & Record<string, Unary>, method: string, request: Message): Promise<T> {
  return new Promise((resolve, reject) => {
    const fn = client[method]
    if (!fn) throw new Error(`no CRI method ${method}`)
    fn.call(client, request, (err, response) => (err ? reject(err) : resolve(response as T)))
  })
}

export interface AuthConfig {
  username?: string
  password?: string
  auth?: string
  server_address?: string
}

export interface PodSpec {
  /** Pod name (unique per live sandbox with its uid). */
  name: string
  image: string
  command?: string[]
  args?: string[]
  /** A pull secret, sent with PullImage as kubelet does. */
  auth?: AuthConfig
  /** Skip PullImage (the image is present: kubelet's IfNotPresent). */
  noPull?: boolean
  /** Where the container's CRI log goes (the sandbox's log_directory). */
  logDirectory: string
}

export interface StartedPod {
  sandboxId: string
  containerId: string
  imageRef: string
  logPath: string
  sandboxConfig: Message
  /** Milliseconds from RunPodSandbox to each step's end. */
  timings: {sandbox: number; pull: number; created: number; started: number}
}

export interface ContainerStatus {
  state: string
  exit_code: number
  reason: string
  message: string
  log_path: string
}

export class CriClient {
  private readonly runtimeService: grpc.Client & Record<string, Unary>
  private readonly imageService: grpc.Client & Record<string, Unary>

  /** `imageEndpoint`: kubelet's `--image-service-endpoint` (default: the runtime's socket). */
  constructor(runtimeEndpoint: string, imageEndpoint = runtimeEndpoint) {
    this.runtimeService = serviceClient(runtimeEndpoint, 'runtime.v1.RuntimeService')
    this.imageService = serviceClient(imageEndpoint, 'runtime.v1.ImageService')
  }

  close(): void {
    this.runtimeService.close()
    this.imageService.close()
  }

  version(): Promise<{runtime_name: string; runtime_version: string; runtime_api_version: string}> {
    return call(this.runtimeService, 'Version', {version: '0.1.0'})
  }

  runtime(method: string, request: Message): Promise<Message> {
    return call(this.runtimeService, method, request)
  }

  image(method: string, request: Message): Promise<Message> {
    return call(this.imageService, method, request)
  }

  async pullImage(image: string, auth?: AuthConfig, sandboxConfig?: Message): Promise<string> {
    const response = await call<{image_ref: string}>(this.imageService, 'PullImage', {image: {image}, auth: auth ?? null, sandbox_config: sandboxConfig ?? null})
    return response.image_ref
  }

  async imageStatus(image: string): Promise<{id: string; repo_tags: string[]; size: string} | null> {
    const response = await call<{image: {id: string; repo_tags: string[]; size: string} | null}>(this.imageService, 'ImageStatus', {image: {image}})
    return response.image
  }

  async removeImage(image: string): Promise<void> {
    await call(this.imageService, 'RemoveImage', {image: {image}})
  }

  /** kubelet's SyncPod for a one-container pod: sandbox, pull, create, start. */
  async startPod(spec: PodSpec): Promise<StartedPod> {
    const began = Date.now()
    const uid = randomUUID()
    const namespaceOptions = {network: 'NODE', pid: 'CONTAINER', ipc: 'POD'}
    mkdirSync(spec.logDirectory, {recursive: true})
    const sandboxConfig: Message = {
      metadata: {name: spec.name, uid, namespace: 'default', attempt: 0},
      // hostNetwork: no CNI, and runc refuses a hostname without a UTS namespace of its own.
      hostname: '',
      log_directory: spec.logDirectory,
      labels: {'io.kubernetes.pod.name': spec.name, 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.uid': uid},
      linux: {security_context: {namespace_options: namespaceOptions}},
    }
    const {pod_sandbox_id: sandboxId} = await call<{pod_sandbox_id: string}>(this.runtimeService, 'RunPodSandbox', {config: sandboxConfig})
    const sandbox = Date.now() - began
    let imageRef = spec.image
    if (!spec.noPull) {
      await this.imageStatus(spec.image)
      imageRef = await this.pullImage(spec.image, spec.auth, sandboxConfig)
    }
    const pull = Date.now() - began
    const logPath = `${spec.name}/0.log`
    const {container_id: containerId} = await call<{container_id: string}>(this.runtimeService, 'CreateContainer', {
      pod_sandbox_id: sandboxId,
      config: {
        metadata: {name: spec.name, attempt: 0},
        image: {image: imageRef},
        command: spec.command ?? [],
        args: spec.args ?? [],
        log_path: logPath,
        linux: {security_context: {namespace_options: namespaceOptions}},
      },
      sandbox_config: sandboxConfig,
    })
    const created = Date.now() - began
    await call(this.runtimeService, 'StartContainer', {container_id: containerId})
    const started = Date.now() - began
    return {sandboxId, containerId, imageRef, logPath: join(spec.logDirectory, logPath), sandboxConfig, timings: {sandbox, pull, created, started}}
  }

  async containerStatus(containerId: string): Promise<ContainerStatus> {
    const response = await call<{status: ContainerStatus}>(this.runtimeService, 'ContainerStatus', {container_id: containerId})
    return response.status
  }

  /** Polls ContainerStatus (as kubelet's PLEG does) until the container has exited. */
  async waitForExit(containerId: string, timeoutMs = 120_000): Promise<ContainerStatus> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const status = await this.containerStatus(containerId)
      if (status.state === 'CONTAINER_EXITED') return status
      if (Date.now() > deadline) throw new Error(`container ${containerId} still ${status.state} after ${timeoutMs} ms`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  async execSync(containerId: string, cmd: string[], timeoutSec = 60): Promise<{stdout: string; stderr: string; exit_code: number}> {
    const response = await call<{stdout: Buffer; stderr: Buffer; exit_code: number}>(this.runtimeService, 'ExecSync', {container_id: containerId, cmd, timeout: String(timeoutSec)})
    return {stdout: response.stdout.toString('utf8'), stderr: response.stderr.toString('utf8'), exit_code: response.exit_code}
  }

  async removePod(sandboxId: string): Promise<void> {
    await call(this.runtimeService, 'StopPodSandbox', {pod_sandbox_id: sandboxId})
    await call(this.runtimeService, 'RemovePodSandbox', {pod_sandbox_id: sandboxId})
  }

  async removeAllSandboxes(): Promise<void> {
    const {items} = await call<{items: Array<{id: string}>}>(this.runtimeService, 'ListPodSandbox', {})
    for (const {id} of items) await this.removePod(id)
  }
}

/** One line of a CRI container log: `<RFC3339Nano> <stdout|stderr> <P|F> <content>`. */
export interface CriLogLine {
  time: string
  stream: 'stdout' | 'stderr'
  content: string
}

/** The log's lines, partial (P) fragments joined up to their full (F) line. */
export function readCriLog(path: string): CriLogLine[] {
  if (!existsSync(path)) return []
  const lines: CriLogLine[] = []
  let pending = ''
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    if (!raw) continue
    const [time, stream, tag] = raw.split(' ', 3)
    const content = raw.slice(`${time} ${stream} ${tag} `.length)
    if (tag === 'P') {
      pending += content
      continue
    }
    lines.push({time: time!, stream: stream as 'stdout' | 'stderr', content: pending + content})
    pending = ''
  }
  return lines
}
