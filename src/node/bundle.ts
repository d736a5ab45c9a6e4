// The lazyctl program as it is copied to a node: the built app (dist, bin, proto, package.json
// and the production dependency closure of node_modules) and, when the node has no Node of the same
// major version as this one, the Node binary lazyctl runs on here (a supported line:
// scripts/runtime). Streamed as a tar, file by file; never held in memory.
import {createHash} from 'node:crypto'
import {createReadStream, existsSync, readFileSync} from 'node:fs'
import {lstat, readdir, readFile, readlink} from 'node:fs/promises'
import {dirname, join, relative} from 'node:path'
import {pipeline} from 'node:stream/promises'
import {Readable} from 'node:stream'
import tar from 'tar-stream'
import {PACKAGE_ROOT} from '../paths.js'

export interface BundleFile {
  /** Path inside the tar. */
  name: string
  /** Absolute local path, or inline content. */
  source: string | Buffer
  size: number
  mode: number
  mtimeMs: number
  linkTarget?: string
}

export interface Bundle {
  /** Changes whenever any shipped byte would change (path, size, mtime of every file). */
  id: string
  files: BundleFile[]
  totalBytes: number
  /** Path of node on the node that the wrapper runs. */
  nodePath: string
  bundlesNode: boolean
}

const SMALL_FILE = 1 << 20

/**
 * The app's files, relative to the package root: dist/bundle is what bin/run.js runs, dist/src
 * holds the scripts run by path (the logging binary), the manifest spares oclif a command scan.
 */
export const APP_ENTRIES = ['dist/bundle', 'dist/src', 'dist/commands', 'bin', 'proto', 'package.json', 'oclif.manifest.json']

/** Directories of the packages `package.json` needs at run time (dependencies + optional ones, transitively). */
export function productionPackageDirs(root = PACKAGE_ROOT): string[] {
  const seen = new Set<string>()
  const visit = (pkgDir: string) => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {dependencies?: Record<string, string>; optionalDependencies?: Record<string, string>}
    const names = [...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {})]
    for (const name of names) {
      const dir = resolvePackage(name, pkgDir, root)
      if (!dir || seen.has(dir)) continue // a missing optional dependency is fine: npm skipped it too
      seen.add(dir)
      visit(dir)
    }
  }
  visit(root)
  return [...seen].sort()
}

/** Node's lookup: <dir>/node_modules/<name>, then each parent's, up to the app root. */
function resolvePackage(name: string, fromDir: string, root: string): string | undefined {
  let dir = fromDir
  for (;;) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    if (dir === root) return undefined
    const parent = dirname(dir)
    if (parent === dir) return undefined
    dir = parent
  }
}

async function walk(dir: string, out: BundleFile[], prefix: string, base: string, skipNodeModules: boolean): Promise<void> {
  let entries: string[]
  try {
    entries = (await readdir(dir)).sort()
  } catch {
    return
  }
  for (const entry of entries) {
    const full = join(dir, entry)
    const st = await lstat(full)
    const name = join(prefix, relative(base, full))
    if (st.isDirectory()) {
      // Nested node_modules hold packages the resolver adds on its own (only those needed).
      if (skipNodeModules && entry === 'node_modules') continue
      await walk(full, out, prefix, base, skipNodeModules)
    } else if (st.isSymbolicLink()) {
      out.push({name, source: full, size: 0, mode: 0o777, mtimeMs: st.mtimeMs, linkTarget: await readlink(full)})
    } else if (st.isFile()) {
      out.push({name, source: full, size: st.size, mode: shippedMode(st.mode), mtimeMs: st.mtimeMs})
    }
  }
}

/**
 * The mode a shipped file gets on the node, where root runs it: 0755 or 0644 by its executable
 * bit, as git keeps modes. A group- or world-writable file on the setup machine must not become
 * root-run code anyone on the node can change.
 */
export function shippedMode(mode: number): number {
  return mode & 0o111 ? 0o755 : 0o644
}

export interface BundleOptions {
  installDir: string
  /** A Node of this major version already on the node; when absent, this process's node binary is shipped. */
  nodeOnNode?: string
  appRoot?: string
}

const bundleCache = new Map<string, Promise<Bundle>>()

