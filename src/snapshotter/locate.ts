// Where the snapshotter lives, for every command that talks to it (status, run, pull): the flag
// --snapshotter-socket (env LAZYCTL_SNAPSHOTTER_SOCKET), else the config file (--config or env
// LAZYCTL_CONFIG, default /etc/lazyctl/config.toml), else the stargz-compatible default.
import {DEFAULT_CONFIG_FILE, loadSnapshotterConfig} from './config.js'

export const SNAPSHOTTER_SOCKET_ENV = 'LAZYCTL_SNAPSHOTTER_SOCKET'
export const CONFIG_FILE_ENV = 'LAZYCTL_CONFIG'

export interface LocateOptions {
  /** The value of --snapshotter-socket, if given (oclif already folds the env var into it). */
  socket?: string
  /** An explicit config file; otherwise LAZYCTL_CONFIG, otherwise the default path. */
  configFile?: string
  env?: NodeJS.ProcessEnv
}

export interface SnapshotterLocation {
  socket: string
  root: string
  configFile: string
  /** Where `socket` came from, for messages ("no snapshotter at X (from LAZYCTL_SNAPSHOTTER_SOCKET)"). */
  socketFrom: 'flag' | 'env' | 'config' | 'default'
}

export function locateSnapshotter(options: LocateOptions = {}): SnapshotterLocation {
  const env = options.env ?? process.env
  const explicitConfig = options.configFile ?? nonEmpty(env[CONFIG_FILE_ENV])
  const configFile = explicitConfig ?? DEFAULT_CONFIG_FILE
  // A config named by the user must exist; the default one is optional.
  const loaded = loadSnapshotterConfig(configFile, {mustExist: explicitConfig !== undefined})
  const root = loaded.config.root
  const flagSocket = nonEmpty(options.socket)
  if (flagSocket) return {socket: flagSocket, root, configFile, socketFrom: 'flag'}
  const envSocket = nonEmpty(env[SNAPSHOTTER_SOCKET_ENV])
  if (envSocket) return {socket: envSocket, root, configFile, socketFrom: 'env'}
  return {socket: loaded.config.socket, root, configFile, socketFrom: loaded.setKeys.includes('socket') ? 'config' : 'default'}
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}
