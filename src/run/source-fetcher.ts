// Feeds a pull from any image source of src/transport (a registry, an OCI layout or archive): the
// source's root is the top descriptor, manifests come through source.manifest(), blobs through
// source.blob(). The registry client is loaded only when a pull really happens, so `run` of an
// image already in containerd pays nothing for it.
import {Readable} from 'node:stream'
import type {ImageFetcher} from '../containerd/pull.js'
import type {Descriptor} from '../oci/descriptor.js'
import {isManifestMediaType} from '../oci/media-types.js'
import {formatReference, type ImageReference} from '../oci/reference.js'
import type {ImageSource, ManifestBlob} from '../transport/types.js'

export function fetcherFromSource(source: ImageSource): ImageFetcher {
  let root: ManifestBlob | undefined
  return {
    async resolve() {
      root = await source.root()
      return root.descriptor
    },
    async fetch(_ref: ImageReference, desc: Descriptor) {
      if (root && desc.digest === root.descriptor.digest) return Readable.from([root.bytes])
      if (isManifestMediaType(desc.mediaType)) return Readable.from([(await source.manifest(desc)).bytes])
      return source.blob(desc)
    },
  }
}

export interface RegistryFetcher extends ImageFetcher {
  close(): Promise<void>
}

/** A fetcher over the registry that `ref` names (docker config credentials, hosts.toml, loopback over HTTP). */
export async function registryFetcher(ref: ImageReference): Promise<RegistryFetcher> {
  const [{RegistryClient}, {RegistrySource}] = await Promise.all([import('../registry/client.js'), import('../transport/registry.js')])
  const client = new RegistryClient()
  const source = new RegistrySource(client, ref, `docker://${formatReference(ref)}`)
  return {...fetcherFromSource(source), close: () => client.close()}
}
