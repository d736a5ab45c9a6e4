// A bare image name (`host/repo:tag`) means containerd's image store, as in nerdctl: read an image
// that was pulled or built into containerd, or write one there (content + GC labels + image record,
// inside a lease so nothing half-written survives). Registers itself as the `containerd` transport.
import {Readable} from 'node:stream'
import {LazyError} from '../cli/errors.js'
import {DEFAULT_CONTAINERD_ADDRESS, DEFAULT_NAMESPACE} from '../cli/flags.js'
import {ContainerdConnection} from '../containerd/connection.js'
import {contentInfo, readContent, readContentBytes, setContentLabels, writeContent} from '../containerd/content.js'
import {getImage, putImage} from '../containerd/images.js'
import {createLease, deleteLease} from '../containerd/leases.js'
import {GC_REF_CONTENT} from '../containerd/pull.js'
import {parseManifest, type Descriptor} from '../oci/descriptor.js'
import {verifyBuffer} from '../oci/digest.js'
import {isManifestMediaType} from '../oci/media-types.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {registerTransport, type TransportContext} from './factory.js'
import type {CommitResult, ImageSink, ImageSource, ManifestBlob, PutBlobResult} from './types.js'

function connect(ctx: TransportContext): ContainerdConnection {
  return new ContainerdConnection({
    address: ctx.containerd?.address ?? process.env.CONTAINERD_ADDRESS ?? DEFAULT_CONTAINERD_ADDRESS,
    namespace: ctx.containerd?.namespace ?? process.env.CONTAINERD_NAMESPACE ?? DEFAULT_NAMESPACE,
  })
}

/** The normalised store name of a bare reference (`busybox` → `docker.io/library/busybox:latest`). */
export function storeName(rest: string): string {
  return formatReference(parseReference(rest))
}

export class ContainerdStoreSource implements ImageSource {
  constructor(
    private readonly conn: ContainerdConnection,
    readonly name: string,
    readonly description: string,
  ) {}

  async root(): Promise<ManifestBlob> {
    const image = await getImage(this.conn, this.name)
    if (!image) {
      throw new LazyError('IMAGE_NOT_FOUND', `image ${this.name} is not in containerd (namespace ${this.conn.namespace})`, {
        hint: `pull it first (lazyctl pull ${this.name}) or name another transport: docker://${this.name}`,
      })
    }
    return this.manifest(image.target)
  }

  async manifest(descriptor: Descriptor): Promise<ManifestBlob> {
    const bytes = await readContentBytes(this.conn, descriptor.digest)
    verifyBuffer(bytes, descriptor.digest, `${this.description}@${descriptor.digest}`)
    const parsed = parseManifest(bytes, descriptor.mediaType, `${this.description}@${descriptor.digest}`)
    return {descriptor: {...descriptor, mediaType: parsed.mediaType}, bytes, parsed}
  }

  async blob(descriptor: Descriptor): Promise<Readable> {
    if (!(await contentInfo(this.conn, descriptor.digest))) {
      throw new LazyError('BLOB_UNKNOWN', `blob ${descriptor.digest} of ${this.name} is not in containerd's content store`, {
        hint: 'a lazily pulled image has no layer blobs locally: read it from its registry (docker://…) instead',
      })
    }
    return Readable.from(readContent(this.conn, descriptor.digest))
  }

  async close(): Promise<void> {
    this.conn.close()
  }
}

export class ContainerdStoreSink implements ImageSink {
  private lease: string | undefined

  constructor(
    private readonly conn: ContainerdConnection,
    readonly name: string,
    readonly description: string,
  ) {}

  /** One lease for the whole write: blobs stay until the image record references them. */
  private async ensureLease(): Promise<string> {
    this.lease ??= await createLease(this.conn)
    return this.lease
  }

  async hasBlob(descriptor: Descriptor): Promise<boolean> {
    return (await contentInfo(this.conn, descriptor.digest)) !== undefined
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>): Promise<PutBlobResult> {
    const lease = await this.ensureLease()
    const kind = isManifestMediaType(descriptor.mediaType) ? 'manifest' : 'layer'
    const written = await writeContent(this.conn, {ref: `${kind}-${descriptor.digest}`, expected: descriptor.digest, size: descriptor.size, lease}, open)
    return written ? 'uploaded' : 'exists'
  }

  async putManifest(descriptor: Descriptor, bytes: Buffer): Promise<void> {
    const lease = await this.ensureLease()
    await writeContent(this.conn, {ref: `manifest-${descriptor.digest}`, expected: descriptor.digest, size: bytes.length, lease}, () => Readable.from([bytes]))
    await this.labelChildren(descriptor, bytes, lease)
  }

  async commit(root: Descriptor, bytes: Buffer): Promise<CommitResult> {
    verifyBuffer(bytes, root.digest, `${this.description}: root manifest`)
    const lease = await this.ensureLease()
    await writeContent(this.conn, {ref: `manifest-${root.digest}`, expected: root.digest, size: bytes.length, lease}, () => Readable.from([bytes]))
    await this.labelChildren(root, bytes, lease)
    await putImage(this.conn, this.name, {mediaType: root.mediaType, digest: root.digest, size: bytes.length}, {lease})
    await this.releaseLease()
    this.conn.close()
    return {digest: root.digest, reference: this.name}
  }

  async abort(): Promise<void> {
    await this.releaseLease()
    this.conn.close()
  }

  /** The GC references containerd expects from a manifest/index to what it names. */
  private async labelChildren(desc: Descriptor, bytes: Buffer, lease: string): Promise<void> {
    const parsed = parseManifest(bytes, desc.mediaType, this.description)
    const labels =
      parsed.kind === 'index'
        ? Object.fromEntries(parsed.index.manifests.map((m, i) => [`${GC_REF_CONTENT}.m.${i}`, m.digest]))
        : {
            [`${GC_REF_CONTENT}.config`]: parsed.manifest.config.digest,
            ...Object.fromEntries(parsed.manifest.layers.map((l, i) => [`${GC_REF_CONTENT}.l.${i}`, l.digest])),
          }
    await setContentLabels(this.conn, desc.digest, labels, lease)
  }

  private async releaseLease(): Promise<void> {
    const lease = this.lease
    this.lease = undefined
    if (lease) await deleteLease(this.conn, lease).catch(() => undefined)
  }
}

registerTransport('containerd', {
  name: "containerd's image store",
  source: async (rest, description, ctx) => new ContainerdStoreSource(connect(ctx), storeName(rest), description),
  sink: async (rest, description, ctx) => new ContainerdStoreSink(connect(ctx), storeName(rest), description),
})
