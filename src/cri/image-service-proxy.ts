// The CRI image service on the snapshotter's socket (stargz-snapshotter's `[cri_keychain]`): a node
// whose kubelet runs with `--image-service-endpoint` (or `imageServiceEndpoint`) pointing at the
// snapshotter sends its image calls here. Every call goes on to containerd's CRI plugin as the
// bytes kubelet sent and comes back as the bytes containerd answered, so fields this proto subset
// does not list survive; PullImage's credentials are recorded first (the lazy reads of the layers
// containerd is about to Prepare need them), RemoveImage's name is forgotten after it succeeds.
import * as grpc from '@grpc/grpc-js'
import {apiSchema, CRI_DESCRIPTOR_FILE} from '../containerd/api-descriptor.js'
import type {Logger} from '../snapshotter/log.js'
import type {CriAuthConfig, CriKeychain} from './keychain.js'

export const IMAGE_SERVICE = 'runtime.v1.ImageService'

export interface ImageServiceProxyOptions {
  /** containerd's socket (its CRI plugin serves runtime.v1 there). */
  backendSocket: string
  keychain: CriKeychain
  log: Logger
  /**
   * Called with the image of each PullImage before it goes on to containerd: the snapshotter starts
   * reading the image's layer metadata while containerd fetches its manifest and config.
   */
  onPullImage?: (image: string) => void
}

interface PullImageRequest {
  image: {image: string} | null
  auth: CriAuthConfig | null
}

interface RemoveImageRequest {
  image: {image: string} | null
}

const passThrough = (bytes: Buffer): Buffer => bytes

/**
 * Adds runtime.v1.ImageService to `server`, forwarding to containerd. Returns a close function for
 * the backend connection.
 */
export function addImageServiceProxy(server: grpc.Server, options: ImageServiceProxyOptions): () => void {
  const schema = apiSchema(CRI_DESCRIPTOR_FILE, 'number')
  const methods = schema.node(IMAGE_SERVICE)?.methods
  if (!methods) throw new Error(`${IMAGE_SERVICE} is not in ${CRI_DESCRIPTOR_FILE}`)
  const backend = new grpc.Client(`unix://${options.backendSocket}`, grpc.credentials.createInsecure())
  const pullRequest = schema.message('runtime.v1.PullImageRequest')
  const removeRequest = schema.message('runtime.v1.RemoveImageRequest')
  const log = options.log.with({component: 'cri-image-service'})

  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {}
  const handlers: grpc.UntypedServiceImplementation = {}
  for (const name of Object.keys(methods)) {
    const path = `/${IMAGE_SERVICE}/${name}`
    definition[name] = {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: passThrough,
      requestDeserialize: passThrough,
      responseSerialize: passThrough,
      responseDeserialize: passThrough,
    }
    const handler: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
      let after: (() => void) | undefined
      let failed: (() => void) | undefined
      try {
        if (name === 'PullImage') {
          const request = pullRequest.decode(call.request) as unknown as PullImageRequest
          const image = request.image?.image ?? ''
          const recorded = options.keychain.record(image, request.auth)
          failed = recorded?.undo
          log.info('PullImage', {image, credentials: recorded ? `recorded for ${recorded.registry}` : 'none'})
          if (image) options.onPullImage?.(image)
        } else if (name === 'RemoveImage') {
          const image = (removeRequest.decode(call.request) as unknown as RemoveImageRequest).image?.image ?? ''
          after = () => options.keychain.forget(image)
        }
      } catch (err) {
        // The bytes are not what runtime.v1 says: containerd would refuse them too, with its reason.
        log.warn(`${name}: request not decodable, forwarded as is`, {error: err instanceof Error ? err.message : String(err)})
      }
      const deadline = call.getDeadline()
      backend.makeUnaryRequest(path, passThrough, passThrough, call.request, call.metadata.clone(), {deadline}, (err, response) => {
        if (err) {
          failed?.()
          callback(backendError(err, options.backendSocket))
          return
        }
        after?.()
        callback(null, response)
      })
    }
    handlers[name] = handler
  }
  server.addService(definition, handlers)
  return () => backend.close()
}

/** containerd's own status passes through; an unreachable containerd is said so, in one line. */
function backendError(err: grpc.ServiceError, socket: string): Partial<grpc.StatusObject> {
  if (err.code === grpc.status.UNAVAILABLE) {
    return {code: grpc.status.UNAVAILABLE, details: `lazyctl's CRI image service cannot reach containerd at ${socket} ([cri_keychain] image_service_path): ${err.details}`}
  }
  return {code: err.code, details: err.details, metadata: err.metadata}
}
