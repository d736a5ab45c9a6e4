// Where credentials come from: a list of small locators tried in order, the first answer wins,
// results memoised per registry. The default order is DOCKER_AUTH_CONFIG, config.json's
// credHelpers, its credsStore, its auths, then Amazon ECR for ECR hosts.
import {describeError, LazyError} from '../cli/errors.js'
import {DOCKER_HUB_CONFIG_KEY, DOCKER_HUB_DOMAIN} from '../oci/reference.js'
import {helperGet} from './cred-helper.js'
import {dockerConfigPath, lookupByRegistry, readDockerConfig, type DockerAuthEntry, type DockerConfig} from './docker-config.js'
import {ecrLocator, type EcrLocatorOptions} from './ecr.js'

export interface Credential {
  username?: string
  password?: string
  /** An identity (refresh) token for the OAuth2 token flow, from `identitytoken` or a helper's `<token>` user. */
  identityToken?: string
}

export interface CredentialLocator {
  readonly name: string
  find(registry: string): Promise<Credential | undefined>
}

export class CredentialStore {
  private readonly memo = new Map<string, Promise<Credential | undefined>>()

  constructor(readonly locators: CredentialLocator[]) {}

  /** The credential for `registry` (`docker.io`, `127.0.0.1:5000`), or undefined for anonymous. */
  get(registry: string): Promise<Credential | undefined> {
    let hit = this.memo.get(registry)
    if (!hit) {
      hit = this.locate(registry)
      this.memo.set(registry, hit)
      hit.catch(() => this.memo.delete(registry))
    }
    return hit
  }

  /** Forgets what was found for `registry` (a locator learned new credentials for it). */
  invalidate(registry: string): void {
    this.memo.delete(registry)
  }

  private async locate(registry: string): Promise<Credential | undefined> {
    for (const locator of this.locators) {
      const found = await locator.find(registry)
      if (found) return found
    }
    return undefined
  }
}

/** Credentials given directly (login checks them before anything is saved). */
export function staticLocator(registry: string, credential: Credential): CredentialLocator {
  return {name: 'static', find: async (r) => (r === registry ? credential : undefined)}
}

/** A docker config's (or a CRI AuthConfig's) `auth`: base64 of `user:password`; undefined when it is not. */
export function decodeBasicAuth(auth: string): {username: string; password: string} | undefined {
  const decoded = Buffer.from(auth, 'base64').toString('utf8')
  const colon = decoded.indexOf(':') // passwords may contain ':', user names may not
  return colon < 0 ? undefined : {username: decoded.slice(0, colon), password: decoded.slice(colon + 1)}
}

function fromAuthEntry(entry: DockerAuthEntry, where: string): Credential | undefined {
  if (entry.identitytoken) return {identityToken: entry.identitytoken, ...(entry.username ? {username: entry.username} : {})}
  if (entry.auth) {
    const decoded = decodeBasicAuth(entry.auth)
    if (!decoded) throw new LazyError('USAGE', `${where}: the "auth" value is not base64 of user:password`)
    return decoded
  }
  if (entry.username && entry.password) return {username: entry.username, password: entry.password}
  return undefined
}

function fromHelper(helper: string, registry: string): Promise<Credential | undefined> {
  const url = registry === DOCKER_HUB_DOMAIN ? DOCKER_HUB_CONFIG_KEY : registry
  return helperGet(helper, url).then((c) => {
    if (!c) return undefined
    if (c.Username === '<token>') return {identityToken: c.Secret}
    return {username: c.Username, password: c.Secret}
  })
}

export function envAuthConfigLocator(env: NodeJS.ProcessEnv = process.env): CredentialLocator {
  return {
    name: 'DOCKER_AUTH_CONFIG',
    async find(registry) {
      const text = env.DOCKER_AUTH_CONFIG
      if (!text) return undefined
      let config: DockerConfig
      try {
        config = JSON.parse(text) as DockerConfig
      } catch (err) {
        // V8's message quotes the text around the error, which here is a secret: only the position.
        const at = /position (\d+)/.exec(describeError(err))?.[1]
        throw new LazyError('USAGE', `DOCKER_AUTH_CONFIG is not valid JSON${at ? ` (at character ${at})` : ''}`)
      }
      const hit = lookupByRegistry(config.auths, registry)
      return hit ? fromAuthEntry(hit.value, 'DOCKER_AUTH_CONFIG') : undefined
    },
  }
}

/** Locators over one config.json, read once. */
export function dockerConfigLocators(path: string): CredentialLocator[] {
  let cached: DockerConfig | undefined
  const config = (): DockerConfig => (cached ??= readDockerConfig(path))
  return [
    {
      name: 'credHelpers',
      async find(registry) {
        const hit = lookupByRegistry(config().credHelpers, registry)
        return hit ? fromHelper(hit.value, registry) : undefined
      },
    },
    {
      name: 'credsStore',
      async find(registry) {
        const store = config().credsStore
        return store ? fromHelper(store, registry) : undefined
      },
    },
    {
      name: 'auths',
      async find(registry) {
        const hit = lookupByRegistry(config().auths, registry)
        return hit ? fromAuthEntry(hit.value, `${path}: auths["${hit.key}"]`) : undefined
      },
    },
  ]
}

export interface DefaultCredentialOptions {
  /** config.json path; default $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
  configPath?: string
  ecr?: EcrLocatorOptions
  env?: NodeJS.ProcessEnv
}

/** DOCKER_AUTH_CONFIG, config.json (helpers, store, auths), then ECR: the order of the default store. */
export function defaultCredentialLocators(options: DefaultCredentialOptions = {}): CredentialLocator[] {
  const env = options.env ?? process.env
  return [envAuthConfigLocator(env), ...dockerConfigLocators(options.configPath ?? dockerConfigPath(env)), ecrLocator(options.ecr)]
}

export function defaultCredentialStore(options: DefaultCredentialOptions = {}): CredentialStore {
  return new CredentialStore(defaultCredentialLocators(options))
}
