// The docker-credential-* helper protocol: `get` (server URL on stdin, JSON on stdout), `store`
// (JSON on stdin) and `erase` (server URL on stdin). Secrets travel only over pipes.
import {spawn} from 'node:child_process'
import {LazyError} from '../cli/errors.js'

export interface HelperCredential {
  ServerURL?: string
  Username: string
  Secret: string
}

const NOT_FOUND = /credentials not found|no credentials server URL|no credentials username/i

interface HelperResult {
  code: number | null
  stdout: string
  missing: boolean
}

function runHelper(helper: string, verb: 'get' | 'store' | 'erase', input: string): Promise<HelperResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(`docker-credential-${helper}`, [verb], {stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.resume()
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') resolve({code: null, stdout: '', missing: true})
      else reject(new LazyError('AUTH_FAILED', `credential helper docker-credential-${helper} failed to start: ${err.code ?? err.message}`, {cause: err}))
    })
    child.on('close', (code) => resolve({code, stdout, missing: false}))
    child.stdin.on('error', () => undefined)
    child.stdin.end(input)
  })
}

/** Asks a helper for `serverUrl`'s credentials; undefined when it has none (or is not installed). */
export async function helperGet(helper: string, serverUrl: string): Promise<HelperCredential | undefined> {
  const res = await runHelper(helper, 'get', serverUrl)
  if (res.missing) return undefined
  if (res.code !== 0) {
    if (NOT_FOUND.test(res.stdout)) return undefined
    throw new LazyError('AUTH_FAILED', `credential helper docker-credential-${helper} failed for ${serverUrl} (exit ${res.code})`)
  }
  try {
    const json = JSON.parse(res.stdout) as HelperCredential
    if (typeof json.Secret !== 'string') throw new Error('no Secret')
    return json
  } catch (err) {
    throw new LazyError('AUTH_FAILED', `credential helper docker-credential-${helper} printed something that is not a credential`, {cause: err})
  }
}

export async function helperStore(helper: string, credential: HelperCredential): Promise<void> {
  const res = await runHelper(helper, 'store', JSON.stringify(credential))
  if (res.missing) throw new LazyError('MISSING_DEPENDENCY', `credential helper docker-credential-${helper} is not installed`)
  if (res.code !== 0) throw new LazyError('AUTH_FAILED', `credential helper docker-credential-${helper} could not store credentials (exit ${res.code})`)
}

export async function helperErase(helper: string, serverUrl: string): Promise<boolean> {
  const res = await runHelper(helper, 'erase', serverUrl)
  if (res.missing) throw new LazyError('MISSING_DEPENDENCY', `credential helper docker-credential-${helper} is not installed`)
  if (res.code !== 0) {
    if (NOT_FOUND.test(res.stdout)) return false
    throw new LazyError('AUTH_FAILED', `credential helper docker-credential-${helper} could not erase credentials (exit ${res.code})`)
  }
  return true
}
