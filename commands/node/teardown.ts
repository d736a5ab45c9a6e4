import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../../src/cli/base-command.js'
import {nodeRunOptions, nodeTargetFlags} from '../../src/cli/node-flags.js'
import {fleetError, planReport, summaryTable} from '../../src/node/fleet.js'
import {teardownNodes} from '../../src/node/node-run.js'

export default class NodeTeardown extends LazyCommand {
  static override summary = "Undo node setup: restore containerd's original config and remove the snapshotter service."
  static override examples = ['<%= config.bin %> node teardown --ssh root@10.0.0.5', '<%= config.bin %> node teardown --local --purge']

  static override flags = {
    ...nodeTargetFlags,
    purge: Flags.boolean({summary: "Also delete lazyctl's install, config and snapshotter state."}),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(NodeTeardown)
    const options = await nodeRunOptions(flags)
    const runs = await teardownNodes({...options, purge: flags.purge})
    if (flags.format === 'json') this.printJson(runs)
    else {
      if (options.dryRun) this.print(planReport(runs))
      this.print(summaryTable(runs, options.dryRun))
    }
    const err = fleetError(runs)
    if (err) throw err
  }
}
