import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../../src/cli/base-command.js'
import {LazyError} from '../../src/cli/errors.js'
import {daemonSet, daemonSetYaml, defaultDaemonSetOptions} from '../../src/node/daemonset.js'

export default class NodeManifest extends LazyCommand {
  static override summary = 'Print a Kubernetes DaemonSet that runs node setup on every node (privileged, host PID, host root mounted).'
  static override description = 'The image must hold lazyctl under /opt/lazyctl (bin/lazyctl, app/, node/). Apply with: lazyctl node manifest --image REF | kubectl apply -f -'
  static override examples = ['<%= config.bin %> node manifest --image 123456789012.dkr.ecr.us-west-2.amazonaws.com/lazyctl:0.1.0 | kubectl apply -f -']

  static override flags = {
    image: Flags.string({summary: 'Image holding lazyctl under /opt/lazyctl.', default: defaultDaemonSetOptions().image}),
    'k8s-namespace': Flags.string({summary: 'Kubernetes namespace of the DaemonSet.', default: 'kube-system'}),
    name: Flags.string({summary: 'Name of the DaemonSet.', default: defaultDaemonSetOptions().name}),
    'node-selector': Flags.string({summary: 'Only nodes with this label (key=value, repeatable).', multiple: true}),
    'setup-arg': Flags.string({summary: 'Extra argument for `node setup --local` on each node (repeatable).', multiple: true}),
    output: Flags.string({char: 'o', summary: 'Output format.', options: ['yaml', 'json'], default: 'yaml'}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(NodeManifest)
    const nodeSelector: Record<string, string> = {}
    for (const s of flags['node-selector'] ?? []) {
      const m = /^([^=]+)=(.*)$/.exec(s)
      if (!m) throw new LazyError('USAGE', `--node-selector ${s}: expected key=value`)
      nodeSelector[m[1]!] = m[2]!
    }
    const options = {...defaultDaemonSetOptions(), image: flags.image, namespace: flags['k8s-namespace'], name: flags.name, nodeSelector, setupArgs: flags['setup-arg'] ?? []}
    if (flags.output === 'json') this.printJson(daemonSet(options))
    else this.print(daemonSetYaml(options))
  }
}
