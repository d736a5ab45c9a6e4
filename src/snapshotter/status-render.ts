// The human form of `lazyctl snapshotter status`.
import {formatBytes} from '../cli/format.js'
import type {SnapshotterStatus} from './status-service.js'

export function renderSnapshotterStatus(status: SnapshotterStatus): string {
  const lines = [
    `Snapshotter:\tanswering at ${status.socket}`,
    `Version:\t${status.version} (pid ${status.pid}, up since ${status.startedAt})`,
    `Root:\t\t${status.root}`,
    `Lazy layers:\t${status.remote.enabled ? status.remote.mounter : `off: ${status.remote.mounter}`}`,
    '',
  ]
  if (status.snapshots.length === 0) {
    lines.push('No snapshots.')
  } else {
    const rows = status.snapshots.map((s) => [String(s.id), s.kind.toLowerCase(), s.remote ? (s.mounted ? 'lazy' : 'lazy (not mounted)') : 'local', s.name, s.parent || '-'])
    lines.push(...table(['ID', 'KIND', 'LAYER', 'NAME', 'PARENT'], rows))
  }
  if (status.layers.length > 0) {
    lines.push('', 'Lazy layers:')
    const rows = status.layers.map((l) => [
      shortDigest(l.layerDigest),
      formatBytes(l.size),
      l.bytesFetched === undefined ? '-' : formatBytes(l.bytesFetched + (l.metadataBytesFetched ?? 0)),
      l.percentLocal === undefined ? '-' : `${l.percentLocal}%`,
      l.prefetch ?? '-',
      l.backgroundFetch ?? '-',
      l.imageRef,
    ])
    lines.push(...table(['LAYER', 'SIZE', 'FETCHED', 'LOCAL', 'PREFETCH', 'BACKGROUND', 'IMAGE'], rows).map((line) => `  ${line}`))
  }
  if (status.cache) {
    const c = status.cache
    lines.push('', `Chunk cache:\t${formatBytes(c.bytesOnDisk)} in ${c.chunks} chunks${c.maxBytes > 0 ? ` (bound ${formatBytes(c.maxBytes)}, ${c.evictions} evicted)` : ' (unbounded)'}`)
  }
  const fallbacks = status.recentRemoteAttempts.filter((a) => !a.remote)
  if (fallbacks.length > 0) {
    lines.push('', 'Recent fallbacks to a full download:')
    for (const attempt of fallbacks.slice(-5)) {
      const subject = attempt.layer ? `layer ${shortDigest(attempt.layer)}${attempt.image ? ` of ${attempt.image}` : ''}` : `snapshot ${attempt.target}`
      lines.push(`  ${attempt.at}  ${attempt.namespace ? `[${attempt.namespace}] ` : ''}${subject}: ${attempt.reason ?? 'unknown reason'}`)
    }
  }
  return lines.join('\n')
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const fmt = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')
  return [fmt(header), ...rows.map(fmt)]
}

function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12)
}

