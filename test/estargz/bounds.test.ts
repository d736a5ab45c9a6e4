// What one layer can make a reader hold or compute is bounded (MAX_* in toc.ts): each bound is
// tested on both sides, at the limit (accepted) and one past it (refused with its own code), on
// TOCs and blobs made for the purpose. Opening a large TOC gives the event loop turns, so a
// snapshotter keeps serving reads of other layers meanwhile.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {gzipSync} from 'node:zlib'
import {isLazyError} from '../../src/cli/errors.js'
import {openEstargz} from '../../src/estargz/reader.js'
import {encodeFooter} from '../../src/estargz/footer.js'
import {encodeTarHeader, emptyHeader, paddingFor, TYPEFLAG} from '../../src/estargz/tar-header.js'
import {parseToc} from '../../src/estargz/toc-codec.js'
import {MAX_CHUNK_SIZE, MAX_CHUNK_SPAN, MAX_TOC_ENTRIES, TOC_TAR_NAME} from '../../src/estargz/toc.js'
import type {RandomAccessSource} from '../../src/estargz/random-access.js'

const refusedWith = (code: string, pattern: RegExp) => (err: unknown) => {
  assert.ok(isLazyError(err) && err.code === code, String(err))
  assert.match(err.message, pattern)
  return true
}

function tocJson(entries: object[]): Buffer {
  return Buffer.from(JSON.stringify({version: 1, entries}))
}

test('a chunk of MAX_CHUNK_SIZE bytes is accepted, one byte more is refused (also as inner offset)', () => {
  const file = (size: number, extra: object = {}) => tocJson([{name: 'big', type: 'reg', size, offset: 10, ...extra}])
  assert.equal(parseToc(file(MAX_CHUNK_SIZE), {dataEnd: 1 << 30}).entries[0]!.size, MAX_CHUNK_SIZE)
  assert.throws(() => parseToc(file(MAX_CHUNK_SIZE + 1), {dataEnd: 1 << 30}), refusedWith('ESTARGZ_CHUNK_TOO_LARGE', /a chunk of 67108865 bytes .*more than the 67108864-byte limit/))
  // A 1 GiB file in 64 MiB chunks is fine: the bound is per chunk, not per file.
  const chunked = [{name: 'huge', type: 'reg', size: 1 << 30, offset: 10, chunkSize: MAX_CHUNK_SIZE}]
  for (let i = 1; i < 16; i++) chunked.push({name: 'huge', type: 'chunk', offset: 10 + i, chunkOffset: i * MAX_CHUNK_SIZE, chunkSize: MAX_CHUNK_SIZE} as never)
  assert.equal(parseToc(tocJson(chunked), {dataEnd: 1 << 30}).entries.length, 16)
  assert.throws(() => parseToc(file(100, {innerOffset: MAX_CHUNK_SIZE + 1}), {dataEnd: 1 << 30}), refusedWith('ESTARGZ_CHUNK_TOO_LARGE', /inner offset 67108865/))
})

test('a TOC of MAX_TOC_ENTRIES entries is accepted, one more is refused', () => {
  const entries = (n: number) => Buffer.from(`{"version":1,"entries":[${Array.from({length: n}, () => '{"name":"d","type":"dir"}').join(',')}]}`)
  assert.equal(parseToc(entries(MAX_TOC_ENTRIES), {dataEnd: 0}).entries.length, MAX_TOC_ENTRIES)
  assert.throws(() => parseToc(entries(MAX_TOC_ENTRIES + 1), {dataEnd: 0}), refusedWith('ESTARGZ_TOC_TOO_LARGE', /1000001 entries, more than the limit of 1000000/))
})

/**
 * A blob of `dataEnd` bytes of (never read) data followed by a TOC member and an eStargz footer,
 * served from memory without allocating the data: enough for openEstargz, which reads only the end.
 */
function blobWithToc(dataEnd: number, entries: object[]): RandomAccessSource {
  const json = tocJson(entries)
  const header = encodeTarHeader({...emptyHeader(TOC_TAR_NAME, TYPEFLAG.reg), size: json.length})
  const member = gzipSync(Buffer.concat([header, json, Buffer.alloc(paddingFor(json.length) + 1024)]))
  const tail = Buffer.concat([member, encodeFooter(dataEnd)])
  const size = dataEnd + tail.length
  return {
    size,
    readAt: async (offset, length) => {
      assert.ok(offset >= dataEnd && offset + length <= size, `read of [${offset}, ${offset + length}) outside the TOC and footer`)
      return tail.subarray(offset - dataEnd, offset - dataEnd + length)
    },
  }
}

test("a chunk's compressed span up to MAX_CHUNK_SPAN is accepted, past it the layer is refused", async () => {
  const lastFile = (dataEnd: number) => blobWithToc(dataEnd, [{name: 'f', type: 'reg', size: 1, offset: 10, chunkDigest: `sha256:${'0'.repeat(64)}`}])
  const reader = await openEstargz(lastFile(10 + MAX_CHUNK_SPAN), {label: 'at the limit'})
  assert.equal(reader.allChunks()[0]!.compressedEnd, 10 + MAX_CHUNK_SPAN)
  await assert.rejects(openEstargz(lastFile(11 + MAX_CHUNK_SPAN), {label: 'past it'}), refusedWith('ESTARGZ_CHUNK_TOO_LARGE', /past it: the chunk at 10 spans 100663297 compressed bytes/))
})

test('opening a TOC of 300,000 entries gives the event loop turns while it parses and indexes', async () => {
  const entries = Array.from({length: 300_000}, (_, i) => ({name: `d${i % 1000}/f${i}`, type: 'symlink', linkName: 'x'}))
  const source = blobWithToc(1, entries)
  let turns = 0
  let opening = true
  const tick = (): void => {
    if (!opening) return
    turns++
    setImmediate(tick)
  }
  setImmediate(tick)
  const reader = await openEstargz(source)
  opening = false
  assert.equal(reader.root.children!.size, 1000)
  // One turn per slice of 8192 entries in each of the two passes, at the least.
  assert.ok(turns >= 2 * Math.floor(300_000 / 8192), `the event loop ran ${turns} times during the open`)
})
