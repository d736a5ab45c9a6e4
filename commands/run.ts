import * as Args from '@oclif/core/args'
import * as Flags from '@oclif/core/flags'
import {LazyCommand} from '../src/cli/base-command.js'
import {containerdFlags, dataRootFlag, snapshotterFlag} from '../src/cli/flags.js'
import {imageArgIndex} from '../src/cli/image-arg.js'
import {runCommand} from '../src/run/run-command.js'

export default class Run extends LazyCommand {
  static override summary = 'Run a command in a new container.'
  static override description = "Pulls the image when missing (--pull), creates the container on the snapshotter, runs it and exits with the container's status."
  static override strict = false
  static override examples = [
    '<%= config.bin %> run --rm 127.0.0.1:5000/demo:v1 echo hi',
    'echo data | <%= config.bin %> run -i --rm IMAGE cat',
    '<%= config.bin %> run -d --name web -p 127.0.0.1:8080:80 IMAGE httpd -f',
  ]
  static override args = {
    image: Args.string({description: 'Image to run.', required: true}),
  }
  static override flags = {
    ...containerdFlags,
    ...snapshotterFlag,
    ...dataRootFlag,
    rm: Flags.boolean({summary: 'Remove the container when it exits.'}),
    detach: Flags.boolean({char: 'd', summary: 'Run in the background and print the container ID.'}),
    interactive: Flags.boolean({char: 'i', summary: "Keep stdin open and connect it to the container's."}),
    tty: Flags.boolean({char: 't', summary: 'Allocate a pseudo-TTY.'}),
    name: Flags.string({summary: 'Name of the container.'}),
    env: Flags.string({char: 'e', summary: 'Set an environment variable (KEY=VALUE, or KEY to copy it).', multiple: true, multipleNonGreedy: true, default: []}),
    'env-file': Flags.string({summary: 'Read environment variables from a file.', multiple: true, multipleNonGreedy: true, default: []}),
    workdir: Flags.string({char: 'w', summary: 'Working directory inside the container.'}),
    user: Flags.string({char: 'u', summary: 'User to run as: name|uid[:group|gid].'}),
    entrypoint: Flags.string({summary: "Override the image's entrypoint."}),
    volume: Flags.string({char: 'v', summary: 'Bind mount: /host/path:/container/path[:ro].', multiple: true, multipleNonGreedy: true, default: []}),
    network: Flags.string({summary: 'Network: bridge (lazyctl0, 10.4.1.0/24, as nerdctl\'s default), host or none.', aliases: ['net'], default: 'bridge'}),
    publish: Flags.string({char: 'p', summary: 'Publish a container port on the host: [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp] (bridge network).', multiple: true, multipleNonGreedy: true, default: []}),
    'read-only': Flags.boolean({summary: "Mount the container's root filesystem read-only."}),
    'security-opt': Flags.string({summary: 'Security option: seccomp=unconfined, or seccomp=PROFILE.json (default: containerd\'s seccomp profile).', multiple: true, multipleNonGreedy: true, default: []}),
    pull: Flags.string({summary: 'When to pull the image.', options: ['always', 'missing', 'never'], default: 'missing'}),
    platform: Flags.string({summary: 'Platform of the image (os/arch[/variant]).'}),
    'require-lazy': Flags.boolean({summary: 'Fail instead of downloading a layer the lazy snapshotter cannot mount (strict mode).'}),
  }

  async run(): Promise<void> {
    // Everything after IMAGE is the container's command, its flags included (`run IMG sh -c …`):
    // parse only the words up to IMAGE as lazyctl's.
    // (parse() replaces this.argv with what it was given, so keep a copy.)
    const argv = [...this.argv]
    const split = imageArgIndex(argv, Run.flags)
    const {args, flags} = await this.parse(Run, split < 0 ? argv : argv.slice(0, split + 1))
    const exitCode = await runCommand(flags, args.image, split < 0 ? [] : argv.slice(split + 1))
    // The container's status is ours; exit now rather than wait for stdin to be drained.
    if (exitCode !== undefined) process.exit(exitCode)
  }
}
