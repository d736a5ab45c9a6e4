// `docker://host/repo[:tag|@digest]`: images in an OCI distribution registry.
import type {Readable} from 'node:stream'
import {LazyError} from '../cli/errors.js'
import type {Descriptor} from '../oci/descriptor.js'
import {parseManifest} from '../oci/descriptor.js'
import {verifyBuffer, type Digest} from '../oci/digest.js'
import {formatReference, parseReference, type ImageReference} from '../oci/reference.js'
import type {RegistryClient} from '../registry/client.js'
import type {CommitResult, ImageSink, ImageSource, ManifestBlob, PutBlobOptions, PutBlobResult, RegistryLocation} from './types.js'

export class RegistrySource implements ImageSource {
  readonly registryLocation: RegistryLocation

  constructor(
    readonly client: RegistryClient,
    readonly ref: ImageReference,
    readonly description = `docker://${formatReference(ref)}`,
  ) {
    this.registryLocation = {registry: ref.registry, repository: ref.repository}
  }

  async root(): Promise<ManifestBlob> {
    return this.client.getManifest(this.ref)
  }

  async manifest(descriptor: Descriptor): Promise<ManifestBlob> {
    const got = await this.client.getManifest(this.ref, descriptor.digest)
    // The registry's Content-Type decides the kind, but it must agree with the parent's descriptor.
    const parsed = parseManifest(got.bytes, descriptor.mediaType, `${this.description}@${descriptor.digest}`)
    return {descriptor: {...got.descriptor, mediaType: parsed.mediaType}, bytes: got.bytes, parsed}
  }

  async blob(descriptor: Descriptor): Promise<Readable> {
    return this.client.getBlob(this.ref, descriptor)
  }

  async blobRange(descriptor: Descriptor) {
    return this.client.blobRangeSource(this.ref, descriptor.digest, descriptor.size)
  }

  async close(): Promise<void> {}
}

export class RegistrySink implements ImageSink {
  readonly registryLocation: RegistryLocation

  constructor(
    readonly client: RegistryClient,
    readonly ref: ImageReference,
    readonly description = `docker://${formatReference(ref)}`,
  ) {
    this.registryLocation = {registry: ref.registry, repository: ref.repository}
  }

  hasBlob(descriptor: Descriptor): Promise<boolean> {
    return this.client.blobExists(this.ref, descriptor.digest)
  }

  async putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options: PutBlobOptions = {}): Promise<PutBlobResult> {
    const mountFrom = options.mountFrom && options.mountFrom.registry === this.ref.registry ? options.mountFrom.repository : undefined
    return this.client.pushBlob(this.ref, descriptor, open, {sourceVerified: options.sourceVerified === true, ...(mountFrom ? {mountFrom} : {}), ...(options.onProgress ? {onProgress: options.onProgress} : {})})
  }

  async putManifest(descriptor: Descriptor, bytes: Buffer): Promise<void> {
    verifyBuffer(bytes, descriptor.digest, `manifest ${descriptor.digest}`)
    await this.client.putManifest(this.ref, bytes, descriptor.mediaType, descriptor.digest)
  }

  async commit(root: Descriptor, bytes: Buffer): Promise<CommitResult> {
    verifyBuffer(bytes, root.digest, `manifest ${root.digest}`)
    const target = this.ref.tag ?? root.digest
    if (this.ref.digest && this.ref.digest !== root.digest) {
      throw new LazyError('DIGEST_MISMATCH', `${this.description} names digest ${this.ref.digest}, but the image written is ${root.digest}`)
    }
    const digest: Digest = await this.client.putManifest(this.ref, bytes, root.mediaType, target)
    const tagged = this.ref.tag ? `:${this.ref.tag}` : ''
    return {digest, reference: `docker://${this.ref.registry}/${this.ref.repository}${tagged}@${digest}`}
  }

  async abort(): Promise<void> {
    // Blobs already uploaded are content-addressed and invisible until a manifest names them;
    // no manifest was pushed, so there is nothing to undo.
  }
}

export function parseDockerName(rest: string): ImageReference {
  return parseReference(rest.replace(/^\/\//, ''))
}
