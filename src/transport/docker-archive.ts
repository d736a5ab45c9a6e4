// `docker-archive:FILE[:NAME:TAG]`: the `docker save` format (manifest.json naming a config file
// and layer tars). Read only: the archive carries no manifest, so one is made (Docker schema 2)
// from the config and the layers, each hashed once to get its digest.
import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {pipeline} from 'node:stream'
import type {Readable} from 'node:stream'
import {LazyError} from '../cli/errors.js'
import {encodeJson, parseManifest, type Descriptor, type ImageManifest} from '../oci/descriptor.js'
import {DigestVerifier, sha256Digest, short, type Digest} from '../oci/digest.js'
import {MEDIA_TYPE_DOCKER_CONFIG, MEDIA_TYPE_DOCKER_LAYER, MEDIA_TYPE_DOCKER_LAYER_GZIP, MEDIA_TYPE_DOCKER_MANIFEST} from '../oci/media-types.js'
import {formatReference, parseReference} from '../oci/reference.js'
import {TarIndex} from './tar-index.js'
import type {ImageSource, ManifestBlob} from './types.js'

interface SaveEntry {
  Config: string
  RepoTags?: string[] | null
  Layers: string[]
}

/** Splits `FILE[:NAME:TAG]`, taking the shortest prefix that is an existing file as FILE. */
export function splitArchiveSpec(spec: string): {file: string; name?: string} {
  if (existsSync(spec)) return {file: spec}
  for (let i = spec.indexOf(':'); i > 0; i = spec.indexOf(':', i + 1)) {
    if (existsSync(spec.slice(0, i))) return {file: spec.slice(0, i), name: spec.slice(i + 1)}
  }
  return {file: spec}
}

export async function openDockerArchiveSource(file: string, name: string | undefined, description: string): Promise<ImageSource> {
  const tar = await TarIndex.open(file)
  try {
    if (!tar.has('manifest.json')) throw new LazyError('NOT_FOUND', `${description}: no manifest.json (not a docker save archive)`)
    let entries: SaveEntry[]
    try {
      entries = JSON.parse((await tar.read('manifest.json')).toString('utf8')) as SaveEntry[]
      if (!Array.isArray(entries)) throw new Error('not a list')
    } catch (err) {
      throw new LazyError('UNSUPPORTED_MEDIA_TYPE', `${description}: manifest.json is not a docker save manifest`, {cause: err})
    }
    let entry: SaveEntry | undefined
    if (name) {
      const wanted = formatReference(parseReference(name))
      entry = entries.find((e) => (e.RepoTags ?? []).some((t) => formatReference(parseReference(t)) === wanted))
      if (!entry) throw new LazyError('MANIFEST_UNKNOWN', `${description}: no image named ${name} in the archive`)
    } else if (entries.length === 1) {
      entry = entries[0]
    } else {
      throw new LazyError('USAGE', `${description}: the archive holds ${entries.length} images; name one with :NAME:TAG`)
    }
    const members = new Map<Digest, string>()
    const configBytes = await tar.read(clean(entry!.Config))
    const config: Descriptor = {mediaType: MEDIA_TYPE_DOCKER_CONFIG, digest: sha256Digest(configBytes), size: configBytes.length}
    members.set(config.digest, clean(entry!.Config))
    const layers: Descriptor[] = []
    for (const layerName of entry!.Layers) {
      const member = clean(layerName)
      const {digest, size, gzip} = await hashMember(tar, member)
      layers.push({mediaType: gzip ? MEDIA_TYPE_DOCKER_LAYER_GZIP : MEDIA_TYPE_DOCKER_LAYER, digest, size})
      members.set(digest, member)
    }
    const manifest: ImageManifest = {schemaVersion: 2, mediaType: MEDIA_TYPE_DOCKER_MANIFEST, config, layers}
    const bytes = encodeJson(manifest)
    const rootBlob: ManifestBlob = {
      descriptor: {mediaType: MEDIA_TYPE_DOCKER_MANIFEST, digest: sha256Digest(bytes), size: bytes.length},
      bytes,
      parsed: parseManifest(bytes, MEDIA_TYPE_DOCKER_MANIFEST, description),
    }
    return {
      description,
      async root() {
        return rootBlob
      },
      async manifest(d) {
        if (d.digest !== rootBlob.descriptor.digest) throw new LazyError('MANIFEST_UNKNOWN', `${description}: no manifest ${short(d.digest)}`)
        return rootBlob
      },
      async blob(d) {
        const member = members.get(d.digest)
        if (!member) throw new LazyError('BLOB_UNKNOWN', `${description}: no blob ${short(d.digest)}`)
        const verifier = new DigestVerifier(d.digest, {size: d.size, what: `${description}: ${member}`})
        pipeline(tar.stream(member), verifier, () => undefined)
        return verifier as Readable
      },
      async blobRange(d) {
        const member = members.get(d.digest)
        if (!member) throw new LazyError('BLOB_UNKNOWN', `${description}: no blob ${short(d.digest)}`)
        return {size: d.size, readAt: (offset: number, length: number) => tar.readAt(member, offset, length)}
      },
      close: () => tar.close(),
    }
  } catch (err) {
    await tar.close()
    throw err
  }
}

function clean(name: string): string {
  return name.replace(/^\.?\/+/, '')
}

async function hashMember(tar: TarIndex, member: string): Promise<{digest: Digest; size: number; gzip: boolean}> {
  const hash = createHash('sha256')
  let size = 0
  let head: Buffer | undefined
  for await (const chunk of tar.stream(member)) {
    const b = chunk as Buffer
    head ??= b.subarray(0, 2)
    hash.update(b)
    size += b.length
  }
  return {digest: `sha256:${hash.digest('hex')}`, size, gzip: !!head && head[0] === 0x1f && head[1] === 0x8b}
}
