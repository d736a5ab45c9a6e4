import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../../src/cli/base-command.js'
import {nodeRunOptions, nodeTargetFlags} from '../../src/cli/node-flags.js'
import {fleetError, planReport, summaryTable} from '../../src/node/fleet.js'
import {setupNodes} from '../../src/node/node-run.js'
import {SKIPPABLE_STEPS} from '../../src/node/setup-steps.js'

export default class NodeSetup extends LazyCommand {
  static override summary = 'Prepare nodes for lazy pulling: FUSE, lazyctl, the snapshotter service, and containerd configured for it.'
  static override description = `Every step is idempotent and reports changed, unchanged, skipped or failed. containerd's config keeps every existing setting; the original is saved once as <config>.lazyctl-backup. containerd (and kubelet) restart only when the config changed; if verification then fails, the original config is restored and containerd restarted again.`
  static override examples = [
    '<%= config.bin %> node setup --local',
    '<%= config.bin %> node setup --ssh ec2-user@10.0.0.5 --ssh ec2-user@10.0.0.6 -i ~/.ssh/eks.pem',
    '<%= config.bin %> node setup --inventory nodes.txt --concurrency 20',
    '<%= config.bin %> node setup --ssm i-0123456789abcdef0 --region us-west-2 --skip install',
    '<%= config.bin %> node setup --local --root /mnt/ami-root',
    '<%= config.bin %> node setup --local --cri-keychain',
    '<%= config.bin %> node setup --ssh root@node1 --dry-run',
  ]

  static override flags = {
    ...nodeTargetFlags,
    skip: Flags.string({summary: 'Leave a step out (repeatable).', multiple: true, options: SKIPPABLE_STEPS}),
    'cri-keychain': Flags.boolean({summary: "Serve kubelet's image service on the snapshotter's socket and keep pods' pull secrets for lazy reads (point kubelet's --image-service-endpoint at the socket)."}),
    verify: Flags.boolean({summary: 'Verify the snapshotter and containerd afterwards (default: on for live nodes, off for --root).', allowNo: true}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(NodeSetup)
    const options = await nodeRunOptions(flags)
    const runs = await setupNodes({...options, skip: flags.skip ?? [], criKeychain: flags['cri-keychain'], ...(flags.verify !== undefined ? {verify: flags.verify} : {})})
    if (flags.format === 'json') this.printJson(runs)
    else {
      if (options.dryRun) this.print(planReport(runs))
      this.print(summaryTable(runs, options.dryRun))
    }
    const err = fleetError(runs)
    if (err) throw err
  }
}
