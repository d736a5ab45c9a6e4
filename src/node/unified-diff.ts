// A unified diff of two texts (what `diff -u` prints), for --dry-run. Config files are small, so
// a plain LCS table is fast enough and easy to trust. Values of secret-looking keys (containerd's
// `registry.configs.*.auth` password, auth, identitytoken…) are printed as <redacted>: a diff is
// output, logs and terminals keep it.

export function unifiedDiff(before: string, after: string, fromName: string, toName: string, context = 3): string {
  if (before === after) return ''
  const a = splitLines(before)
  const b = splitLines(after)
  const ops = diffLines(a, b)
  const hunks: string[] = []
  let i = 0
  while (i < ops.length) {
    if (ops[i]!.op === ' ') {
      i++
      continue
    }
    // Grow a hunk: start `context` lines before the change, extend while changes are within 2*context.
    const start = Math.max(0, i - context)
    let end = i
    let lastChange = i
    while (end < ops.length) {
      if (ops[end]!.op !== ' ') lastChange = end
      else if (end - lastChange > 2 * context) break
      end++
    }
    end = Math.min(ops.length, lastChange + context + 1)
    const slice = ops.slice(start, end)
    const aStart = slice[0]!.aLine
    const bStart = slice[0]!.bLine
    const aLen = slice.filter((o) => o.op !== '+').length
    const bLen = slice.filter((o) => o.op !== '-').length
    hunks.push(`@@ -${range(aStart, aLen)} +${range(bStart, bLen)} @@`)
    for (const o of slice) hunks.push(`${o.op}${redactSecret(o.text)}`)
    i = end
  }
  return [`--- ${fromName}`, `+++ ${toName}`, ...hunks].join('\n') + '\n'
}

function range(start: number, len: number): string {
  // diff -u numbers lines from 1; an empty range names the line before it.
  const first = len === 0 ? start : start + 1
  return len === 1 ? `${first}` : `${first},${len}`
}

function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  return lines
}

interface DiffOp {
  op: ' ' | '-' | '+'
  text: string
  /** Lines of a / b consumed before this op (0-based position). */
  aLine: number
  bLine: number
}

function diffLines(a: string[], b: string[]): DiffOp[] {
  const n = a.length
  const m = b.length
  const lcs: Uint32Array[] = Array.from({length: n + 1}, () => new Uint32Array(m + 1))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
    }
  }
  const ops: DiffOp[] = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({op: ' ', text: a[i]!, aLine: i, bLine: j})
      i++
      j++
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      ops.push({op: '-', text: a[i]!, aLine: i, bLine: j})
      i++
    } else {
      ops.push({op: '+', text: b[j]!, aLine: i, bLine: j})
      j++
    }
  }
  return ops
}

const SECRET_ASSIGNMENT = /^(\s*["']?[\w.-]*(?:password|passwd|auth|token|secret)[\w.-]*["']?\s*[:=]\s*)(\S.*?)(\s*,?\s*)$/i

/** A `key = value` / `"key": value` line whose key names a secret, with the value replaced. */
export function redactSecret(line: string): string {
  return line.replace(SECRET_ASSIGNMENT, (_m, key: string, _value: string, tail: string) => `${key}"<redacted>"${tail}`)
}
