// Runs the built lazyctl CLI as a user would, in a child process.
import {spawn} from 'node:child_process'
import {CLI_ENTRY} from '../../src/paths.js'

export interface CliResult {
  status: number | null
  stdout: string
  stderr: string
}

export function runCli(args: string[], options: {env?: NodeJS.ProcessEnv; input?: string | Buffer; cwd?: string} = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_ENTRY, ...args], {env: {...process.env, ...options.env}, cwd: options.cwd})
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('error', reject)
    child.on('close', (status) => resolve({status, stdout, stderr}))
    child.stdin.end(options.input ?? '')
  })
}
