// The demo behind scripts/demo: the README's main job, end to end on one machine.
//   1. builds the demo image (Debian root + twenty 50 MiB text files; cached in /var/cache/lazyctl-demo);
//   2. starts a private registry and a private containerd whose `stargz` proxy plugin points at a
//      socket of the demo's;
//   3. converts the image to eStargz and pushes it: `lazyctl convert oci-archive:… docker://…`
//      (the result is kept, so a later run pushes it with `lazyctl convert oci:… docker://…`);
//   4. runs it lazily: `lazyctl run --snapshotter stargz --snapshotter-socket …` (which starts the
//      lazy snapshotter itself), then, after removing the image, with a full pull (overlayfs);
//   5. prints both start times (run → the command's first output) and the bytes the registry
//      served for each, counted from the registry's own log.
// Options: --rate-mbit N runs everything in a network namespace whose loopback is shaped to N Mbit/s
// (the push happens before the shaping); --keep keeps the services up until Ctrl-C.
// Everything it starts is torn down at the end, on failure and on Ctrl-C.
import {execFile} from 'node:child_process'
import {existsSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {promisify} from 'node:util'
import {buildDemoImage, convertedLayout, converterKey, DEMO_COMMAND, pruneConvertedLayouts} from '../bench/lib/demo-image.js'
import {NETNS_ENV, reexecInNamespace, shapeNamespace} from '../bench/lib/netns.js'
import {bytesServedBetween} from '../bench/lib/registry-window.js'
import {startLazyctlStack, type LazyctlStack} from '../bench/lib/stack.js'
import {onSignalsTearDown} from '../bench/lib/teardown.js'
import {assertSucceeded, killTimedRuns, runTimed, type TimedRun} from '../bench/lib/timed-run.js'
import Run from '../commands/run.js'
import {formatBytes} from '../src/cli/format.js'
import {PACKAGE_ROOT} from '../src/paths.js'

const execFileAsync = promisify(execFile)

interface DemoOptions {
  rateMbit: number
  keep: boolean
}

const USAGE = `usage: scripts/demo [--rate-mbit N] [--keep]
  --rate-mbit N  run registry, containerd and snapshotter in a network namespace shaped to N Mbit/s
  --keep         keep the services running after the comparison, until Ctrl-C`

function parseArgs(argv: string[]): DemoOptions {
  const options: DemoOptions = {rateMbit: 0, keep: false}
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--keep') options.keep = true
    else if (arg === '--rate-mbit' || arg.startsWith('--rate-mbit=')) {
      const value = arg.includes('=') ? arg.split('=')[1] : argv[++i]
      const rate = Number(value)
      if (!Number.isFinite(rate) || rate <= 0) fail(`--rate-mbit: want a positive number of Mbit/s, got ${JSON.stringify(value)}`)
      options.rateMbit = rate
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`)
      process.exit(0)
    } else fail(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`)
  }
  return options
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n`)
  process.exit(2)
}

const started = performance.now()
function say(line: string): void {
  process.stdout.write(`demo [${((performance.now() - started) / 1000).toFixed(1).padStart(5)} s] ${line}\n`)
}

/** Runs one announced phase and says how long it took. */
async function phase<T>(title: string, fn: () => Promise<T>): Promise<T> {
  say(`${title} …`)
  const t0 = performance.now()
  const result = await fn()
  say(`${title}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  return result
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '–' : `${(ms / 1000).toFixed(2)} s`
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2))
  if (process.getuid?.() !== 0) fail('run as root: containerd, FUSE mounts and network namespaces need it')
  if (!existsSync('/dev/fuse')) fail('/dev/fuse is missing: run scripts/bootstrap (it loads the fuse module)')
  const netns = process.env[NETNS_ENV]
  if (options.rateMbit > 0 && !netns) {
    say(`entering a network namespace for the ${options.rateMbit} Mbit/s link`)
    return reexecInNamespace(`lazyctl-demo-${process.pid}`)
  }

  let stack: LazyctlStack | undefined
  // One teardown, whoever asks first (a signal or the end of main); later callers wait for the same one.
  let tearingDown: Promise<void> | undefined
  const teardown = (): Promise<void> =>
    (tearingDown ??= (async () => {
      killTimedRuns()
      if (stack) await phase('tearing down (snapshotter, containerd, registry, temp dirs)', () => stack!.stop())
    })())
  onSignalsTearDown(teardown, say)

  try {
    const image = await phase('building the demo image (Debian + python3, 20 × 50 MiB of text; cached)', () => buildDemoImage({onProgress: (line) => say(`  ${line}`)}))
    say(`  ${image.archive}: ${formatBytes(image.layersBytes)} of gzip layers, ${formatBytes(image.uncompressedBytes)} unpacked`)
    stack = await phase('starting a private registry and containerd (proxy plugin `stargz`)', () => startLazyctlStack())
    const s = stack
    say(`  registry ${s.registry.host}, containerd ${s.containerd.address}, snapshotter socket ${s.snapshotterSocket}`)
    const ref = `${s.registry.host}/demo:esgz`
    await convertAndPush(s, image.archive, ref)
    const eStargzBytes = await s.registry.bytesReceived({repository: 'demo'})
    say(`  the registry received ${formatBytes(eStargzBytes)} of eStargz layers`)
    if (netns && options.rateMbit > 0) {
      shapeNamespace(netns, options.rateMbit)
      say(`link shaped to ${options.rateMbit} Mbit/s (namespace ${netns})`)
    }

    // `lazyctl run --snapshotter stargz` finds the snapshotter's socket in containerd's proxy-plugin
    // config (ours), and starts `lazyctl snapshotter serve` there when nothing answers; root and
    // config come from LAZYCTL_CONFIG (the stack's env). --snapshotter-socket, where run has it,
    // names the same socket.
    const socketFlag = 'snapshotter-socket' in Run.flags ? ['--snapshotter-socket', s.snapshotterSocket] : []
    const lazy = await phase(`lazy run: lazyctl run --rm --snapshotter stargz ${socketFlag.length ? '--snapshotter-socket … ' : ''}${ref} ${DEMO_COMMAND.join(' ')}`, async () => {
      const [cmd, args] = s.lazyctl(['run', '--rm', '--snapshotter', 'stargz', ...socketFlag, ref, ...DEMO_COMMAND])
      return assertSucceeded(await runTimed(cmd, args, {env: s.env}), 'the lazy run')
    })
    printOutput(lazy)
    const lazyPid = s.snapshotterPid()
    say(lazyPid ? `  the lazy snapshotter was started by lazyctl run: pid ${lazyPid}, root ${s.snapshotterRoot}` : '  (no lazyctl snapshotter is running after the lazy run)')
    const lazyBytes = await windowBytes(s, lazy)

    await phase('removing the image and stopping the lazy snapshotter (its background fetch would share the link)', async () => {
      const [cmd, args] = s.lazyctl(['rmi', ref])
      assertSucceeded(await runTimed(cmd, args, {env: s.env}), 'lazyctl rmi')
      await s.stopSnapshotter({wipe: true})
    })
    const full = await phase(`full pull: lazyctl run --rm --snapshotter overlayfs ${ref} …`, async () => {
      const [cmd, args] = s.lazyctl(['run', '--rm', '--snapshotter', 'overlayfs', ref, ...DEMO_COMMAND])
      return assertSucceeded(await runTimed(cmd, args, {env: s.env}), 'the full-pull run')
    })
    printOutput(full)
    const fullBytes = await windowBytes(s, full)

    const rows = [
      ['', 'start (run → first output)', 'registry bytes before first output', 'until exit'],
      ['lazy (lazyctl snapshotter)', seconds(lazy.firstOutputMs), formatBytes(lazyBytes.beforeOutput), formatBytes(lazyBytes.untilExit)],
      ['full pull (overlayfs)', seconds(full.firstOutputMs), formatBytes(fullBytes.beforeOutput), formatBytes(fullBytes.untilExit)],
    ]
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
    process.stdout.write('\n' + rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c]!)).join('  ')).join('\n') + '\n')
    const link = options.rateMbit > 0 ? `at ${options.rateMbit} Mbit/s` : 'on unshaped loopback (try --rate-mbit 100)'
    if (lazy.firstOutputMs && full.firstOutputMs) {
      process.stdout.write(
        `\nlazy start ${(full.firstOutputMs / lazy.firstOutputMs).toFixed(1)}x faster ${link}; ` +
          `${((lazyBytes.beforeOutput / Math.max(1, eStargzBytes)) * 100).toFixed(2)}% of the ${formatBytes(eStargzBytes)} image fetched before the first output.\n\n`,
      )
    }
    if (options.keep) {
      say('--keep: everything stays up until Ctrl-C. Try:')
      const nsPrefix = netns ? `nsenter --net=/run/netns/${netns} ` : ''
      say(`  ${nsPrefix}node bin/run.js run --rm --snapshotter stargz --snapshotter-socket ${s.snapshotterSocket} -a ${s.containerd.address} -n ${s.containerd.namespace} ${ref} sh`)
      say(`  LAZYCTL_CONFIG=${s.configFile} node bin/run.js snapshotter status --snapshotter-socket ${s.snapshotterSocket}`)
      say(`  ctr -a ${s.containerd.address} -n ${s.containerd.namespace} images ls`)
      // Wait for the signal handler, which tears down and exits; the timer keeps Node from leaving first.
      setInterval(() => undefined, 1 << 30)
      await new Promise<never>(() => undefined)
    }
    return 0
  } catch (err) {
    process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  } finally {
    await teardown()
  }
}

