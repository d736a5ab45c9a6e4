#!/usr/bin/env node
// The lazyctl entry point: the bundled CLI (dist/bundle, made by `npm run build`), where oclif finds
// each command through oclif.manifest.json and loads only that command's files.
// `run` and `pull` first tell lazyctl's snapshotter which image is coming (src/run/early-hint.ts):
// the rest is imported after that, so the daemon reads the image's TOCs while the CLI loads.
import module from 'node:module'

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(`lazyctl: Node.js ${process.version} is not supported (lazyctl needs >= 22.15)\n` +
    'hint: run lazyctl through bin/lazyctl, which uses the runtime scripts/runtime installs, or put Node.js >= 22 on PATH\n')
  process.exit(6)
}
// V8's compiled code for the bundle, cached per user: a start then skips parsing and compiling most of
// the CLI. In the user's own cache directory rather than the shared temp directory Node defaults to,
// so that no other user can plant code that a root process would run; never inside the installed app,
// whose files `node teardown` restores. Without HOME, Node simply runs uncached.
const cacheHome = process.env.XDG_CACHE_HOME || (process.env.HOME && `${process.env.HOME}/.cache`)
if (cacheHome) module.enableCompileCache?.(`${cacheHome}/lazyctl/compile-cache`)

let argv = process.argv.slice(2)
// `lazyctl -n NS ps`: global flags before the command move after its name (src/cli/global-flags.js).
if (argv[0]?.startsWith('-') && argv[0] !== '--version') {
  const {hoistGlobalFlags} = await import('../dist/bundle/src/cli/global-flags.js')
  const {readFileSync} = await import('node:fs')
  const manifest = JSON.parse(readFileSync(new URL('../oclif.manifest.json', import.meta.url), 'utf8'))
  argv = [...hoistGlobalFlags(argv, manifest.commands)]
  process.argv = [...process.argv.slice(0, 2), ...argv]
}
if (argv[0] === 'run' || argv[0] === 'pull') {
  const {hintSnapshotterEarly} = await import('../dist/bundle/src/run/early-hint.js')
  hintSnapshotterEarly(argv)
}
// `run`, `snapshotter serve` and `--version` start without oclif when their line is plain (src/cli/lean.ts).
const {runWithoutOclif} = await import('../dist/bundle/src/cli/lean.js')
if (!(await runWithoutOclif(argv))) {
  const {run} = await import('../dist/bundle/src/cli/main.js')
  await run()
}
