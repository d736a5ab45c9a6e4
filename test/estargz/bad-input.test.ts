// Bad input, each refused with its own error code and a one-line message, never a crash and never
// unverified bytes; the codec pieces (footers, TOC, tar headers) on their own.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {Readable, PassThrough} from 'node:stream'
import {gzipSync} from 'node:zlib'
import {ERROR_CODES, isLazyError, type ErrorCode} from '../../src/cli/errors.js'
import {createEstargzFile} from '../../src/estargz/create-file.js'
import {decodeFooter, encodeFooter, encodeLegacyFooter} from '../../src/estargz/footer.js'
import {bufferSource} from '../../src/estargz/random-access.js'
import {openEstargz} from '../../src/estargz/reader.js'
import {parseRecord} from '../../src/estargz/record.js'
import {decodeUstarBlock, emptyHeader, encodeTarHeader} from '../../src/estargz/tar-header.js'
import {TarReader} from '../../src/estargz/tar-reader.js'
import {canonicalPath, parseToc, serializeToc} from '../../src/estargz/toc-codec.js'
import {MAX_TOC_SIZE, type Toc} from '../../src/estargz/toc.js'
import {convertToEstargz} from '../../src/estargz/writer.js'
import {verifyEstargz} from '../../src/estargz/verify.js'
import {MiB, sha256, tarStream, testBytes, testDir, writeTar, type RichEntry} from './fixtures.js'

const CLI = join(process.cwd(), 'bin/run.js')

