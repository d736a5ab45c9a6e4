// Prioritized-file lists in the record format `nerdctl image convert --estargz-record-in` and
// `ctr-remote` take: one JSON object per line with a `path` (other keys ignored), order kept,
// duplicates dropped.
import {readFile} from 'node:fs/promises'
import {LazyError} from '../cli/errors.js'

export function parseRecord(text: string, label = 'record file'): string[] {
  const seen = new Set<string>()
  const paths: string[] = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (line === '') continue
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch {
      throw new LazyError('USAGE', `${label}:${i + 1}: not a JSON object`, {hint: 'each line must look like {"path": "/usr/bin/bash"}'})
    }
    const path = (value as {path?: unknown} | null)?.path
    if (typeof path !== 'string' || path === '') throw new LazyError('USAGE', `${label}:${i + 1}: no "path" string`, {hint: 'each line must look like {"path": "/usr/bin/bash"}'})
    if (!seen.has(path)) {
      seen.add(path)
      paths.push(path)
    }
  }
  return paths
}

export async function readRecordFile(path: string): Promise<string[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new LazyError('NOT_FOUND', `record file ${path}: ${(err as Error).message}`, {cause: err})
  }
  return parseRecord(text, path)
}
