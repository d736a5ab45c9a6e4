// Picks the RemoteLayerMounter the daemon uses, with the line `status` shows about it.
import type {CredentialLocator} from '../registry/credentials.js'
import type {SnapshotterConfig} from './config.js'
import {EstargzLayerMounter} from './estargz-layer-mounter.js'
import type {Logger} from './log.js'
import {RefusingLayerMounter, type RemoteLayerMounter} from './remote-layer-mounter.js'

export interface ChosenMounter {
  mounter: RemoteLayerMounter
  description: string
}

export async function createLayerMounter(config: SnapshotterConfig, log: Logger, extraCredentials: CredentialLocator[] = []): Promise<ChosenMounter> {
  if (!config.remote.enable) {
    const reason = 'remote snapshots are disabled in the config ([remote] enable = false)'
    return {mounter: new RefusingLayerMounter(reason), description: reason}
  }
  return {mounter: await EstargzLayerMounter.create(config, log, extraCredentials), description: 'estargz (lazy, FUSE)'}
}
