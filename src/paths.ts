// Locations inside the installed package (works from dist/ and from an npm install).
import {existsSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'

function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('lazyctl package root not found')
    dir = parent
  }
  return dir
}

export const PACKAGE_ROOT = findPackageRoot()
export const PROTO_DIR = join(PACKAGE_ROOT, 'proto')
export const CLI_ENTRY = join(PACKAGE_ROOT, 'bin', 'run.js')
