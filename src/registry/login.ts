// `lazyctl login` / `logout`: credentials are checked against the registry before anything is
// saved, then stored where docker would look for them: the host's credHelper, else credsStore,
// else config.json's auths (written atomically, mode 0600).
import {LazyError} from '../cli/errors.js'
import {DOCKER_HUB_DOMAIN} from '../oci/reference.js'
import {RegistryClient} from './client.js'
import {helperErase, helperStore} from './cred-helper.js'
import {CredentialStore, staticLocator} from './credentials.js'
import {configKeyFor, dockerConfigPath, hostOfConfigKey, lookupByRegistry, readDockerConfig, writeDockerConfig} from './docker-config.js'
import type {HostsOptions} from './hosts.js'

export interface LoginOptions extends HostsOptions {
  /** Registry host; default docker.io. URLs like https://index.docker.io/v1/ are accepted. */
  server?: string
  username: string
  password: string
  /** config.json to update; default $DOCKER_CONFIG/config.json or ~/.docker/config.json. */
  configPath?: string
}

export interface LoginResult {
  server: string
  /** Where the credential went: `config.json` path or `docker-credential-<helper>`. */
  storedIn: string
}

/** Normalises what users type as SERVER (`https://host/v2/`, `index.docker.io`) to a host. */
export function normaliseServer(server: string | undefined): string {
  if (!server) return DOCKER_HUB_DOMAIN
  const host = hostOfConfigKey(server.trim())
  if (!host || /\s/.test(host)) throw new LazyError('INVALID_REFERENCE', `"${server}" is not a registry host`)
  return host
}

export async function login(options: LoginOptions): Promise<LoginResult> {
  const server = normaliseServer(options.server)
  if (!options.username) throw new LazyError('USAGE', 'login needs a user name (-u)')
  if (!options.password) throw new LazyError('USAGE', 'login needs a password (-p or --password-stdin)')
  const credential = {username: options.username, password: options.password}
  const client = new RegistryClient({
    ...(options.hostsDir ? {hostsDir: options.hostsDir} : {}),
    ...(options.insecureRegistries ? {insecureRegistries: options.insecureRegistries} : {}),
    credentials: new CredentialStore([staticLocator(server, credential)]),
  })
  try {
    await client.checkAuth({registry: server, repository: ''})
  } finally {
    await client.close()
  }

  const path = options.configPath ?? dockerConfigPath()
  const config = readDockerConfig(path)
  const helper = lookupByRegistry(config.credHelpers, server)?.value ?? config.credsStore
  const key = configKeyFor(server)
  if (helper) {
    await helperStore(helper, {ServerURL: key, Username: credential.username, Secret: credential.password})
    // docker keeps an empty auths entry so `docker info` lists the registry; keep that habit.
    config.auths = {...(config.auths ?? {}), [key]: {}}
    writeDockerConfig(path, config)
    return {server, storedIn: `docker-credential-${helper}`}
  }
  const auths = {...(config.auths ?? {})}
  const existing = lookupByRegistry(auths, server)
  if (existing) delete auths[existing.key]
  auths[key] = {auth: Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}
  writeDockerConfig(path, {...config, auths})
  return {server, storedIn: path}
}

export interface LogoutResult {
  server: string
  /** False when there was nothing stored for the server. */
  removed: boolean
}

export async function logout(options: {server?: string; configPath?: string} = {}): Promise<LogoutResult> {
  const server = normaliseServer(options.server)
  const path = options.configPath ?? dockerConfigPath()
  const config = readDockerConfig(path)
  let removed = false
  const helper = lookupByRegistry(config.credHelpers, server)?.value ?? config.credsStore
  if (helper) removed = await helperErase(helper, configKeyFor(server)).catch((err: unknown) => {
    if (err instanceof LazyError && err.code === 'MISSING_DEPENDENCY') return false
    throw err
  })
  const auths = {...(config.auths ?? {})}
  for (;;) {
    const hit = lookupByRegistry(auths, server)
    if (!hit) break
    delete auths[hit.key]
    removed = true
  }
  if (removed) writeDockerConfig(path, {...config, auths})
  return {server, removed}
}
