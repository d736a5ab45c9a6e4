import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {LazyError} from '../src/cli/errors.js'
import {registryFlags} from '../src/cli/flags.js'
import {login} from '../src/registry/login.js'

export default class Login extends LazyCommand {
  static override summary = 'Log in to a registry: check the credentials, then save them (docker config.json or its credential helper).'
  static override examples = [
    'echo "$PASSWORD" | <%= config.bin %> login --username me --password-stdin registry.example:5000',
    'aws ecr get-login-password | <%= config.bin %> login --username AWS --password-stdin 123456789012.dkr.ecr.us-east-1.amazonaws.com',
  ]
  static override args = {server: Args.string({required: false, description: 'registry host (default docker.io)'})}
  static override flags = {
    ...registryFlags,
    username: Flags.string({char: 'u', summary: 'User name.', env: 'LAZYCTL_REGISTRY_USER'}),
    password: Flags.string({char: 'p', summary: 'Password (prefer --password-stdin: arguments show in process lists).', exclusive: ['password-stdin']}),
    'password-stdin': Flags.boolean({summary: 'Read the password from standard input.'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Login)
    if (!flags.username) throw new LazyError('USAGE', 'login needs a user name: -u USER')
    let password = flags.password
    if (flags['password-stdin']) password = await readStdin()
    if (!password) throw new LazyError('USAGE', 'login needs a password: -p PASS or --password-stdin')
    if (flags.password) process.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n')
    const result = await login({
      ...(args.server ? {server: args.server} : {}),
      username: flags.username,
      password,
      insecureRegistries: flags['insecure-registry'] ?? [],
      hostsDir: flags['hosts-dir'],
    })
    this.print(`Login Succeeded (${result.server}; saved in ${result.storedIn})`)
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of process.stdin) chunks.push(c as Buffer)
  // Only the trailing newline that `echo` and `aws ecr get-login-password` add is dropped.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}
