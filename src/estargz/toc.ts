// The eStargz table of contents (`stargz.index.json`): JSON types and the format's constants.
// Field names and meanings follow the eStargz spec (../shared/ref/estargz.md §1.4); every key but
// `name` and `type` is optional in JSON, as the reference writer omits zero values.
import type {ImageManifest} from '../oci/descriptor.js'

/** Name of the TOC tar entry, always the last entry of the blob. */
export const TOC_TAR_NAME = 'stargz.index.json'

/** Landmark written after the prioritized files; its `offset` ends the prefetch range. */
export const PREFETCH_LANDMARK = '.prefetch.landmark'
/** Landmark written first when there are no prioritized files: "do not prefetch". */
export const NO_PREFETCH_LANDMARK = '.no.prefetch.landmark'
/** The single byte of content both landmark files carry. */
export const LANDMARK_CONTENT = 0x0f

/** Layer-descriptor annotation carrying `sha256:<hex>` of the uncompressed TOC JSON. */
export const TOC_DIGEST_ANNOTATION = 'containerd.io/snapshot/stargz/toc.digest'

/** The digests of a manifest's eStargz layers (those that name their TOC's digest): what a lazy snapshotter mounts. */
export function eStargzLayerDigests(manifest: ImageManifest): string[] {
  return manifest.layers.filter((layer) => layer.annotations?.[TOC_DIGEST_ANNOTATION]).map((layer) => layer.digest)
}
/** Layer-descriptor annotation carrying the decimal size of the decompressed blob. */
export const UNCOMPRESSED_SIZE_ANNOTATION = 'io.containers.estargz.uncompressed-size'

/** Size of the eStargz footer (an empty gzip member with an 'S','G' extra subfield). */
export const FOOTER_SIZE = 51
/** Size of the legacy (crfs) stargz footer. */
export const LEGACY_FOOTER_SIZE = 47
/** The largest footer a reader must fetch to try every footer format it knows. */
export const MAX_FOOTER_SIZE = FOOTER_SIZE

/** The only TOC version defined. */
export const TOC_VERSION = 1

/** Default uncompressed size of one eStargz chunk (4 MiB, as the reference writer). */
export const DEFAULT_CHUNK_SIZE = 4 << 20
/** Default gzip level (9, as nerdctl and ctr-remote). */
export const DEFAULT_COMPRESSION_LEVEL = 9

/**
 * Largest TOC lazyctl accepts, compressed and uncompressed alike. A TOC is held in memory whole, so
 * a hostile blob must not make us allocate without bound; 64 MiB of JSON is several hundred
 * thousand entries, far beyond real layers.
 */
export const MAX_TOC_SIZE = 64 << 20

/**
 * Bounds on what one layer can make a reader hold or compute, well above real layers: a Debian
 * root filesystem has ~8,400 entries and 4 MiB chunks; 64 MiB of TOC JSON holds about 200,000 real
 * entries (~300 bytes each), and only hostile TOCs pack more. A layer over a bound is refused (the
 * snapshotter then downloads it in full, saying why) instead of growing the daemon.
 */
export const MAX_TOC_ENTRIES = 1_000_000
/** Largest uncompressed chunk: 16x the reference writer's default, and what `--chunk-size` allows. */
export const MAX_CHUNK_SIZE = 64 << 20
/**
 * Largest compressed span one chunk's read may fetch (its data, plus the tar headers of entries
 * without data that share its gzip member).
 */
export const MAX_CHUNK_SPAN = MAX_CHUNK_SIZE + (32 << 20)

export type TocEntryType = 'dir' | 'reg' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo' | 'chunk'

export const TOC_ENTRY_TYPES: readonly TocEntryType[] = ['dir', 'reg', 'symlink', 'hardlink', 'char', 'block', 'fifo', 'chunk']

/** One TOC entry, exactly as it appears in the JSON. */
export interface TocEntry {
  /** Path as stored in the tar (e.g. `bin/`, `./usr/x`); readers normalize it. */
  name: string
  type: TocEntryType
  /** Uncompressed size of a `reg` file. */
  size?: number
  /** UTC RFC 3339, second precision. */
  modtime?: string
  /** Target of a `symlink`, or the name of the entry a `hardlink` shares content with. */
  linkName?: string
  /** Raw tar header mode (may include type bits). */
  mode?: number
  uid?: number
  gid?: number
  /** Written only on the first entry with a given uid; readers back-fill. */
  userName?: string
  groupName?: string
  devMajor?: number
  devMinor?: number
  /** Extended attributes; values are base64 (Go's []byte JSON encoding). */
  xattrs?: Record<string, string>
  /** `sha256:<hex>` of the whole regular file. */
  digest?: string
  /** Compressed offset of the gzip member where this payload starts. */
  offset?: number
  /** Uncompressed offset of the payload inside that member (min-chunk-size packing). */
  innerOffset?: number
  /** Offset of this chunk within the uncompressed file. */
  chunkOffset?: number
  /** Uncompressed size of this chunk; 0/absent on the last chunk means "to end of file". */
  chunkSize?: number
  /** `sha256:<hex>` of this chunk's uncompressed bytes. */
  chunkDigest?: string
}

/** The TOC document. */
export interface Toc {
  version: number
  entries: TocEntry[]
}
