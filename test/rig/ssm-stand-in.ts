// A stand-in for the AWS Systems Manager API (AWS is unreachable from here): a loopback HTTP
// endpoint speaking SSM's JSON protocol for SendCommand and GetCommandInvocation. Scripts sent to
// an "online" instance run on this machine with /bin/sh, as the SSM agent would run them on the
// instance (executionTimeout enforced, output truncated as the API does). This is the only
// stand-in the tests use; everything else is real.
import {spawn} from 'node:child_process'
import {randomUUID} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import {createServer, type IncomingMessage, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {removeDir, rigTempDir} from './tmp.js'

/** online: runs scripts; unresponsive: accepts commands that never start (agent offline). */
export type InstanceBehaviour = 'online' | 'unresponsive'

export interface SsmStandIn {
  endpoint: string
  /** Every API call received: its X-Amz-Target and whether it was SigV4-signed. */
  calls: Array<{target: string; signed: boolean}>
  /**
   * What SSM's command history keeps: every script sent (SendCommand parameters) and every output
   * returned (GetCommandInvocation), in order.
   */
  history: string[]
  stop(): Promise<void>
}

interface Invocation {
  status: 'Pending' | 'InProgress' | 'Success' | 'Failed' | 'TimedOut'
  code: number
  stdout: string
  stderr: string
}

const STDOUT_LIMIT = 24_000
const STDERR_LIMIT = 8_000

export async function startSsmStandIn(instances: Record<string, InstanceBehaviour>): Promise<SsmStandIn> {
  const dir = rigTempDir('ssm')
  const invocations = new Map<string, Invocation>()
  const children = new Set<ReturnType<typeof spawn>>()
  const calls: SsmStandIn['calls'] = []
  const history: string[] = []

  const fail = (res: ServerResponse, status: number, type: string, message: string) => {
    res.writeHead(status, {'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type, 'x-amzn-requestid': randomUUID()})
    res.end(JSON.stringify({__type: type, message}))
  }
  const ok = (res: ServerResponse, body: unknown) => {
    res.writeHead(200, {'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': randomUUID()})
    res.end(JSON.stringify(body))
  }

  const run = (id: string, script: string, timeoutSec: number) => {
    const inv: Invocation = {status: 'InProgress', code: -1, stdout: '', stderr: ''}
    invocations.set(id, inv)
    const file = join(dir, `${id}.sh`)
    writeFileSync(file, script)
    const child = spawn('/bin/sh', [file], {stdio: ['ignore', 'pipe', 'pipe'], detached: true})
    children.add(child)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        // gone
      }
    }, timeoutSec * 1000)
    child.stdout.setEncoding('utf8').on('data', (d: string) => (inv.stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (inv.stderr += d))
    child.on('close', (code) => {
      clearTimeout(timer)
      children.delete(child)
      inv.code = timedOut ? -1 : (code ?? 1)
      inv.status = timedOut ? 'TimedOut' : code === 0 ? 'Success' : 'Failed'
    })
  }

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    const target = String(req.headers['x-amz-target'] ?? '')
    const signed = String(req.headers.authorization ?? '').startsWith('AWS4-HMAC-SHA256 ')
    calls.push({target, signed})
    if (!signed) return fail(res, 400, 'MissingAuthenticationTokenException', 'Request is missing Authentication Token')
    let body: Record<string, unknown>
    try {
      body = JSON.parse(raw) as Record<string, unknown>
    } catch {
      return fail(res, 400, 'SerializationException', 'body is not JSON')
    }
    if (target === 'AmazonSSM.SendCommand') {
      if (body.DocumentName !== 'AWS-RunShellScript') return fail(res, 400, 'InvalidDocument', `document ${String(body.DocumentName)} does not exist`)
      const ids = (body.InstanceIds as string[] | undefined) ?? []
      const unknown = ids.filter((i) => !(i in instances))
      if (unknown.length) return fail(res, 400, 'InvalidInstanceId', `Instances [${unknown.join(', ')}] not in a valid state for account`)
      const params = (body.Parameters ?? {}) as {commands?: string[]; executionTimeout?: string[]}
      const script = (params.commands ?? []).join('\n')
      history.push(script)
      const timeoutSec = Number(params.executionTimeout?.[0] ?? 3600)
      const commandId = randomUUID()
      for (const instance of ids) {
        const key = `${commandId}/${instance}`
        if (instances[instance] === 'online') run(key.replace('/', '_'), script, timeoutSec)
        else invocations.set(key.replace('/', '_'), {status: 'Pending', code: -1, stdout: '', stderr: ''})
      }
      return ok(res, {Command: {CommandId: commandId, DocumentName: 'AWS-RunShellScript', InstanceIds: ids, Status: 'Pending'}})
    }
    if (target === 'AmazonSSM.GetCommandInvocation') {
      const inv = invocations.get(`${String(body.CommandId)}_${String(body.InstanceId)}`)
      if (!inv) return fail(res, 400, 'InvocationDoesNotExist', 'invocation does not exist')
      if (inv.status !== 'Pending' && inv.status !== 'InProgress') history.push(inv.stdout, inv.stderr)
      return ok(res, {
        CommandId: body.CommandId,
        InstanceId: body.InstanceId,
        DocumentName: 'AWS-RunShellScript',
        Status: inv.status,
        StatusDetails: inv.status,
        ResponseCode: inv.code,
        StandardOutputContent: inv.stdout.slice(0, STDOUT_LIMIT),
        StandardErrorContent: inv.stderr.slice(0, STDERR_LIMIT),
      })
    }
    return fail(res, 400, 'UnknownOperationException', `operation ${target} is not part of this stand-in`)
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    history,
    async stop() {
      for (const child of children) {
        try {
          process.kill(-child.pid!, 'SIGKILL')
        } catch {
          // gone
        }
      }
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      removeDir(dir)
    },
  }
}
