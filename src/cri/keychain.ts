// Kubernetes pull secrets for lazy reads. kubelet sends a pod's registry credentials only in
// PullImage's `auth`, to the image service; containerd uses them for the manifest and config and
// never hands them to a snapshotter, which reads every layer byte itself, on every FUSE miss, for as
// long as the pod runs. The image-service proxy (./image-service-proxy.ts) records them here, per
// image, and the snapshotter's registry client asks here after the docker config (stargz's
// `[cri_keychain]`, same order).
//
// Unlike stargz-snapshotter and soci-snapshotter, whose CRI credentials live in memory and are
// gone after a restart (stargz-snapshotter#1990, soci-snapshotter#1084) so that remounting a
// private image's layers fails, the keychain keeps them in a root-only file under the
// snapshotter's root (0600 in a 0700 directory, replaced atomically). They are never logged.
import {mkdirSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {describeError} from '../cli/errors.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {decodeBasicAuth, type Credential, type CredentialLocator} from '../registry/credentials.js'

/** PullImage's AuthConfig (runtime.v1), as kubelet fills it from a pull secret or a credential provider. */
export interface CriAuthConfig {
  username?: string
  password?: string
  /** base64 of `user:password` (a docker config's `auth`). */
  auth?: string
  server_address?: string
  identity_token?: string
  registry_token?: string
}

/**
 * The credential an AuthConfig gives for `registry`, as containerd's CRI plugin reads it
 * (ParseAuth): nothing when `server_address` names another host; then username + password, an
 * identity token, or the decoded `auth`, in that order. Undefined when it holds none of these.
 */
export function credentialFromAuthConfig(auth: CriAuthConfig | null | undefined, registry: string): Credential | undefined {
  if (!auth) return undefined
  if (auth.server_address && serverHost(auth.server_address) !== registry) return undefined
  if (auth.username) return {username: auth.username, password: auth.password ?? ''}
  if (auth.identity_token) return {identityToken: auth.identity_token}
  const decoded = auth.auth ? decodeBasicAuth(auth.auth) : undefined
  return decoded?.username ? decoded : undefined
}

/** `https://host:port/v1/` or a bare `host:port`, as docker configs and kubelet spell a server. */
function serverHost(address: string): string {
  try {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(address)) return new URL(address).host
  } catch {
    return address
  }
  return address.replace(/\/.*$/, '')
}

interface StoredEntry {
  registry: string
  credential: Credential
  /** ms since the epoch; the newest entry of a registry answers for it. */
  recordedAt: number
}

const FILE_VERSION = 1

export interface CriKeychainOptions {
  /** The file the credentials are kept in (root-only). */
  file: string
  /** Reports a file that could not be read or written; never the credentials. */
  onError?: (message: string) => void
}

export class CriKeychain {
  private readonly byImage = new Map<string, StoredEntry>()
  /** Called with the registry whose credentials changed (the registry client drops what it cached). */
  onChange?: (registry: string) => void

  constructor(private readonly options: CriKeychainOptions) {
    this.load()
  }

  /** Where the snapshotter keeps the keychain under its root. */
  static fileUnder(root: string): string {
    return join(root, 'cri', 'credentials.json')
  }

  /**
   * Records PullImage's credentials for `image`, before containerd pulls (the Prepares of the pull
   * read through them). An unparsable reference or an AuthConfig without a credential for the
   * image's registry records nothing. `undo` puts back what was there: kubelet tries each of a
   * pod's pull secrets in turn, and a secret the pull failed with must not replace one that works.
   */
  record(image: string, auth: CriAuthConfig | null | undefined): {registry: string; undo(): void} | undefined {
    const key = normalize(image)
    if (!key) return undefined
    const credential = credentialFromAuthConfig(auth, key.registry)
    if (!credential) return undefined
    const previous = this.byImage.get(key.name)
    this.set(key.name, {registry: key.registry, credential, recordedAt: Date.now()}, previous)
    return {
      registry: key.registry,
      undo: () => {
        if (previous) this.set(key.name, previous, this.byImage.get(key.name))
        else if (this.byImage.delete(key.name)) this.changed(key.registry)
      },
    }
  }

  private set(name: string, entry: StoredEntry, previous: StoredEntry | undefined): void {
    this.byImage.set(name, entry)
    if (!previous || JSON.stringify(previous.credential) !== JSON.stringify(entry.credential)) this.changed(entry.registry)
  }

  private changed(registry: string): void {
    this.save()
    this.onChange?.(registry)
  }

  /** Drops what was recorded for `image` (RemoveImage); an image ID or unknown name is a no-op. */
  forget(image: string): void {
    const key = normalize(image)
    if (key && this.byImage.delete(key.name)) this.changed(key.registry)
  }

  /** The newest credential recorded for an image of `registry`. */
  find(registry: string): Credential | undefined {
    let newest: StoredEntry | undefined
    for (const entry of this.byImage.values()) {
      if (entry.registry === registry && (!newest || entry.recordedAt >= newest.recordedAt)) newest = entry
    }
    return newest?.credential
  }

  /** How many images have credentials (for status; never the credentials). */
  get size(): number {
    return this.byImage.size
  }

  locator(): CredentialLocator {
    return {name: 'cri_keychain', find: async (registry) => this.find(registry)}
  }

  private load(): void {
    let text: string
    try {
      text = readFileSync(this.options.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.options.onError?.(`cannot read ${this.options.file}: ${describeError(err)}`)
      return
    }
    try {
      const parsed = JSON.parse(text) as {version?: number; images?: Record<string, StoredEntry>}
      if (parsed.version !== FILE_VERSION || typeof parsed.images !== 'object' || parsed.images === null) throw new Error(`not a version ${FILE_VERSION} keychain`)
      for (const [name, entry] of Object.entries(parsed.images)) {
        if (typeof entry?.registry === 'string' && typeof entry.credential === 'object' && entry.credential !== null) this.byImage.set(name, entry)
      }
    } catch (err) {
      // A damaged file loses only what it held: pods pulled again record their secrets anew.
      this.options.onError?.(`${this.options.file} is not a lazyctl CRI keychain (${describeError(err)}); starting empty`)
    }
  }

  private save(): void {
    const file = this.options.file
    const temp = `${file}.${process.pid}.tmp`
    try {
      mkdirSync(dirname(file), {recursive: true, mode: 0o700})
      writeFileSync(temp, `${JSON.stringify({version: FILE_VERSION, images: Object.fromEntries(this.byImage)})}\n`, {mode: 0o600})
      renameSync(temp, file)
    } catch (err) {
      // Still in memory, so lazy reads keep working until a restart.
      this.options.onError?.(`cannot write ${file}: ${describeError(err)}`)
    }
  }
}

/** The key images are recorded under: the reference as containerd normalises it (docker.io/library/…). */
function normalize(image: string): {name: string; registry: string} | undefined {
  // An image ID (what kubelet's image GC removes by) names no registry.
  if (/^(sha256:)?[a-f0-9]{64}$/.test(image)) return undefined
  try {
    const ref = parseReference(image)
    return {name: formatReference(ref), registry: ref.registry}
  } catch {
    return undefined
  }
}
