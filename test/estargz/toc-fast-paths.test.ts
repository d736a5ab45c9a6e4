// The shortcuts that make opening a big TOC cheap must agree with the slow, obvious forms they
// skip: modtime arithmetic with Date.parse, the canonical-name check with a split per name, and
// the parsed-object reuse of parseToc with a copy of the known keys.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, rmSync} from 'node:fs'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'
import {isLazyError} from '../../src/cli/errors.js'
import {createEstargzFile} from '../../src/estargz/create-file.js'
import {encodeFooter} from '../../src/estargz/footer.js'
import {memoizedModtimeSeconds, modtimeSeconds} from '../../src/estargz/modtime.js'
import {bufferSource} from '../../src/estargz/random-access.js'
import {openEstargz} from '../../src/estargz/reader.js'
import {emptyHeader, encodeTarHeader} from '../../src/estargz/tar-header.js'
import {canonicalPath, parseToc, parseTocWithPaths, serializeToc} from '../../src/estargz/toc-codec.js'
import {testBytes, testDir, writeTar} from './fixtures.js'

const dateParseSeconds = (s: string): number => {
  const ms = Date.parse(s)
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000)
}

/** The canonical-path rule written the plain way (split, drop '' and '.', refuse '..'). */
function slowCanonical(name: string): string | 'unsafe' {
  if (name.includes('\0') || name.startsWith('/')) return 'unsafe'
  const parts: string[] = []
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') return 'unsafe'
    parts.push(part)
  }
  return parts.join('/')
}

const YEAR_0 = Date.parse('0000-01-01T00:00:00Z')
const END_OF_9999 = Date.parse('9999-12-31T23:59:59Z')

describe('TOC fast paths', () => {
  test('modtime arithmetic gives what Date.parse gives, for every form', () => {
    // A fixed LCG: the same instants on every run, from year 0 to 9999.
    let state = 42
    const next = (): number => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    const samples: string[] = []
    for (let i = 0; i < 5000; i++) {
      const ms = YEAR_0 + Math.floor(next() * (END_OF_9999 - YEAR_0))
      samples.push(`${new Date(ms).toISOString().slice(0, 19)}Z`)
    }
    samples.push(
      '1970-01-01T00:00:00Z', '1969-12-31T23:59:59Z', '2000-02-29T12:00:00Z', '1900-02-28T23:59:59Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59Z',
      // Day overflow into the next month, as Date.parse allows it; 24:00 and leap seconds it decides.
      '2023-02-31T00:00:00Z', '2023-04-31T10:00:00Z', '2023-01-01T24:00:00Z', '2023-01-01T23:59:60Z',
      // Out of range or not the fixed form: Date.parse's answer (a time, or 0).
      '2023-13-01T00:00:00Z', '2023-00-10T00:00:00Z', '2023-01-00T00:00:00Z', '2023-01-01T00:60:00Z',
      '2023-01-01T00:00:00.5Z', '2023-01-01T01:00:00+01:00', '2023-01-01 00:00:00Z', '2023-01-01T00:00:00z', 'not a time', '',
      '２０２３-01-01T00:00:00Z', '2023-1a-01T00:00:00Z',
    )
    const memo = memoizedModtimeSeconds()
    for (const s of samples) {
      assert.equal(modtimeSeconds(s), dateParseSeconds(s), s)
      assert.equal(memo(s), dateParseSeconds(s), `${s} (memoized)`)
      assert.equal(memo(s), dateParseSeconds(s), `${s} (memoized, again)`)
    }
    assert.equal(modtimeSeconds(undefined), 0)
  })

  test('canonicalPath agrees with the plain rule on every small name', () => {
    const parts = ['', '.', '..', 'a', '.a', '..a', 'a.', '.wh.x', 'b c', '\0']
    const names = new Set<string>()
    for (const prefix of ['', '/', './', '../', './/']) {
      for (const x of parts) {
        for (const y of parts) {
          for (const sep of ['/', '//']) {
            names.add(`${prefix}${x}${sep}${y}`)
            names.add(`${prefix}${x}${sep}${y}/`)
            names.add(`${prefix}${x}`)
          }
        }
      }
    }
    for (const name of names) {
      const want = slowCanonical(name)
      if (want === 'unsafe') assert.throws(() => canonicalPath(name), (err: unknown) => isLazyError(err, 'ESTARGZ_UNSAFE_PATH'), JSON.stringify(name))
      else assert.equal(canonicalPath(name), want, JSON.stringify(name))
    }
  })

  test('parseToc keeps only known, non-null keys; clean entries come through as written', () => {
    const digest = `sha256:${'ab'.repeat(32)}`
    const json = JSON.stringify({version: 1, entries: [
      {name: './bin/', type: 'dir', modtime: '2024-01-01T00:00:00Z', mode: 493, userName: 'root', groupName: 'root'},
      {name: './bin/sh', type: 'reg', size: 3, mode: 493, offset: 10, digest, chunkDigest: digest, NumLink: 1},
      {name: './etc/x', type: 'symlink', linkName: '../bin/sh', uid: null, xattrs: {'user.a': 'YQ=='}},
      {name: '__proto__', type: 'fifo', __proto__: {polluted: true}},
      {name: 'empty', type: 'reg', digest: null, chunkDigest: null},
    ]})
    const {toc, paths} = parseTocWithPaths(Buffer.from(json), {dataEnd: 100})
    assert.deepEqual(toc.entries, [
      {name: './bin/', type: 'dir', modtime: '2024-01-01T00:00:00Z', mode: 493, userName: 'root', groupName: 'root'},
      {name: './bin/sh', type: 'reg', size: 3, mode: 493, offset: 10, digest, chunkDigest: digest},
      {name: './etc/x', type: 'symlink', linkName: '../bin/sh', xattrs: {'user.a': 'YQ=='}},
      {name: '__proto__', type: 'fifo'},
      {name: 'empty', type: 'reg'},
    ])
    assert.ok(!('NumLink' in toc.entries[1]!), 'unknown keys are dropped')
    assert.ok(!('uid' in toc.entries[2]!), 'null values are dropped')
    assert.equal(Object.getPrototypeOf(toc.entries[3]), Object.prototype)
    assert.deepEqual(paths, ['bin', 'bin/sh', 'etc/x', '__proto__', 'empty'])
    assert.deepEqual(parseToc(Buffer.from(json), {dataEnd: 100}), toc)
  })

  test('parseToc still checks every known key of a reused entry', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{name: 'f', type: 'reg', size: -1}, /size -1/],
      [{name: 'f', type: 'reg', size: 1, offset: 5, chunkDigest: 'sha256:xyz'}, /chunkDigest/],
      [{name: 'f', type: 'dir', modtime: 5}, /modtime is not a string/],
      [{name: 'f', type: 'dir', xattrs: {'user.a': '!!'}}, /xattr "user.a" is not base64/],
      [{name: 'f', type: 'dir', devMinor: 1.5}, /devMinor 1.5/],
      [{name: '../f', type: 'dir'}, /'\.\.' component/],
      [{name: 'f', type: 'hardlink'}, /hardlink without linkName/],
      [{name: 'f', type: 'reg', size: 1, offset: 100}, /outside the blob's data/],
    ]
    for (const [entry, message] of bad) {
      assert.throws(() => parseToc(Buffer.from(JSON.stringify({version: 1, entries: [entry]})), {dataEnd: 100}), message, JSON.stringify(entry))
    }
  })
})

