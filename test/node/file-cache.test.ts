import {after, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {FileCache} from '../../src/node/file-cache.js'
import {LocalTransport} from '../../src/node/local-transport.js'
import {removeDir, rigTempDir} from '../rig/tmp.js'

const dir = rigTempDir('file-cache')
after(() => removeDir(dir))

/** A transport that counts round trips (the thing the cache exists to save). */
class CountingTransport extends LocalTransport {
  execs = 0
  override exec(...args: Parameters<LocalTransport['exec']>) {
    this.execs++
    return super.exec(...args)
  }
  override readFile(path: string) {
    this.execs++
    return super.readFile(path)
  }
}

test('one probe serves files, absences and symlinks; a truncated entry falls back to a real read', async () => {
  const bin = Buffer.from([0, 1, 2, 255, 10, 13, 64, 64])
  writeFileSync(join(dir, 'a.toml'), 'version = 2\n')
  writeFileSync(join(dir, 'bin'), bin)
  mkdirSync(join(dir, 'd'))
  symlinkSync('/etc/systemd/system/x.service', join(dir, 'link'))
  const files = ['a.toml', 'bin', 'missing', 'd'].map((f) => join(dir, f))
  const links = [join(dir, 'link'), join(dir, 'a.toml')]
  const t = new CountingTransport()
  const out = (await t.exec(FileCache.probeScript(files, links))).stdout
  const cache = new FileCache(t)
  cache.absorb(out, files, links)
  const before = t.execs
  assert.equal((await cache.read(files[0]!))?.toString(), 'version = 2\n')
  assert.deepEqual(await cache.read(files[1]!), bin)
  assert.equal(await cache.read(files[2]!), undefined)
  assert.equal(await cache.readLink(links[0]!), '/etc/systemd/system/x.service')
  assert.equal(await cache.readLink(links[1]!), undefined)
  assert.equal(t.execs, before, 'served without a round trip')

  const truncated = new FileCache(t)
  truncated.absorb(out.replace(/@@LZ F 1 8\n.*\n/, '@@LZ F 1 8\nAAE=\n'), files, links)
  assert.deepEqual(await truncated.read(files[1]!), bin)
  assert.equal(t.execs, before + 1, 'the damaged entry was read again')
})