/** Builds the bundle once per process and option set (a fleet ships the same one to every host). */
export function buildBundle(options: BundleOptions): Promise<Bundle> {
  const key = JSON.stringify([options.installDir, options.nodeOnNode ?? '', options.appRoot ?? PACKAGE_ROOT])
  let bundle = bundleCache.get(key)
  if (!bundle) {
    bundle = listBundle(options)
    bundleCache.set(key, bundle)
  }
  return bundle
}

async function listBundle(options: BundleOptions): Promise<Bundle> {
  const appRoot = options.appRoot ?? PACKAGE_ROOT
  const files: BundleFile[] = []
  for (const entry of APP_ENTRIES) {
    const full = join(appRoot, entry)
    const st = await lstat(full).catch(() => undefined)
    if (!st) continue
    if (st.isDirectory()) await walk(full, files, join('app', entry), full, false)
    else files.push({name: join('app', entry), source: full, size: st.size, mode: shippedMode(st.mode), mtimeMs: st.mtimeMs})
  }
  for (const dir of productionPackageDirs(appRoot)) {
    await walk(dir, files, join('app', relative(appRoot, dir)), dir, true)
  }
  const bundlesNode = !options.nodeOnNode
  const nodePath = options.nodeOnNode ?? join(options.installDir, 'node', 'bin', 'node')
  if (bundlesNode) {
    const st = await lstat(process.execPath)
    files.push({name: 'node/bin/node', source: process.execPath, size: st.size, mode: 0o755, mtimeMs: st.mtimeMs})
  }
  const wrapper = Buffer.from(`#!/bin/sh\n# Installed by lazyctl node setup.\nexec ${nodePath} ${join(options.installDir, 'app', 'bin', 'run.js')} "$@"\n`)
  files.push({name: 'bin/lazyctl', source: wrapper, size: wrapper.length, mode: 0o755, mtimeMs: 0})
  const hash = createHash('sha256')
  hash.update(`node=${nodePath} bundled=${bundlesNode} ${process.version} ${process.arch}\n`)
  for (const f of files) hash.update(`${f.name}\t${f.size}\t${Math.floor(f.mtimeMs / 1000)}\t${f.linkTarget ?? ''}\n`)
  hash.update(wrapper)
  return {id: hash.digest('hex'), files, totalBytes: files.reduce((n, f) => n + f.size, 0), nodePath, bundlesNode}
}

/** The bundle as an uncompressed tar stream (the link is usually fast; CPU is what a node lacks). */
export function packBundle(bundle: Bundle): Readable {
  const pack = tar.pack()
  void (async () => {
    try {
      for (const f of bundle.files) {
        const header = {name: f.name, mode: f.mode, mtime: new Date(f.mtimeMs || 0)}
        if (f.linkTarget !== undefined) {
          await new Promise<void>((resolve, reject) => pack.entry({...header, type: 'symlink', linkname: f.linkTarget}, (err) => (err ? reject(err) : resolve())))
        } else if (Buffer.isBuffer(f.source)) {
          await new Promise<void>((resolve, reject) => pack.entry({...header, size: f.size}, f.source as Buffer, (err) => (err ? reject(err) : resolve())))
        } else if (f.size <= SMALL_FILE) {
          // Most of the app is thousands of small files: one read each beats a stream each.
          const data = await readFile(f.source)
          if (data.length !== f.size) throw new Error(`${f.source} changed while being copied`)
          await new Promise<void>((resolve, reject) => pack.entry({...header, size: f.size}, data, (err) => (err ? reject(err) : resolve())))
        } else {
          const sink = pack.entry({...header, size: f.size})
          await pipeline(createReadStream(f.source), sink)
        }
      }
      pack.finalize()
    } catch (err) {
      pack.destroy(err as Error)
    }
  })()
  // tar-stream's pack is a streamx stream; hand callers a Node Readable (async iteration keeps backpressure).
  return Readable.from(pack, {objectMode: false})
}

/** process.arch as `uname -m` prints it. */
export function unameArch(arch: string = process.arch): string {
  return ({x64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ppc64: 'ppc64le', s390x: 's390x'} as Record<string, string>)[arch] ?? arch
}
