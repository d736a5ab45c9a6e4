// File contents through a channel that keeps a record: SSM stores every SendCommand's parameters
// and output in its command history (and often in S3 or CloudWatch), and a node's containerd config
// may hold registry passwords. Contents are sealed so the record holds only ciphertext: a random
// passphrase wrapped with RSA-OAEP (SHA-256) for the side that reads, the data in AES-256-CBC under
// it in openssl's `enc` format (`Salted__`, EVP_BytesToKey with SHA-256), which openssl 1.0.2 (Amazon
// Linux 2) and 3.x both read and write. A write is sealed to a key pair the node makes for the
// session in a root-only directory under /run; a read, to a key pair of this process.
import {createCipheriv, createDecipheriv, createHash, generateKeyPairSync, privateDecrypt, publicEncrypt, randomBytes, constants, type KeyObject} from 'node:crypto'
import {shellQuote} from './transport.js'

const OAEP = {padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256'}
const OPENSSL_OAEP = '-pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256'
const NEED_OPENSSL = `command -v openssl >/dev/null || { echo "openssl is needed on the node: file contents are sealed so SSM's command history holds no secret" >&2; exit 3; }`

export interface SessionKeys {
  publicKeyPem: string
  privateKey: KeyObject
}

export function sessionKeys(): SessionKeys {
  const {publicKey, privateKey} = generateKeyPairSync('rsa', {modulusLength: 3072})
  return {publicKeyPem: publicKey.export({type: 'spki', format: 'pem'}).toString(), privateKey}
}

/** openssl's EVP_BytesToKey with SHA-256 and one round: the AES key and IV of `enc -md sha256 -pass`. */
function keyAndIv(passphrase: Buffer, salt: Buffer): {key: Buffer; iv: Buffer} {
  let derived = Buffer.alloc(0)
  let block = Buffer.alloc(0)
  while (derived.length < 48) {
    block = createHash('sha256').update(Buffer.concat([block, passphrase, salt])).digest()
    derived = Buffer.concat([derived, block])
  }
  return {key: derived.subarray(0, 32), iv: derived.subarray(32, 48)}
}

function encrypt(data: Buffer, passphrase: Buffer): Buffer {
  const salt = randomBytes(8)
  const {key, iv} = keyAndIv(passphrase, salt)
  const cipher = createCipheriv('aes-256-cbc', key, iv)
  return Buffer.concat([Buffer.from('Salted__'), salt, cipher.update(data), cipher.final()])
}

function decrypt(sealed: Buffer, passphrase: Buffer): Buffer {
  if (sealed.length < 16 || sealed.subarray(0, 8).toString('latin1') !== 'Salted__') throw new Error('sealed data has no openssl salt header')
  const {key, iv} = keyAndIv(passphrase, sealed.subarray(8, 16))
  const decipher = createDecipheriv('aes-256-cbc', key, iv)
  return Buffer.concat([decipher.update(sealed.subarray(16)), decipher.final()])
}

/** Base64 text in a here-document, decoded and piped into `command`. */
function decodedInto(command: string, base64: string, tag: string): string {
  return `base64 -d <<'${tag}' | ${command}\n${(base64.match(/.{1,76}/g) ?? []).join('\n')}\n${tag}`
}

// ---- reads: the node seals files to this process's public key ----

/**
 * Shell setup for sealing files on the node to `publicKeyPem`: defines `seal FILE`, which prints
 * the wrapped passphrase and the sealed data, base64, one line each.
 */
export function sealPrelude(publicKeyPem: string): string {
  return [
    NEED_OPENSSL,
    'd=$(umask 077; mktemp -d)',
    `trap 'rm -rf "$d"' EXIT`,
    `cat > "$d/pub.pem" <<'LAZYCTL_PUB'\n${publicKeyPem.trim()}\nLAZYCTL_PUB`,
    'seal() {',
    '  (umask 077; openssl rand -hex 32 | tr -d "\\n" > "$d/pass")',
    `  openssl pkeyutl -encrypt -pubin -inkey "$d/pub.pem" ${OPENSSL_OAEP} -in "$d/pass" | base64 | tr -d '\\n'; echo`,
    `  openssl enc -aes-256-cbc -md sha256 -salt -pass "file:$d/pass" -in "$1" 2>/dev/null | base64 | tr -d '\\n'; echo`,
    '}',
  ].join('\n')
}

/** The bytes `seal` printed, opened with this process's private key. */
export function openSealed(wrappedBase64: string, sealedBase64: string, privateKey: KeyObject): Buffer {
  const passphrase = privateDecrypt({key: privateKey, ...OAEP}, Buffer.from(wrappedBase64, 'base64'))
  return decrypt(Buffer.from(sealedBase64, 'base64'), passphrase)
}

/** Prints `absent`, or `sealed SIZE` and what `seal` prints. */
export function sealedReadScript(path: string, publicKeyPem: string): string {
  const p = shellQuote(path)
  return ['set -e', `if [ ! -e ${p} ]; then echo absent; exit 0; fi`, sealPrelude(publicKeyPem), `echo "sealed $(wc -c < ${p})"`, `seal ${p}`].join('\n')
}

export function openSealedRead(stdout: string, privateKey: KeyObject, what: string): Buffer | undefined {
  const lines = stdout.split('\n').map((l) => l.trim())
  if (lines[0] === 'absent') return undefined
  const size = Number(/^sealed (\d+)$/.exec(lines[0] ?? '')?.[1] ?? NaN)
  if (!Number.isSafeInteger(size) || lines.length < 3) throw new Error(`${what}: unexpected answer from the node (output truncated?)`)
  const data = openSealed(lines[1]!, lines[2]!, privateKey)
  if (data.length !== size) throw new Error(`${what}: read ${data.length} of ${size} bytes (output truncated by the transport)`)
  return data
}

/** What a transport whose record must not hold file contents gives the file probe (file-cache.ts). */
export interface ReadSealer {
  publicKeyPem: string
  open(wrappedBase64: string, sealedBase64: string): Buffer
}

// ---- writes: sealed to a key pair the node holds for the session ----

/** Makes the node's session key pair in a root-only directory under /run; prints the directory, then the public key. */
export const NODE_KEY_SCRIPT = [
  'set -e',
  NEED_OPENSSL,
  'umask 077',
  'd=$(mktemp -d /run/lazyctl-setup-XXXXXX 2>/dev/null || mktemp -d)',
  'openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$d/key.pem" 2>/dev/null',
  'echo "$d"',
  'openssl pkey -in "$d/key.pem" -pubout',
].join('\n')

export function parseNodeKey(stdout: string): {dir: string; publicKeyPem: string} {
  const nl = stdout.indexOf('\n')
  const dir = stdout.slice(0, nl).trim()
  const publicKeyPem = stdout.slice(nl + 1).trim()
  if (!dir.startsWith('/') || !publicKeyPem.startsWith('-----BEGIN PUBLIC KEY-----')) throw new Error('the node did not answer with a session key')
  return {dir, publicKeyPem}
}

/** The script that opens `data` on the node and writes it to `path` atomically, with `mode`. */
export function sealedWriteScript(path: string, mode: number, data: Buffer, node: {dir: string; publicKeyPem: string}): string {
  const passphrase = Buffer.from(randomBytes(32).toString('hex'))
  const wrapped = publicEncrypt({key: node.publicKeyPem, ...OAEP}, passphrase).toString('base64')
  const sealed = encrypt(data, passphrase).toString('base64')
  const p = shellQuote(path)
  const keyDir = shellQuote(node.dir)
  return [
    'set -e',
    `p=${p}`,
    'd=$(dirname "$p")',
    'mkdir -p "$d"',
    't=$(mktemp "$d/.lazyctl-tmp-XXXXXX")',
    `w=$(mktemp ${keyDir}/pass-XXXXXX)`,
    `trap 'rm -f "$t" "$w"' EXIT`,
    decodedInto(`openssl pkeyutl -decrypt -inkey ${keyDir}/key.pem ${OPENSSL_OAEP} -out "$w"`, wrapped, 'LAZYCTL_KEY'),
    decodedInto(`openssl enc -d -aes-256-cbc -md sha256 -pass "file:$w" -out "$t" 2>/dev/null`, sealed, 'LAZYCTL_DATA'),
    `chmod ${mode.toString(8)} "$t"`,
    'mv -f "$t" "$p"',
    'trap - EXIT',
    'rm -f "$w"',
  ].join('\n')
}

export function removeNodeKeyScript(dir: string): string {
  return `rm -rf ${shellQuote(dir)}`
}
