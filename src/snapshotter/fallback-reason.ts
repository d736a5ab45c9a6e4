// The coarse class of a fallback's reason, as the fallback counters and the metrics name it. Apart
// from metrics.ts so that counting fallbacks does not load prom-client: it is loaded only when a
// metrics address is configured.

/** A label value for a fallback's reason: a few stable classes, not the free-form message. */
export function fallbackReasonClass(reason: string): string {
  const text = reason.toLowerCase()
  if (text.includes('-byte limit') || text.includes('more than the limit')) return 'over_limit'
  if (text.includes('took longer') || text.includes('timed out') || text.includes('timeout') || text.includes('aborted')) return 'timeout'
  if (text.includes('toc digest') || text.includes('toc') && text.includes('digest')) return 'toc_digest_mismatch'
  if (text.includes('not estargz') || text.includes('not an estargz') || text.includes('footer')) return 'not_estargz'
  if (text.includes('ignores http range')) return 'range_unsupported'
  if (text.includes('label')) return 'labels'
  if (text.includes('unauthorized') || text.includes('denied') || text.includes('auth')) return 'auth'
  if (text.includes('not found') || text.includes('unknown')) return 'not_found'
  if (text.includes('unreachable') || text.includes('econnrefused') || text.includes('connect')) return 'registry_unreachable'
  if (text.includes('disabled')) return 'disabled'
  return 'other'
}
