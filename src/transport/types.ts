// One interface for reading and writing images, whatever holds them: a registry, an OCI layout
// directory or archive, a docker-save archive, or containerd's image store.
import type {Readable} from 'node:stream'
import type {RandomAccessSource} from '../estargz/random-access.js'
import type {Descriptor, ParsedManifest} from '../oci/descriptor.js'

export interface ManifestBlob {
  descriptor: Descriptor
  bytes: Buffer
  parsed: ParsedManifest
}

/** Where an image lives in a registry (for cross-repository mounts between source and sink). */
export interface RegistryLocation {
  registry: string
  repository: string
}

export interface ImageSource {
  /** As the user wrote it, for messages (`oci-archive:/tmp/x.tar:v1`). */
  readonly description: string
  readonly registryLocation?: RegistryLocation
  /** The top-level object the name points at: an index or an image manifest. */
  root(): Promise<ManifestBlob>
  /** A manifest named by a descriptor of an index, verified against its digest. */
  manifest(descriptor: Descriptor): Promise<ManifestBlob>
  /** A blob as a stream that fails (DIGEST_MISMATCH) rather than ends when the bytes are wrong. */
  blob(descriptor: Descriptor): Promise<Readable>
  /** Random access to a blob, where the transport can offer it cheaply. */
  blobRange?(descriptor: Descriptor): Promise<RandomAccessSource & {close?(): Promise<void>}>
  close(): Promise<void>
}

export type PutBlobResult = 'exists' | 'mounted' | 'uploaded'

export interface PutBlobOptions {
  /** The source's registry location, to mount instead of upload when on the same registry. */
  mountFrom?: RegistryLocation
  onProgress?: (bytes: number) => void
  /** The stream from `open` already fails on a digest mismatch (ImageSource blobs do): do not hash again. */
  sourceVerified?: boolean
}

export interface CommitResult {
  /** Digest of the root manifest or index written. */
  digest: string
  /** Where it can be found again, e.g. `docker://127.0.0.1:5000/demo:esgz`. */
  reference: string
}

export interface ImageSink {
  readonly description: string
  readonly registryLocation?: RegistryLocation
  hasBlob(descriptor: Descriptor): Promise<boolean>
  /** Stores a blob; `open` may be called more than once (retries) and must give the same bytes each time. */
  putBlob(descriptor: Descriptor, open: () => Promise<Readable>, options?: PutBlobOptions): Promise<PutBlobResult>
  /** Stores a manifest that an index will reference (not tagged). */
  putManifest(descriptor: Descriptor, bytes: Buffer): Promise<void>
  /**
   * Stores the root manifest or index under the sink's name and makes the image visible. Until
   * this returns, nothing at the destination looks like a complete image.
   */
  commit(root: Descriptor, bytes: Buffer): Promise<CommitResult>
  /** Drops whatever was staged; safe to call after a failure at any point. */
  abort(): Promise<void>
}
