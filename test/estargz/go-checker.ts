// Builds (once, cached under dist/interop) the Go program of test/interop/ that reads blobs with
// the reference eStargz library Debian ships, and runs it.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {requireCommand} from '../rig/process.js'

const SOURCE = join(process.cwd(), 'test/interop/verify-estargz.go')
const BINARY = join(process.cwd(), 'dist/interop/verify-estargz')
const GOPATH = '/usr/share/gocode'

export interface GoFile {
  path: string
  type: string
  size: number
  sha256?: string
  mode: number
  uid: number
  gid: number
  userName: string
  groupName: string
  linkName?: string
  devMajor?: number
  devMinor?: number
  modtime: number
  xattrs?: Record<string, string>
  numLink: number
  chunks: number
}

export function goChecker(): string {
  if (existsSync(BINARY) && statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs) return BINARY
  requireCommand('go', 'golang-go')
  if (!existsSync(join(GOPATH, 'src/github.com/containerd/stargz-snapshotter/estargz'))) {
    throw new Error('the reference eStargz library is missing: apt-get install golang-github-containerd-stargz-snapshotter-dev')
  }
  mkdirSync(join(process.cwd(), 'dist/interop'), {recursive: true})
  execFileSync('go', ['build', '-o', BINARY, SOURCE], {
    env: {...process.env, GO111MODULE: 'off', GOPATH, GOCACHE: process.env.GOCACHE ?? join(process.cwd(), 'dist/interop/gocache'), GOFLAGS: '-mod=mod'},
    stdio: 'pipe',
  })
  return BINARY
}

/** Every file of the blob as the reference reader sees it (after it verified TOC and chunks). */
export function readWithReference(blob: string, tocDigest: string): Map<string, GoFile> {
  const out = execFileSync(goChecker(), [blob, tocDigest], {encoding: 'utf8', maxBuffer: 256 << 20})
  return new Map(out.trim().split('\n').map((line) => {
    const file = JSON.parse(line) as GoFile
    return [file.path, file]
  }))
}