/**
 * `lazyctl convert oci-archive:… docker://…`. Its result is kept (skopeo copies it from the
 * registry into an OCI layout in the demo cache, keyed by lazyctl's converter code), so a later
 * demo run pushes the same eStargz image with `lazyctl convert oci:… docker://…`, which keeps
 * layers that already are eStargz as they are, instead of spending minutes at gzip level 9 again.
 */
async function convertAndPush(s: LazyctlStack, archive: string, ref: string): Promise<void> {
  const source = `oci-archive:${archive}:demo`
  const key = converterKey(PACKAGE_ROOT, JSON.stringify([source, []]))
  const {layout, timeFile} = convertedLayout('demo', key)
  if (existsSync(timeFile)) {
    await phase(`pushing the eStargz image an earlier run converted (${Number(readFileSync(timeFile, 'utf8')) / 1000 | 0} s then): lazyctl convert oci:${layout}:esgz docker://${ref}`, async () => {
      const [cmd, args] = s.lazyctl(['convert', `oci:${layout}:esgz`, `docker://${ref}`])
      assertSucceeded(await runTimed(cmd, args, {env: s.env, onStderrLine: (line) => line.trim() && say(`  ${line.trim()}`)}), 'lazyctl convert')
    })
    say(`  (delete ${layout}* to convert from scratch)`)
    return
  }
  const converted = await phase(`converting to eStargz and pushing: lazyctl convert ${source} docker://${ref}`, async () => {
    const [cmd, args] = s.lazyctl(['convert', source, `docker://${ref}`])
    return assertSucceeded(await runTimed(cmd, args, {env: s.env, onStderrLine: (line) => line.trim() && say(`  ${line.trim()}`)}), 'lazyctl convert')
  })
  const tmp = `${layout}.tmp-${process.pid}`
  try {
    await execFileAsync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', `docker://${ref}`, `oci:${tmp}:esgz`])
    rmSync(layout, {recursive: true, force: true})
    renameSync(tmp, layout)
    writeFileSync(timeFile, `${Math.round(converted.exitMs)}\n`)
    pruneConvertedLayouts('demo', key)
    say(`  kept the eStargz image in ${layout} for the next run`)
  } catch (err) {
    say(`  (could not keep the eStargz image for the next run: ${err instanceof Error ? err.message.split('\n')[0] : String(err)})`)
  } finally {
    rmSync(tmp, {recursive: true, force: true})
  }
}

function printOutput(run: TimedRun): void {
  for (const line of run.stdout.trimEnd().split('\n')) say(`  | ${line}`)
  say(`  first output after ${seconds(run.firstOutputMs)}, exit after ${seconds(run.exitMs)}`)
}

async function windowBytes(s: LazyctlStack, run: TimedRun): Promise<{beforeOutput: number; untilExit: number}> {
  const requests = await s.registry.requests()
  return {
    beforeOutput: bytesServedBetween(requests, run.startedAt, run.firstOutputAt ?? run.exitedAt),
    untilExit: bytesServedBetween(requests, run.startedAt, run.exitedAt),
  }
}

process.exit(await main())
