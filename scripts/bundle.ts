// Bundles the CLI with esbuild into dist/bundle/: one entry per command plus the CLI entry, with the
// modules they share split into chunks. Node then reads a few files instead of ~300 (oclif, grpc-js,
// protobufjs, semver …) and skips the CommonJS export scan it runs on each CommonJS module that an
// ES module imports: `lazyctl run` starts in about half the CPU time. tsc's output in dist/ stays what
// the tests import; native addons, the AWS SDK (loaded only for ECR/SSM) and the TypeScript
// compiler (which oclif loads only for development) and proto-loader (see below) stay outside.
//
// Usage: node dist/scripts/bundle.js (run by `npm run build` after tsc).
import {build} from 'esbuild'
import {readdirSync, rmSync} from 'node:fs'
import {join, relative} from 'node:path'
import {PACKAGE_ROOT} from '../src/paths.js'

const DIST = join(PACKAGE_ROOT, 'dist')
export const BUNDLE_DIR = join(DIST, 'bundle')

function commandEntries(dir: string): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return commandEntries(path)
    return entry.name.endsWith('.js') ? [path] : []
  })
}

// bin/run.js imports the early snapshotter hint before the CLI (src/run/early-hint.ts), then the
// commands that start without oclif (src/cli/lean.ts), then oclif's entry.
const entryPoints = [join(DIST, 'src', 'cli', 'main.js'), join(DIST, 'src', 'run', 'early-hint.js'), join(DIST, 'src', 'cli', 'lean.js'), join(DIST, 'src', 'cli', 'global-flags.js'), ...commandEntries(join(DIST, 'commands'))]
rmSync(BUNDLE_DIR, {recursive: true, force: true})
const result = await build({
  entryPoints,
  outbase: DIST,
  outdir: BUNDLE_DIR,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  // grpc-js requires proto-loader (and with it protobufjs) only for channelz and ORCA, which lazyctl
  // does not use: outside the bundle, Node does not parse its ~400 kB at every start.
  external: ['better-sqlite3', 'fuse-native', 'ssh2', 'cpu-features', '@aws-sdk/*', 'typescript', 'ts-node', 'tsx', '@grpc/proto-loader'],
  // Bundled CommonJS code calls require(); ES modules have none, so each output file makes its own.
  banner: {js: "import {createRequire as __lazyctlCreateRequire} from 'node:module'; const require = __lazyctlCreateRequire(import.meta.url);"},
  logLevel: 'warning',
  metafile: true,
})
const outputs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js'))
console.log(`bundle: ${entryPoints.length} entries → ${outputs.length} files in ${relative(PACKAGE_ROOT, BUNDLE_DIR)}`)
