// The snapshotter's service on a node: a systemd unit running `lazyctl snapshotter serve` before
// containerd (containerd dials the proxy socket lazily, but pulls fail until it answers).
import {join} from 'node:path'
import type {PlanPaths} from './plan.js'
import {shellCommand} from './transport.js'

export const UNIT_DIR = '/etc/systemd/system'

export function lazyctlBinary(paths: PlanPaths): string {
  return join(paths.installDir, 'bin', 'lazyctl')
}

export function serveArgs(paths: PlanPaths): string[] {
  return [lazyctlBinary(paths), 'snapshotter', 'serve', '--socket', paths.snapshotterSocket, '--root', paths.snapshotterRoot, '--config', paths.lazyctlConfig]
}

export function unitPath(paths: PlanPaths): string {
  return join(UNIT_DIR, `${paths.unitName}.service`)
}

export function wantsLinkPath(paths: PlanPaths): string {
  return join(UNIT_DIR, 'multi-user.target.wants', `${paths.unitName}.service`)
}

export function unitText(paths: PlanPaths): string {
  return `# Installed by lazyctl node setup; removed by lazyctl node teardown.
[Unit]
Description=lazyctl snapshotter (containerd proxy snapshotter "${paths.pluginName}" for lazily pulled eStargz images)
After=network-online.target local-fs.target
Wants=network-online.target
Before=containerd.service

[Service]
Type=simple
ExecStartPre=-/sbin/modprobe fuse
ExecStart=${shellCommand(serveArgs(paths))}
Restart=always
RestartSec=1
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
`
}

/** What to run by hand on a node without systemd. */
export function manualStartCommand(paths: PlanPaths): string {
  return `nohup ${shellCommand(serveArgs(paths))} >>/var/log/lazyctl-snapshotter.log 2>&1 &`
}