async function rejectsWith(promise: Promise<unknown> | (() => unknown), code: ErrorCode, message?: RegExp): Promise<void> {
  await assert.rejects(async () => (typeof promise === 'function' ? promise() : promise), (err: unknown) => {
    assert.ok(isLazyError(err), `want a LazyError ${code}, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    assert.doesNotMatch(err.message, /\n/)
    if (message) assert.match(err.message, message)
    return true
  })
}

/** The blob with its TOC member replaced: payload members stay where they were. */
function withToc(blob: Buffer, tocOffset: number, json: Buffer, declaredSize = json.length): Buffer {
  const header = encodeTarHeader({...emptyHeader('stargz.index.json', '0'), size: declaredSize})
  const tocTar = Buffer.concat([header, json, Buffer.alloc(1536 - (json.length % 512 || 512) + 512)])
  return Buffer.concat([blob.subarray(0, tocOffset), gzipSync(tocTar), encodeFooter(tocOffset)])
}

const small: RichEntry[] = [
  {header: {name: 'a/', type: 'directory', mode: 0o755}},
  {header: {name: 'a/file', type: 'file', mode: 0o644, size: 300_000}, content: testBytes(300_000, 'small')},
  {header: {name: 'a/hard', type: 'link', linkname: 'a/file'}},
  {header: {name: 'b', type: 'file', mode: 0o644, size: 5}, content: Buffer.from('hello')},
]

describe('eStargz codec', () => {
  test('the footer encodes to the 51 bytes the spec lays out and decodes back', () => {
    const footer = encodeFooter(0x1234abcd)
    assert.equal(footer.length, 51)
    assert.equal(footer.subarray(0, 16).toString('hex'), '1f8b08040000000000ff1a0053471600')
    assert.equal(footer.subarray(16, 38).toString('latin1'), '000000001234abcdSTARGZ')
    assert.equal(footer.subarray(38).toString('hex'), '010000ffff0000000000000000')
    assert.deepEqual(decodeFooter(footer), {format: 'estargz', tocOffset: 0x1234abcd, size: 51})
  })

  test('a legacy 47-byte stargz footer is accepted, also after other bytes', () => {
    const legacy = encodeLegacyFooter(4242)
    assert.equal(legacy.length, 47)
    assert.deepEqual(decodeFooter(Buffer.concat([Buffer.from('xxxx'), legacy])), {format: 'legacy-stargz', tocOffset: 4242, size: 47})
  })

  test('refuses a garbage footer, naming why each format failed', () => {
    const bad = encodeFooter(10)
    bad.write('STARGX', 32, 'latin1')
    assert.throws(() => decodeFooter(bad), (err: unknown) => isLazyError(err, 'ESTARGZ_FOOTER') && /no STARGZ magic/.test(err.message))
    assert.throws(() => decodeFooter(Buffer.alloc(51, 0xff)), (err: unknown) => isLazyError(err, 'ESTARGZ_FOOTER'))
    assert.throws(() => decodeFooter(Buffer.alloc(10)), (err: unknown) => isLazyError(err, 'ESTARGZ_FOOTER'))
  })

  test('TOC JSON keeps the Go key order, omits zero values and round-trips through the parser', () => {
    const toc: Toc = {version: 1, entries: [
      {name: 'f', type: 'reg', size: 3, mode: 0o644, uid: 0, offset: 10, digest: sha256(Buffer.from('abc')), chunkDigest: sha256(Buffer.from('abc')), xattrs: {'user.b': 'Yg==', 'user.a': 'YQ=='}},
    ]}
    const json = serializeToc(toc).toString()
    assert.match(json, /^\{\n\t"version": 1,\n\t"entries": \[/)
    assert.ok(!json.includes('"uid"'), 'zero values are omitted')
    assert.ok(json.indexOf('"offset"') < json.indexOf('"xattrs"') && json.indexOf('"user.a"') < json.indexOf('"user.b"'))
    assert.deepEqual(parseToc(Buffer.from(json), {dataEnd: 100}).entries[0]!.xattrs, {'user.a': 'YQ==', 'user.b': 'Yg=='})
  })

  test('refuses TOC entry names that escape the root', () => {
    for (const name of ['../etc/passwd', 'a/../../b', '/etc/passwd', 'a/\0b']) {
      assert.throws(() => canonicalPath(name), (err: unknown) => isLazyError(err, 'ESTARGZ_UNSAFE_PATH'), name)
    }
    assert.equal(canonicalPath('./usr//bin/'), 'usr/bin')
  })

  test('tar headers with long, unicode and binary-xattr fields round-trip through the codec', async () => {
    const h = {...emptyHeader(`${'d/'.repeat(80)}ünï-名前`, '0'), size: 3, mode: 0o4755, uid: 3_000_000, gid: 7, mtime: 1_700_000_000, uname: 'a-user-name-longer-than-thirty-two-bytes', gname: 'g',
      linkname: '', xattrs: new Map([['security.capability', Buffer.from([0, 0xff, 1, 2, 0x0a])]])}
    const bytes = Buffer.concat([encodeTarHeader(h), Buffer.from('abc'), Buffer.alloc(509 + 1024)])
    const reader = new TarReader(Readable.from([bytes]))
    const got = (await reader.next())!
    assert.deepEqual({...got, xattrs: [...got.xattrs]}, {...h, xattrs: [...h.xattrs]})
    assert.equal((await reader.readBody(10)).toString(), 'abc')
    assert.equal(await reader.next(), null)
    assert.equal(decodeUstarBlock(Buffer.alloc(512, 1)), null, 'a block with a bad checksum is not a header')
  })

  test('record files keep order, drop duplicates and refuse lines without a path', () => {
    assert.deepEqual(parseRecord('{"path":"/a"}\n\n{"path":"b","layerIndex":0}\n{"path":"/a"}\n'), ['/a', 'b'])
    assert.throws(() => parseRecord('{"path": 3}'), (err: unknown) => isLazyError(err, 'USAGE') && /:1:/.test(err.message))
  })
})

describe('bad input is refused with a distinct code', () => {
  let dir: string
  let blob: Buffer
  let toc: Toc
  let tocOffset: number
  let tocDigest: string

  before(async () => {
    dir = await testDir('bad-input')
    await writeTar(join(dir, 'small.tar'), small)
    const result = await createEstargzFile(join(dir, 'small.tar'), join(dir, 'small.esgz'), {chunkSize: 100_000})
    blob = readFileSync(join(dir, 'small.esgz'))
    tocOffset = result.tocOffset
    tocDigest = result.tocDigest
    toc = (await openEstargz(bufferSource(blob))).toc
  })
  after(() => rmSync(dir, {recursive: true, force: true}))

  const edited = (edit: (t: Toc) => void): Buffer => {
    const copy = structuredClone(toc)
    edit(copy)
    return withToc(blob, tocOffset, serializeToc(copy))
  }

  test('a blob cut short after its TOC is ESTARGZ_TRUNCATED; cut anywhere it never opens', async () => {
    for (const cut of [1, 30, 51, 52, 200]) await rejectsWith(openEstargz(bufferSource(blob.subarray(0, blob.length - cut))), 'ESTARGZ_TRUNCATED')
    await rejectsWith(openEstargz(bufferSource(blob.subarray(0, 1000))), 'ESTARGZ_FOOTER', /cut short/)
    await rejectsWith(openEstargz(bufferSource(Buffer.alloc(0))), 'ESTARGZ_FOOTER')
  })

  test('a garbage footer after an intact TOC is ESTARGZ_FOOTER', async () => {
    await rejectsWith(openEstargz(bufferSource(Buffer.concat([blob.subarray(0, blob.length - 51), Buffer.alloc(51, 0x42)]))), 'ESTARGZ_FOOTER')
  })

  test('a footer pointing past the data is ESTARGZ_TRUNCATED', async () => {
    await rejectsWith(openEstargz(bufferSource(Buffer.concat([blob.subarray(0, blob.length - 51), encodeFooter(blob.length)]))), 'ESTARGZ_TRUNCATED')
  })

  test('a TOC that is not JSON, or not a TOC, is ESTARGZ_TOC', async () => {
    await rejectsWith(openEstargz(bufferSource(withToc(blob, tocOffset, Buffer.from('{"version": 1, "entries": [')))), 'ESTARGZ_TOC', /not valid JSON/)
    await rejectsWith(openEstargz(bufferSource(withToc(blob, tocOffset, Buffer.from('{"version": 2, "entries": []}')))), 'ESTARGZ_TOC', /version/)
    await rejectsWith(openEstargz(bufferSource(edited((t) => void ((t.entries[2] as {type: string}).type = 'socket')))), 'ESTARGZ_TOC', /unknown type/)
  })

  test('TOC offsets outside the blob, or out of order, are ESTARGZ_TOC', async () => {
    await rejectsWith(openEstargz(bufferSource(edited((t) => void (t.entries.find((e) => e.type === 'chunk')!.offset = blob.length * 2)))), 'ESTARGZ_TOC', /outside the blob/)
    await rejectsWith(openEstargz(bufferSource(edited((t) => void (t.entries.find((e) => e.type === 'chunk')!.offset = 1)))), 'ESTARGZ_TOC', /does not follow/)
    await rejectsWith(openEstargz(bufferSource(edited((t) => void (t.entries.find((e) => e.type === 'chunk')!.chunkOffset = 7)))), 'ESTARGZ_TOC', /starts at 7/)
  })

  test('a TOC digest other than the expected one is ESTARGZ_TOC_DIGEST', async () => {
    await rejectsWith(openEstargz(bufferSource(blob), {expectedTocDigest: sha256(Buffer.from('other'))}), 'ESTARGZ_TOC_DIGEST')
    const reader = await openEstargz(bufferSource(blob), {expectedTocDigest: tocDigest})
    assert.equal(reader.tocDigest, tocDigest)
  })

  test('a chunk whose bytes do not match its chunkDigest is ESTARGZ_CHUNK_DIGEST and no byte of it is returned', async () => {
    const wrongDigest = edited((t) => void (t.entries.find((e) => e.type === 'chunk')!.chunkDigest = sha256(Buffer.from('nope'))))
    const reader = await openEstargz(bufferSource(wrongDigest))
    await rejectsWith(reader.readFile('a/file', 0, 300_000), 'ESTARGZ_CHUNK_DIGEST')
    assert.equal((await reader.readFile('a/file', 0, 10)).length, 10, 'other chunks still read')
    // Flipping a payload byte breaks the member (CRC) or the digest: either way, no data.
    const chunk = (await openEstargz(bufferSource(blob))).chunksFor('a/file', 150_000, 1)[0]!
    const flipped = Buffer.from(blob)
    flipped[chunk.compressedOffset + 40]! ^= 0x55
    await rejectsWith((await openEstargz(bufferSource(flipped))).readFile('a/file', 150_000, 1), 'ESTARGZ_CHUNK_DIGEST')
  })

  test('TOC entry names with .. or an absolute path are ESTARGZ_UNSAFE_PATH, in blobs and in input tars', async () => {
    await rejectsWith(openEstargz(bufferSource(edited((t) => void (t.entries.find((e) => e.name === 'b')!.name = '../../etc/cron.d/evil')))), 'ESTARGZ_UNSAFE_PATH')
    await rejectsWith(openEstargz(bufferSource(edited((t) => void (t.entries.find((e) => e.name === 'b')!.name = '/etc/passwd')))), 'ESTARGZ_UNSAFE_PATH')
    await rejectsWith(openEstargz(bufferSource(edited((t) => void (t.entries.find((e) => e.type === 'hardlink')!.linkName = '../outside')))), 'ESTARGZ_UNSAFE_PATH')
    await rejectsWith(convertToEstargz(tarStream([{header: {name: '../evil', type: 'file', size: 1}, content: Buffer.from('x')}]), new PassThrough().resume()), 'ESTARGZ_UNSAFE_PATH')
  })

  test('a hardlink to a missing entry is ESTARGZ_HARDLINK', async () => {
    await rejectsWith(openEstargz(bufferSource(edited((t) => void (t.entries.find((e) => e.type === 'hardlink')!.linkName = 'a/missing')))), 'ESTARGZ_HARDLINK', /a\/missing/)
  })

  test(`a TOC larger than the ${MAX_TOC_SIZE >> 20} MiB limit is ESTARGZ_TOC_TOO_LARGE, without inflating it all`, async () => {
    await rejectsWith(openEstargz(bufferSource(withToc(blob, tocOffset, Buffer.from('{}'), MAX_TOC_SIZE + 1))), 'ESTARGZ_TOC_TOO_LARGE')
    // A member of zeros that would inflate past the limit (a "zip bomb").
    const bomb = Buffer.concat([blob.subarray(0, tocOffset), gzipSync(Buffer.alloc(MAX_TOC_SIZE + 2 * MiB)), encodeFooter(tocOffset)])
    await rejectsWith(openEstargz(bufferSource(bomb)), 'ESTARGZ_TOC_TOO_LARGE')
  })

  test('an input that is not a tar is NOT_A_TAR and leaves no output file', async () => {
    const cases: [string, Buffer][] = [
      ['random', testBytes(5000, 'random')],
      ['empty', Buffer.alloc(0)],
      ['gzip-of-random', gzipSync(testBytes(5000, 'random'))],
      ['corrupt-gzip', Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0]), testBytes(100, 'x')])],
      ['truncated-tar', readFileSync(join(dir, 'small.tar')).subarray(0, 700)],
    ]
    for (const [name, bytes] of cases) {
      const input = join(dir, `${name}.in`)
      writeFileSync(input, bytes)
      await rejectsWith(createEstargzFile(input, join(dir, `${name}.esgz`)), 'NOT_A_TAR')
      assert.equal(existsSync(join(dir, `${name}.esgz`)), false)
    }
    assert.deepEqual(readdirSync(dir).filter((f) => f.includes('partial')), [])
  })

  test('the CLI reports each failure in one line with the code as its exit status', () => {
    const bad = join(dir, 'wrong-digest.esgz')
    writeFileSync(bad, edited((t) => void (t.entries.find((e) => e.type === 'chunk')!.chunkDigest = sha256(Buffer.from('nope')))))
    const verify = spawnSync('node', [CLI, 'estargz', 'verify', bad], {encoding: 'utf8'})
    assert.equal(verify.status, ERROR_CODES.ESTARGZ_CHUNK_DIGEST, verify.stderr)
    assert.match(verify.stderr, /^lazyctl: .*chunk.*digest.*\n$/)
    const digest = spawnSync('node', [CLI, 'estargz', 'verify', join(dir, 'small.esgz'), '--toc-digest', sha256(Buffer.from('x'))], {encoding: 'utf8'})
    assert.equal(digest.status, ERROR_CODES.ESTARGZ_TOC_DIGEST, digest.stderr)
    const notTar = spawnSync('node', [CLI, 'estargz', 'create', join(dir, 'random.in'), join(dir, 'x.esgz')], {encoding: 'utf8'})
    assert.equal(notTar.status, ERROR_CODES.NOT_A_TAR, notTar.stderr)
    const ok = spawnSync('node', [CLI, 'estargz', 'verify', join(dir, 'small.esgz'), '--toc-digest', tocDigest], {encoding: 'utf8'})
    assert.equal(ok.status, 0, ok.stderr)
  })

  test('verify refuses a blob whose tar stream disagrees with its TOC', async () => {
    // Same payloads, but the TOC claims another mode for b: only the full tar check can see it.
    const lying = edited((t) => void (t.entries.find((e) => e.name === 'b')!.mode = 0o600))
    await rejectsWith(verifyEstargz(bufferSource(lying)), 'ESTARGZ_MISMATCH', /mode/)
  })
})
