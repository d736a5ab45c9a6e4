import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../../src/cli/base-command.js'
import {ERROR_CODES, LazyError} from '../../src/cli/errors.js'
import {DEFAULT_CONTAINERD_ADDRESS} from '../../src/cli/flags.js'
import {defaultNodePaths} from '../../src/node/node-run.js'
import {checkState, verifyLocal} from '../../src/node/verify.js'

export default class NodeVerify extends LazyCommand {
  static override summary = "Check this node: the snapshotter answers, containerd lists its proxy plugin as ok, and on Kubernetes nodes CRI is ready for kubelet (snapshotter, image labels, image filesystem, sandbox image, image service)."
  static override examples = ['<%= config.bin %> node verify', '<%= config.bin %> node verify -a /run/containerd/containerd.sock --format json']

  static override flags = {
    address: Flags.string({char: 'a', summary: "containerd's gRPC socket.", env: 'CONTAINERD_ADDRESS', default: DEFAULT_CONTAINERD_ADDRESS}),
    'snapshotter-socket': Flags.string({summary: "The snapshotter's socket.", default: defaultNodePaths().snapshotterSocket}),
    plugin: Flags.string({summary: 'Name of the proxy snapshotter plugin in containerd.', default: defaultNodePaths().pluginName}),
    format: Flags.string({summary: 'Output format.', options: ['table', 'json'], default: 'table'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(NodeVerify)
    const report = await verifyLocal({containerdAddress: flags.address.replace(/^unix:\/\//, ''), snapshotterSocket: flags['snapshotter-socket'], pluginName: flags.plugin})
    if (flags.format === 'json') this.printJson(report)
    else for (const c of report.checks) this.print(`${checkState(c).padEnd(6)}  ${c.name}: ${c.detail}`)
    // JSON readers (setup, over SSH) read the report; the exit status says the same.
    if (!report.ok && flags.format !== 'json') throw new LazyError('NODE_VERIFY_FAILED', report.checks.filter((c) => checkState(c) === 'FAILED').map((c) => c.detail).join('; '))
    if (!report.ok) this.exit(ERROR_CODES.NODE_VERIFY_FAILED)
  }
}
