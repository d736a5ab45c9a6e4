// Amazon ECR: a private registry host `<account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]` gets
// a 12-hour Basic credential (`AWS:<password>`) from GetAuthorizationToken, via the AWS SDK's
// usual credential chain. Tokens are cached in memory until shortly before they expire.
import {LazyError, describeError} from '../cli/errors.js'
import type {Credential, CredentialLocator} from './credentials.js'

const ECR_HOST = /^([a-zA-Z0-9][a-zA-Z0-9-_]*)\.dkr\.ecr(-fips)?\.([a-zA-Z0-9][a-zA-Z0-9-_]*)\.amazonaws\.com(\.cn)?(:\d+)?$/

export interface EcrHost {
  account: string
  region: string
  fips: boolean
}

export function parseEcrHost(host: string): EcrHost | undefined {
  const m = ECR_HOST.exec(host)
  if (!m) return undefined
  return {account: m[1]!, region: m[3]!, fips: !!m[2]}
}

export interface EcrLocatorOptions {
  /** ECR API endpoint override (a stand-in in tests); otherwise the SDK's own resolution (incl. AWS_ENDPOINT_URL_ECR). */
  endpoint?: string
  /** Refresh this long before expiry. */
  refreshMarginMs?: number
}

export function ecrLocator(options: EcrLocatorOptions = {}): CredentialLocator {
  const cache = new Map<string, {credential: Credential; expiresAt: number}>()
  const margin = options.refreshMarginMs ?? 5 * 60_000
  return {
    name: 'ecr',
    async find(registry) {
      const host = parseEcrHost(registry)
      if (!host) return undefined
      const key = `${host.region}/${host.account}`
      const hit = cache.get(key)
      if (hit && hit.expiresAt - margin > Date.now()) return hit.credential
      // Loaded only for ECR hosts: the SDK costs ~0.2 s of CPU at every start of lazyctl run and the snapshotter.
      const {ECRClient, GetAuthorizationTokenCommand} = await import('@aws-sdk/client-ecr')
      const client = new ECRClient({region: host.region, ...(options.endpoint ? {endpoint: options.endpoint} : {}), ...(host.fips ? {useFipsEndpoint: true} : {})})
      try {
        const out = await client.send(new GetAuthorizationTokenCommand({}))
        const data = out.authorizationData?.[0]
        if (!data?.authorizationToken) throw new Error('GetAuthorizationToken returned no token')
        const decoded = Buffer.from(data.authorizationToken, 'base64').toString('utf8')
        const colon = decoded.indexOf(':')
        if (colon < 0) throw new Error('GetAuthorizationToken returned a malformed token')
        const credential: Credential = {username: decoded.slice(0, colon), password: decoded.slice(colon + 1)}
        const expiresAt = data.expiresAt ? new Date(data.expiresAt).getTime() : Date.now() + 12 * 3600_000
        cache.set(key, {credential, expiresAt})
        return credential
      } catch (err) {
        throw new LazyError('AUTH_FAILED', `ECR GetAuthorizationToken for ${registry} failed: ${describeError(err)}`, {
          cause: err,
          hint: 'check the AWS credentials and region (AWS_PROFILE, AWS_ACCESS_KEY_ID, instance role) and ecr:GetAuthorizationToken permission',
        })
      } finally {
        client.destroy()
      }
    },
  }
}
