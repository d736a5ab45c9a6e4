// Randomized corruption: bytes flipped at random offsets of valid blobs, many seeds. Whatever is
// hit, the reader and the verifier either fail with a LazyError or return exactly the original
// bytes — never a crash, never wrong data.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {isLazyError} from '../../src/cli/errors.js'
import {createEstargzFile} from '../../src/estargz/create-file.js'
import {bufferSource} from '../../src/estargz/random-access.js'
import {openEstargz} from '../../src/estargz/reader.js'
import {verifyEstargz} from '../../src/estargz/verify.js'
import {testBytes, testDir, writeTar, type RichEntry} from './fixtures.js'

const SEEDS = 400

function rng(seed: number): (n: number) => number {
  let x = seed * 2654435761 + 1
  return (n) => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return Math.abs(x) % n
  }
}

describe('randomized corruption of valid blobs', () => {
  let dir: string
  const files = new Map<string, Buffer>()
  const blobs: {blob: Buffer; tocDigest: string; tocOffset: number}[] = []

  before(async () => {
    dir = await testDir('corruption')
    const entries: RichEntry[] = [{header: {name: 'd/', type: 'directory', mode: 0o755}}]
    for (let i = 0; i < 12; i++) {
      const content = testBytes(i * i * 700 + i, `file-${i}`)
      files.set(`d/file-${i}`, content)
      entries.push({header: {name: `d/file-${i}`, type: 'file', mode: 0o644, size: content.length}, content})
    }
    entries.push({header: {name: 'd/link', type: 'link', linkname: 'd/file-5'}})
    files.set('d/link', files.get('d/file-5')!)
    await writeTar(join(dir, 'in.tar'), entries)
    for (const [i, options] of [{chunkSize: 4096}, {chunkSize: 1 << 22, prioritizedFiles: ['d/file-3']}].entries()) {
      const r = await createEstargzFile(join(dir, 'in.tar'), join(dir, `${i}.esgz`), options)
      blobs.push({blob: readFileSync(join(dir, `${i}.esgz`)), tocDigest: r.tocDigest, tocOffset: r.tocOffset})
    }
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  test(`${SEEDS} seeds of flipped bytes never crash the reader or verifier and never yield wrong bytes`, async (t) => {
    const outcomes = {opened: 0, refusedAtOpen: 0, filesRead: 0, filesRefused: 0, verified: 0, verifyRefused: 0}
    for (let seed = 1; seed <= SEEDS; seed++) {
      const rand = rng(seed)
      const {blob, tocDigest, tocOffset} = blobs[seed % blobs.length]!
      const bad = Buffer.from(blob)
      const flips = 1 + rand(4)
      for (let i = 0; i < flips; i++) {
        // Half the hits land in the TOC and footer, the rest anywhere.
        const at = rand(2) === 0 ? tocOffset + rand(bad.length - tocOffset) : rand(bad.length)
        bad[at] = bad[at]! ^ (1 + rand(255))
      }
      const expect = seed % 3 === 0 ? undefined : tocDigest // sometimes without the trust anchor
      const guard = (err: unknown, what: string): void => {
        if (!isLazyError(err)) assert.fail(`seed ${seed}: ${what} threw a non-LazyError: ${(err as Error)?.stack ?? String(err)}`)
      }
      let reader
      try {
        reader = await openEstargz(bufferSource(bad), {expectedTocDigest: expect})
        outcomes.opened++
      } catch (err) {
        guard(err, 'open')
        outcomes.refusedAtOpen++
      }
      if (reader) {
        for (const [path, content] of files) {
          try {
            const got = await reader.readFile(path)
            assert.ok(got.equals(content), `seed ${seed}: ${path} read back wrong bytes`)
            const part = await reader.readFile(path, Math.floor(content.length / 3), 5000)
            assert.ok(part.equals(content.subarray(Math.floor(content.length / 3), Math.floor(content.length / 3) + 5000)), `seed ${seed}: ${path} range`)
            outcomes.filesRead++
          } catch (err) {
            if (err instanceof assert.AssertionError) throw err
            guard(err, `reading ${path}`)
            outcomes.filesRefused++
          }
        }
      }
      try {
        await verifyEstargz(bufferSource(bad), {expectedTocDigest: tocDigest})
        outcomes.verified++
      } catch (err) {
        guard(err, 'verify')
        outcomes.verifyRefused++
      }
    }
    t.diagnostic(JSON.stringify(outcomes))
    // The test must have exercised both sides: refusals and reads that survived harmless flips.
    assert.ok(outcomes.refusedAtOpen > 0 && outcomes.filesRefused > 0 && outcomes.filesRead > 0 && outcomes.verifyRefused > 0, JSON.stringify(outcomes))
  })
})
