import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, readdirSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {ERROR_CODES} from '../../src/cli/errors.js'
import {execFileSync, spawn} from 'node:child_process'
import {once} from 'node:events'
import {CLI_ENTRY} from '../../src/paths.js'
import {runCli} from '../rig/cli.js'
import {requireCommand} from '../rig/process.js'
import {errorLines, startRunWorld, type RunWorld} from './fixture.js'

let world: RunWorld
let image: string

before(async () => {
  world = await startRunWorld()
  image = await world.pushBusybox('busybox:v1', {config: {Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_IMAGE=yes'], Cmd: ['sh'], WorkingDir: '/home'}})
  const pulled = await world.cli(['pull', image])
  assert.equal(pulled.status, 0, pulled.stderr)
})
after(async () => {
  await world?.stop()
})

describe('lazyctl run in the foreground', () => {
  test('prints what the container writes to stdout', async () => {
    const res = await world.cli(['run', '--rm', image, 'echo', 'hi'])
    assert.equal(res.status, 0, res.stderr)
    assert.equal(res.stdout, 'hi\n')
  })

  test("exits with the container's exit status", async () => {
    const res = await world.cli(['run', '--rm', image, 'sh', '-c', 'exit 3'])
    assert.equal(res.status, 3, res.stderr)
  })

  test('keeps stdout and stderr apart', async () => {
    const res = await world.cli(['run', '--rm', image, 'sh', '-c', 'echo out; echo err >&2'])
    assert.equal(res.status, 0, res.stderr)
    assert.equal(res.stdout, 'out\n')
    assert.equal(res.stderr, 'err\n')
  })

  test('with -i, stdin reaches the container and its EOF ends cat', async () => {
    const res = await world.cli(['run', '-i', '--rm', image, 'cat'], {input: 'data\nmore data\n'})
    assert.equal(res.status, 0, res.stderr)
    assert.equal(res.stdout, 'data\nmore data\n')
  })

  test('without -i the container reads an empty stdin', async () => {
    const res = await world.cli(['run', '--rm', image, 'sh', '-c', 'cat; echo done'], {input: 'ignored\n'})
    assert.equal(res.status, 0, res.stderr)
    assert.equal(res.stdout, 'done\n')
  })

  test("honours the image's Env and WorkingDir, and -e/--env-file/-w override them", async () => {
    const defaults = await world.cli(['run', '--rm', image, 'sh', '-c', 'echo $FROM_IMAGE; pwd'])
    assert.equal(defaults.stdout, 'yes\n/home\n', defaults.stderr)
    const envFile = join(world.dir, 'env.list')
    writeFileSync(envFile, '# comment\nFROM_FILE=file value\n')
    const res = await world.cli(['run', '--rm', '-e', 'FROM_IMAGE=overridden', '--env', 'EXTRA=1', '--env-file', envFile, '-w', '/tmp', image, 'sh', '-c', 'echo $FROM_IMAGE $EXTRA $FROM_FILE; pwd'])
    assert.equal(res.status, 0, res.stderr)
    assert.equal(res.stdout, 'overridden 1 file value\n/tmp\n')
  })

  test('-u resolves a user name from the image /etc/passwd, and takes uid:gid', async () => {
    const byName = await world.cli(['run', '--rm', '-u', 'user', image, 'id'])
    assert.equal(byName.status, 0, byName.stderr)
    assert.match(byName.stdout, /^uid=1000\(user\) gid=1000\(user\)/)
    const numeric = await world.cli(['run', '--rm', '-u', '65534:0', image, 'id', '-u'])
    assert.equal(numeric.stdout, '65534\n', numeric.stderr)
    const unknown = await world.cli(['run', '--rm', '-u', 'nosuchuser', image, 'id'])
    assert.equal(unknown.status, ERROR_CODES.USAGE)
    assert.match(errorLines(unknown.stderr).join('\n'), /nosuchuser/)
  })

  test('-v bind-mounts a host directory, read-write or read-only', async () => {
    const hostDir = join(world.dir, 'shared')
    mkdirSync(hostDir)
    writeFileSync(join(hostDir, 'from-host'), 'host data\n')
    const rw = await world.cli(['run', '--rm', '-v', `${hostDir}:/mnt/shared`, image, 'sh', '-c', 'cat /mnt/shared/from-host && echo written > /mnt/shared/from-container'])
    assert.equal(rw.status, 0, rw.stderr)
    assert.equal(rw.stdout, 'host data\n')
    assert.ok(readdirSync(hostDir).includes('from-container'))
    const ro = await world.cli(['run', '--rm', '-v', `${hostDir}:/mnt/shared:ro`, image, 'sh', '-c', 'echo x > /mnt/shared/nope'])
    assert.notEqual(ro.status, 0)
    assert.match(ro.stderr, /Read-only file system/)
    assert.ok(!existsSync(join(hostDir, 'nope')))
  })

  test('--entrypoint replaces the command, and --read-only makes the rootfs read-only', async () => {
    const ep = await world.cli(['run', '--rm', '--entrypoint', 'echo', image, 'from', 'entrypoint'])
    assert.equal(ep.stdout, 'from entrypoint\n', ep.stderr)
    const ro = await world.cli(['run', '--rm', '--read-only', image, 'sh', '-c', 'touch /newfile'])
    assert.notEqual(ro.status, 0)
    assert.match(ro.stderr, /Read-only file system/)
  })

  test('the default network is the bridge (eth0 and lo); --network none leaves only lo; host shares the host network', async () => {
    const bridged = await world.cli(['run', '--rm', image, 'ls', '/sys/class/net'])
    assert.equal(bridged.status, 0, bridged.stderr)
    assert.deepEqual(bridged.stdout.split(/\s+/).filter(Boolean).sort(), ['eth0', 'lo'])
    const none = await world.cli(['run', '--rm', '--network', 'none', image, 'ls', '/sys/class/net'])
    assert.equal(none.status, 0, none.stderr)
    assert.deepEqual(none.stdout.split(/\s+/).filter(Boolean), ['lo'])
    const host = await world.cli(['run', '--rm', '--network', 'host', image, 'ls', '/sys/class/net'])
    assert.deepEqual(host.stdout.split(/\s+/).filter(Boolean).sort(), readdirSync('/sys/class/net').sort())
  })

  test("containers run under containerd's default seccomp profile; --security-opt seccomp=unconfined lifts it", async () => {
    // unshare(CLONE_NEWUSER) needs no capability, so only the filter refuses it.
    const confined = await world.cli(['run', '--rm', image, 'sh', '-c', 'grep "^Seccomp:" /proc/self/status; unshare -U true || echo refused'])
    assert.equal(confined.status, 0, confined.stderr)
    assert.equal(confined.stdout, 'Seccomp:\t2\nrefused\n')
    assert.match(confined.stderr, /unshare.*Operation not permitted/)
    const unconfined = await world.cli(['run', '--rm', '--security-opt', 'seccomp=unconfined', image, 'sh', '-c', 'grep "^Seccomp:" /proc/self/status; unshare -U true && echo allowed'])
    assert.equal(unconfined.status, 0, unconfined.stderr)
    assert.equal(unconfined.stdout, 'Seccomp:\t0\nallowed\n')
  })

  test('the spec containerd holds denies io_uring and masks powercap, as containerd 2.0 and moby do', async () => {
    const started = await world.cli(['run', '-d', '--name', 'spec-check', image, 'sleep', '300'])
    assert.equal(started.status, 0, started.stderr)
    try {
      const info = JSON.parse(execFileSync('ctr', ['-a', world.containerd.address, '-n', world.containerd.namespace, 'containers', 'info', started.stdout.trim()], {encoding: 'utf8'})) as {
        Spec: {linux: {maskedPaths: string[]; seccomp: {defaultAction: string; syscalls: Array<{names: string[]; action: string}>}}}
      }
      const {seccomp, maskedPaths} = info.Spec.linux
      assert.equal(seccomp.defaultAction, 'SCMP_ACT_ERRNO')
      const allowed = seccomp.syscalls.filter((rule) => rule.action === 'SCMP_ACT_ALLOW').flatMap((rule) => rule.names)
      assert.ok(allowed.includes('read') && allowed.includes('openat'), 'the allowlist is there')
      for (const call of ['io_uring_setup', 'io_uring_enter', 'io_uring_register']) assert.ok(!allowed.includes(call), `${call} is not allowed`)
      assert.ok(maskedPaths.includes('/sys/devices/virtual/powercap'))
    } finally {
      await world.cli(['rm', '-f', 'spec-check'])
    }
  })

  test('--security-opt seccomp=FILE applies that profile', async () => {
    const profile = join(world.dir, 'no-mkdir.json')
    writeFileSync(profile, JSON.stringify({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13}],
    }))
    const res = await world.cli(['run', '--rm', '--security-opt', `seccomp=${profile}`, image, 'sh', '-c', 'touch /tmp/file && mkdir /tmp/dir'])
    assert.equal(res.status, 1)
    assert.match(res.stderr, /mkdir.*Permission denied/)
  })

  test("a missing command fails with the runtime's message and exit status 127", async () => {
    const res = await world.cli(['run', '--rm', image, 'no-such-command'])
    assert.equal(res.status, 127)
    const lines = errorLines(res.stderr)
    assert.equal(lines.length, 1, res.stderr)
    assert.match(lines[0]!, /no-such-command.*executable file not found/)
  })

  test('three containers of the same image run at once without seeing each other', async () => {
    const runs = await Promise.all(
      ['one', 'two', 'three'].map((n) => world.cli(['run', '--rm', '-e', `N=${n}`, image, 'sh', '-c', 'echo $N > /tmp/mark && cat /tmp/mark && ls /tmp'])),
    )
    runs.forEach((res, i) => {
      assert.equal(res.status, 0, res.stderr)
      assert.equal(res.stdout, `${['one', 'two', 'three'][i]}\nmark\n`)
    })
  })
})

describe('signals and terminals', () => {
  test('SIGTERM to lazyctl is forwarded to the container, whose status becomes lazyctl\'s', async () => {
    const child = spawn(process.execPath, [CLI_ENTRY, 'run', '--address', world.containerd.address, '--namespace', world.containerd.namespace, '--rm', image,
      'sh', '-c', 'trap "echo got TERM; exit 9" TERM; echo ready; while true; do sleep 1; done'], {env: {...process.env, ...world.cliEnv}})
    let stdout = ''
    child.stdout.setEncoding('utf8')
    // Signal once the container says its trap is installed (a real condition, not a delay).
    await new Promise<void>((resolve) => child.stdout.on('data', (d: string) => {
      stdout += d
      if (stdout.includes('ready\n')) resolve()
    }))
    child.kill('SIGTERM')
    const [status] = (await once(child, 'close')) as [number]
    assert.equal(status, 9)
    assert.match(stdout, /got TERM/)
  })

  test('-t gives the container a terminal that has the size of the local one (ResizePty)', async () => {
    requireCommand('script', 'util-linux')
    // script(1) runs lazyctl on a pseudo-terminal whose size stty sets first.
    const cmd = [CLI_ENTRY, 'run', '--address', world.containerd.address, '--namespace', world.containerd.namespace, '--rm', '-it', image, 'sh', '-c', 'tty; stty size']
      .map((a) => `'${a}'`).join(' ')
    const out = await new Promise<{status: number | null; stdout: string}>((resolve, reject) => {
      const child = spawn('script', ['-qec', `stty cols 123 rows 45; '${process.execPath}' ${cmd}`, '/dev/null'], {env: {...process.env, ...world.cliEnv}})
      let stdout = ''
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
      child.on('error', reject)
      child.on('close', (status) => resolve({status, stdout}))
      child.stdin.end()
    })
    assert.equal(out.status, 0, out.stdout)
    assert.match(out.stdout, /\/dev\/pts\/\d+/)
    assert.match(out.stdout, /45 123/)
  })
})

describe('detached containers, logs, ps and rm', () => {
  test('run -d prints the ID; logs shows the output; ps -a shows the exit code; rm removes it all', async () => {
    const run = await world.cli(['run', '-d', '--name', 'detached-1', image, 'sh', '-c', 'echo line one; echo line two >&2; exit 5'])
    assert.equal(run.status, 0, run.stderr)
    const id = run.stdout.trim()
    assert.match(id, /^[0-9a-f]{64}$/)
    // logs -f returns once the container has exited, with everything it wrote.
    const followed = await world.cli(['logs', '-f', 'detached-1'])
    assert.equal(followed.status, 0, followed.stderr)
    // The shim copies stdout and stderr concurrently, so only the order within each is defined.
    const lines = (text: string) => text.split('\n').filter(Boolean).sort()
    assert.deepEqual(lines(followed.stdout), ['line one', 'line two'])
    const logs = await world.cli(['logs', id.slice(0, 12)])
    assert.deepEqual(lines(logs.stdout), ['line one', 'line two'])
    const ps = await world.cli(['ps', '-a', '--format', 'json'])
    const row = (JSON.parse(ps.stdout) as Array<{id: string; name: string; state: string; exitCode?: number; status: string}>).find((r) => r.id === id)
    assert.ok(row, ps.stdout)
    assert.equal(row.name, 'detached-1')
    assert.equal(row.state, 'exited')
    assert.equal(row.exitCode, 5)
    assert.equal(row.status, 'Exited (5)')
    const running = await world.cli(['ps', '--format', 'json'])
    assert.ok(!(JSON.parse(running.stdout) as Array<{id: string}>).some((r) => r.id === id), 'ps without -a lists running containers only')
    const rm = await world.cli(['rm', 'detached-1'])
    assert.equal(rm.status, 0, rm.stderr)
    assert.doesNotMatch(world.containerd.ctr(['containers', 'ls', '-q']), new RegExp(id))
    assert.ok(!existsSync(join(world.dataRoot, readdirSync(world.dataRoot).find((d) => d !== 'fifo') ?? 'x', 'containers', world.containerd.namespace, id)))
  })

  test('logs -f ends with the last byte, even when the container exits right after a large write', async () => {
    // The shim reports the exit before it has copied the pipes; logs -f must wait for the copy.
    const run = await world.cli(['run', '-d', '--name', 'burst', image, 'sh', '-c', 'head -c 3000000 /dev/zero | tr "\\0" x >&2; echo end'])
    assert.equal(run.status, 0, run.stderr)
    const logs = await world.cli(['logs', '-f', 'burst'])
    assert.equal(logs.status, 0, logs.stderr)
    assert.equal(logs.stdout.length, 3000000 + 'end\n'.length)
    assert.equal((await world.cli(['rm', 'burst'])).status, 0)
  })

  test('run -d -t captures the terminal output through the logging binary', async () => {
    const run = await world.cli(['run', '-d', '-t', '--name', 'detached-tty', image, 'sh', '-c', 'tty; echo hello from a tty'])
    assert.equal(run.status, 0, run.stderr)
    const logs = await world.cli(['logs', '-f', 'detached-tty'])
    assert.equal(logs.status, 0, logs.stderr)
    assert.match(logs.stdout, /^\/dev\/pts\/\d+\r?\nhello from a tty\r?\n$/)
    assert.equal((await world.cli(['rm', 'detached-tty'])).status, 0)
  })

  test('rm refuses a running container; rm -f kills and removes it', async () => {
    const run = await world.cli(['run', '-d', '--name', 'long-running', image, 'sh', '-c', 'echo started; exec sleep 600'])
    assert.equal(run.status, 0, run.stderr)
    const id = run.stdout.trim()
    const ps = await world.cli(['ps'])
    assert.match(ps.stdout, new RegExp(`${id.slice(0, 12)}.*Up.*long-running`))
    const refused = await world.cli(['rm', 'long-running'])
    assert.equal(refused.status, ERROR_CODES.CONTAINER_RUNNING)
    assert.equal(errorLines(refused.stderr).length, 1)
    const forced = await world.cli(['rm', '-f', 'long-running'])
    assert.equal(forced.status, 0, forced.stderr)
    assert.doesNotMatch(world.containerd.ctr(['tasks', 'ls']), new RegExp(id))
    assert.doesNotMatch(world.containerd.ctr(['containers', 'ls', '-q']), new RegExp(id))
  })

  test('a foreground run without --rm stays in ps -a with its exit code until rm', async () => {
    const run = await world.cli(['run', '--name', 'kept', image, 'sh', '-c', 'exit 7'])
    assert.equal(run.status, 7)
    const ps = await world.cli(['ps', '-a'])
    assert.match(ps.stdout, /Exited \(7\)\s+kept/)
    assert.equal((await world.cli(['rm', 'kept'])).status, 0)
  })
})

describe('errors are one clear line with distinct exit statuses', () => {
  test('containerd not running', async () => {
    const res = await runCli(['run', '--rm', '-a', join(world.dir, 'no-containerd.sock'), image, 'true'], {env: {LAZYCTL_DATA_ROOT: world.dataRoot}})
    assert.equal(res.status, ERROR_CODES.CONTAINERD_UNREACHABLE)
    assert.equal(errorLines(res.stderr).length, 1, res.stderr)
    assert.match(res.stderr, /cannot reach containerd/)
  })

  test('unknown image', async () => {
    const local = await world.cli(['run', '--rm', '--pull', 'never', `${world.registry.host}/nothing:here`, 'true'])
    assert.equal(local.status, ERROR_CODES.IMAGE_NOT_FOUND)
    assert.equal(errorLines(local.stderr).length, 1, local.stderr)
    const remote = await world.cli(['run', '--rm', `${world.registry.host}/nothing:here`, 'true'])
    assert.equal(remote.status, ERROR_CODES.MANIFEST_UNKNOWN, remote.stderr)
    assert.equal(errorLines(remote.stderr).length, 1, remote.stderr)
  })

  test('name already in use', async () => {
    const first = await world.cli(['run', '-d', '--name', 'taken', image, 'sleep', '600'])
    assert.equal(first.status, 0, first.stderr)
    const second = await world.cli(['run', '--rm', '--name', 'taken', image, 'true'])
    assert.equal(second.status, ERROR_CODES.NAME_IN_USE)
    assert.equal(errorLines(second.stderr).length, 1, second.stderr)
    assert.match(second.stderr, /"taken" is already in use/)
    assert.equal((await world.cli(['rm', '-f', 'taken'])).status, 0)
  })

  test('a snapshotter containerd does not have', async () => {
    const res = await world.cli(['run', '--rm', '--snapshotter', 'no-such-snapshotter', image, 'true'])
    assert.equal(res.status, ERROR_CODES.SNAPSHOTTER_NOT_CONFIGURED, res.stderr)
    assert.equal(errorLines(res.stderr).length, 1, res.stderr)
    assert.match(res.stderr, /no such snapshotter/)
    // A lazy (remote) one is looked up among containerd's plugins before anything is pulled.
    const lazy = await world.cli(['pull', '--snapshotter', 'stargz-not-configured', image])
    assert.equal(lazy.status, ERROR_CODES.SNAPSHOTTER_NOT_CONFIGURED, lazy.stderr)
    assert.equal(errorLines(lazy.stderr).length, 1, lazy.stderr)
    assert.match(lazy.stderr, /node setup --local/)
  })

  test('invalid flags', async () => {
    for (const args of [
      ['run', '--rm', '--network', 'overlay', image, 'true'],
      ['run', '--rm', '-p', '80:80:80:80', image, 'true'],
      ['run', '--rm', '-p', '8080:80', '--network', 'host', image, 'true'],
      ['run', '--rm', '-v', 'relative:/mnt', image, 'true'],
      ['run', '--no-such-flag', image],
      ['run', '--rm', '--pull', 'sometimes', image],
      ['run', '--rm', '--security-opt', 'apparmor=foo', image, 'true'],
      ['run', '--rm', '--security-opt', `seccomp=${join(world.dir, 'no-such-profile.json')}`, image, 'true'],
    ]) {
      const res = await world.cli(args)
      assert.equal(res.status, ERROR_CODES.USAGE, `${args.join(' ')}: ${res.stderr}`)
      assert.equal(errorLines(res.stderr).length, 1, res.stderr)
    }
  })

  test('distinct failures have distinct statuses', () => {
    const statuses = [ERROR_CODES.CONTAINERD_UNREACHABLE, ERROR_CODES.IMAGE_NOT_FOUND, ERROR_CODES.NAME_IN_USE, ERROR_CODES.USAGE, ERROR_CODES.CONTAINER_COMMAND_NOT_FOUND]
    assert.equal(new Set(statuses).size, statuses.length)
  })
})

describe('rmi by IMAGE ID', () => {
  test('takes the ID `images` prints; one that names several tags needs -f, which removes them all', async () => {
    const ref = await world.pushBusybox('by-id:v1', {layers: [{files: [{path: 'id', content: 'by id\n'}]}]})
    assert.equal((await world.cli(['pull', ref])).status, 0)
    const listed = await world.cli(['images'])
    const id = new RegExp(`${ref.split(':').slice(0, -1).join(':').replace(/[.]/g, '\\.')}\\s+v1\\s+([0-9a-f]{12})`).exec(listed.stdout)?.[1]
    assert.ok(id, listed.stdout)
    world.containerd.ctr(['images', 'tag', ref, `${ref}-copy`])
    const refused = await world.cli(['rmi', id])
    assert.equal(refused.status, ERROR_CODES.IMAGE_IN_USE, refused.stderr)
    assert.match(refused.stderr, /is tagged as .*by-id:v1.*by-id:v1-copy|is tagged as .*by-id:v1-copy.*by-id:v1/)
    const removed = await world.cli(['rmi', '-f', id])
    assert.equal(removed.status, 0, removed.stderr)
    assert.equal(removed.stdout.split('\n').filter((l) => l.startsWith('Untagged: ')).length, 2)
    assert.doesNotMatch((await world.cli(['images'])).stdout, /by-id/)
    const missing = await world.cli(['rmi', id])
    assert.equal(missing.status, ERROR_CODES.IMAGE_NOT_FOUND, missing.stderr)
  })
})

describe('cleanup', () => {
  test('after rm and rmi, containerd lists no container, task, snapshot or lease of the test', async () => {
    const images = await world.cli(['images', '--format', 'json'])
    const listed = (JSON.parse(images.stdout) as Array<{name: string; size?: number}>).find((i) => i.name === image)
    assert.ok(listed, images.stdout)
    assert.ok(listed.size! > 1_000_000, 'the busybox layer counts in the size')
    const run = await world.cli(['run', '-d', '--name', 'last', image, 'true'])
    assert.equal(run.status, 0, run.stderr)
    const inUse = await world.cli(['rmi', image])
    assert.equal(inUse.status, ERROR_CODES.IMAGE_IN_USE, inUse.stderr)
    assert.equal(errorLines(inUse.stderr).length, 1)
    assert.equal((await world.cli(['rm', '-f', 'last'])).status, 0)
    const rmi = await world.cli(['rmi', image])
    assert.equal(rmi.status, 0, rmi.stderr)
    const ctr = world.containerd.ctr
    assert.equal(ctr(['containers', 'ls', '-q']).trim(), '')
    assert.equal(ctr(['tasks', 'ls']).trim().split('\n').length, 1, 'only the header of ctr tasks ls')
    assert.equal(ctr(['snapshots', '--snapshotter', 'overlayfs', 'ls']).trim().split('\n').length, 1, ctr(['snapshots', 'ls']))
    assert.equal(ctr(['leases', 'ls', '-q']).trim(), '')
    assert.equal(ctr(['images', 'ls', '-q']).trim(), '')
    assert.equal(ctr(['content', 'ls', '-q']).trim(), '')
  })
})
