import * as Args from '@oclif/core/args'
import {LazyCommand} from '../src/cli/base-command.js'
import {logout} from '../src/registry/login.js'

export default class Logout extends LazyCommand {
  static override summary = 'Log out of a registry: remove its saved credentials.'
  static override examples = ['<%= config.bin %> logout registry.example:5000']
  static override args = {server: Args.string({required: false, description: 'registry host (default docker.io)'})}

  async run(): Promise<void> {
    const {args} = await this.parse(Logout)
    const result = await logout(args.server ? {server: args.server} : {})
    this.print(result.removed ? `Removing login credentials for ${result.server}` : `Not logged in to ${result.server}`)
  }
}
