// OpenSSH known_hosts: plain and hashed (|1|salt|hash) host fields, patterns with * ? and !,
// `[host]:port` for non-standard ports, @revoked markers. Used to check a server's host key
// before any credential is sent.
import {createHmac, timingSafeEqual} from 'node:crypto'
import {appendFile, mkdir, readFile} from 'node:fs/promises'
import {dirname} from 'node:path'

export type HostKeyVerdict =
  | {kind: 'known'}
  | {kind: 'unknown'}
  | {kind: 'changed'; line: number}
  /** The host is known, but only with keys of other types: not a new host, so never accepted as one. */
  | {kind: 'other-type'; line: number; knownType: string}
  | {kind: 'revoked'; line: number}

/** `host` for port 22, `[host]:port` otherwise, as OpenSSH writes and hashes it. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`
}

/** The algorithm name at the start of an SSH public key blob (e.g. `ssh-ed25519`). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown'
  const len = blob.readUInt32BE(0)
  return blob.subarray(4, 4 + len).toString('latin1')
}

export function verifyHostKey(knownHostsText: string, host: string, port: number, blob: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port)
  const type = keyTypeOf(blob)
  let sawSameTypeDifferentKey = 0
  let sawOtherType: {line: number; knownType: string} | undefined
  let matched = false
  const lines = knownHostsText.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim()
    if (!line || line.startsWith('#')) continue
    const fields = line.split(/\s+/)
    let marker: string | undefined
    if (fields[0]!.startsWith('@')) marker = fields.shift()
    const [hosts, keyType, keyBase64] = fields
    if (!hosts || !keyType || !keyBase64) continue
    if (marker === '@cert-authority') continue // certificates are not supported; such lines never vouch for a plain key
    if (!hostFieldMatches(hosts, name)) continue
    const lineKey = Buffer.from(keyBase64, 'base64')
    const same = lineKey.length === blob.length && timingSafeEqual(lineKey, blob)
    if (marker === '@revoked') {
      if (same) return {kind: 'revoked', line: i + 1}
      continue
    }
    if (same) matched = true
    else if (keyType === type) sawSameTypeDifferentKey = sawSameTypeDifferentKey || i + 1
    else sawOtherType ??= {line: i + 1, knownType: keyType}
  }
  if (matched) return {kind: 'known'}
  if (sawSameTypeDifferentKey) return {kind: 'changed', line: sawSameTypeDifferentKey}
  if (sawOtherType) return {kind: 'other-type', ...sawOtherType}
  return {kind: 'unknown'}
}

function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|')
    if (!salt || !hash) return false
    const expected = Buffer.from(hash, 'base64')
    const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest()
    return expected.length === actual.length && timingSafeEqual(expected, actual)
  }
  let positive = false
  for (const pattern of field.split(',')) {
    if (pattern.startsWith('!')) {
      if (globMatches(pattern.slice(1), name)) return false
    } else if (globMatches(pattern, name)) {
      positive = true
    }
  }
  return positive
}

function globMatches(pattern: string, name: string): boolean {
  // Everything but * and ? is literal (including the brackets of `[host]:port`).
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')
  return new RegExp(`^${source}$`, 'i').test(name)
}

export async function readKnownHosts(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return ''
    throw err
  }
}

/** Appends the key as OpenSSH would with StrictHostKeyChecking=accept-new. */
export async function appendKnownHost(file: string, host: string, port: number, blob: Buffer): Promise<void> {
  await mkdir(dirname(file), {recursive: true, mode: 0o700})
  await appendFile(file, `${knownHostsName(host, port)} ${keyTypeOf(blob)} ${blob.toString('base64')}\n`, {mode: 0o600})
}