describe('the reader tree when a TOC names a file twice', () => {
  let dir: string
  let blob: Buffer
  let tocOffset: number

  before(async () => {
    dir = await testDir('toc-fast-paths')
    await writeTar(join(dir, 'small.tar'), [
      {header: {name: 'a/', type: 'directory', mode: 0o755}},
      {header: {name: 'a/file', type: 'file', mode: 0o644, size: 300_000}, content: testBytes(300_000, 'twice')},
      {header: {name: 'a/hard', type: 'link', linkname: 'a/file'}},
      {header: {name: 'b', type: 'file', mode: 0o644, size: 5}, content: Buffer.from('hello')},
    ])
    const result = await createEstargzFile(join(dir, 'small.tar'), join(dir, 'small.esgz'), {chunkSize: 100_000})
    blob = readFileSync(join(dir, 'small.esgz'))
    tocOffset = result.tocOffset
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  test('the later entry wins: lookups, hard links and the chunk list see only it', async () => {
    const toc = (await openEstargz(bufferSource(blob))).toc
    toc.entries.push({name: 'a/file', type: 'reg', mode: 0o600})
    const json = serializeToc(toc)
    const header = encodeTarHeader({...emptyHeader('stargz.index.json', '0'), size: json.length})
    const tocTar = Buffer.concat([header, json, Buffer.alloc(1536 - (json.length % 512 || 512) + 512)])
    const edited = Buffer.concat([blob.subarray(0, tocOffset), gzipSync(tocTar), encodeFooter(tocOffset)])

    const reader = await openEstargz(bufferSource(edited))
    const file = reader.lookup('a/file')!
    assert.equal(file.size, 0)
    assert.equal(file.mode, 0o600)
    assert.equal(reader.lookup('./a/hard'), file, 'the hard link resolves to the later entry')
    assert.equal(file.numLink, 2)
    assert.deepEqual([...reader.children('a').keys()], ['file', 'hard'])
    const chunks = reader.allChunks()
    assert.deepEqual(chunks, reader.lookup('b')!.chunks, "the replaced file's chunks are not the layer's any more")
    assert.equal((await reader.readFile('b')).toString(), 'hello')

    const untouched = await openEstargz(bufferSource(blob))
    assert.equal(untouched.allChunks().length, 4, 'three chunks of a/file (hard link once) and one of b')
    assert.ok(untouched.allChunks().every((c, i, all) => i === 0 || all[i - 1]!.compressedOffset < c.compressedOffset), 'in blob order')
  })
})
