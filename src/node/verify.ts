// Is the node working? The snapshotter's socket answers gRPC (an HTTP/2 handshake completes),
// and containerd's introspection lists the proxy snapshotter plugin without an init error; on a
// Kubernetes node, the CRI plugin is ready for kubelet (./verify-cri.ts).
import * as grpc from '@grpc/grpc-js'
import {describeError} from '../cli/errors.js'
import {ContainerdConnection} from '../containerd/connection.js'

export interface VerifyCheck {
  name: string
  ok: boolean
  detail: string
  /**
   * A problem that does not stop pods from starting (kubelet's image GC, the sandbox image's first
   * pull): reported, but verification (and setup's rollback) does not fail on it.
   */
  warning?: boolean
}

/** How a check reads in a line: ok, WARN or FAILED. */
export function checkState(check: VerifyCheck): 'ok' | 'WARN' | 'FAILED' {
  return check.ok ? 'ok' : check.warning ? 'WARN' : 'FAILED'
}

export interface VerifyReport {
  ok: boolean
  checks: VerifyCheck[]
}

export interface VerifyOptions {
  containerdAddress: string
  snapshotterSocket: string
  pluginName: string
  timeoutMs?: number
}

interface IntrospectionPlugin {
  type: string
  id: string
  exports?: Record<string, string>
  init_err?: {code: number; message: string} | null
}

export async function snapshotterAnswers(socket: string, timeoutMs = 5000): Promise<VerifyCheck> {
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure())
  try {
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())))
    return {name: 'snapshotter socket', ok: true, detail: `${socket} answers`}
  } catch (err) {
    return {name: 'snapshotter socket', ok: false, detail: `nothing answers on ${socket} (${describeError(err)})`}
  } finally {
    client.close()
  }
}

export async function proxyPluginStatus(options: VerifyOptions): Promise<VerifyCheck> {
  const conn = new ContainerdConnection({address: options.containerdAddress, namespace: 'default'})
  const name = 'containerd proxy plugin'
  try {
    const res = await conn.unary<{filters: string[]}, {plugins: IntrospectionPlugin[]}>(
      'containerd.services.introspection.v1.Introspection',
      'Plugins',
      {filters: [`type==io.containerd.snapshotter.v1,id==${options.pluginName}`]},
      'list plugins',
      {timeoutMs: options.timeoutMs ?? 5000},
    )
    const plugin = res.plugins[0]
    if (!plugin) return {name, ok: false, detail: `containerd at ${options.containerdAddress} has no snapshotter plugin "${options.pluginName}"`}
    if (plugin.init_err && plugin.init_err.code !== 0) return {name, ok: false, detail: `plugin ${options.pluginName} failed to load: ${plugin.init_err.message}`}
    const address = plugin.exports?.address
    if (address && address !== options.snapshotterSocket) {
      return {name, ok: false, detail: `plugin ${options.pluginName} points at ${address}, not ${options.snapshotterSocket}`}
    }
    return {name, ok: true, detail: `io.containerd.snapshotter.v1 ${options.pluginName} ok${address ? ` (${address})` : ''}`}
  } catch (err) {
    return {name, ok: false, detail: describeError(err)}
  } finally {
    conn.close()
  }
}

export async function verifyLocal(options: VerifyOptions): Promise<VerifyReport> {
  const checks = [await snapshotterAnswers(options.snapshotterSocket, options.timeoutMs), await proxyPluginStatus(options)]
  // Kubernetes: only when containerd answers at all (else the proxy-plugin check said why).
  if (checks[1]!.ok) checks.push(...(await (await import('./verify-cri.js')).criChecks(options)))
  return {ok: checks.every((c) => c.ok || c.warning), checks}
}

export function summarizeReport(report: VerifyReport): string {
  return report.checks.map((c) => `${checkState(c)}: ${c.detail}`).join('; ')
}
