// Round trip of a rich layer through lazyctl's eStargz writer, checked with independent tools:
// GNU tar on the gunzipped blob, getfattr on what it extracts, and lazyctl's reader/CLI for
// random access.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync, spawnSync} from 'node:child_process'
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {gunzipSync} from 'node:zlib'
import {createEstargzFile} from '../../src/estargz/create-file.js'
import {openFileSource, type ClosableRandomAccessSource} from '../../src/estargz/random-access.js'
import {openEstargz, type EstargzReader} from '../../src/estargz/reader.js'
import {verifyEstargz} from '../../src/estargz/verify.js'
import type {EstargzResult} from '../../src/estargz/writer.js'
import {DEFAULT_CHUNK_SIZE, NO_PREFETCH_LANDMARK, PREFETCH_LANDMARK, TOC_TAR_NAME} from '../../src/estargz/toc.js'
import {requireCommand} from '../rig/process.js'
import {LONG_NAME, MiB, UNICODE_NAME, expectedEntries, richEntries, sha256, testDir, writeTar} from './fixtures.js'

const CLI = join(process.cwd(), 'bin/run.js')

function gnuTar(args: string[], input?: Buffer): string {
  return execFileSync('tar', args, {input, encoding: 'utf8', maxBuffer: 64 * MiB})
}

/** `tar -tv` lines, without the landmark and TOC entries lazyctl adds. */
function listing(tarBytes: Buffer): string[] {
  return gnuTar(['--full-time', '--xattrs', '-tvf', '-'], tarBytes)
    .split('\n')
    .filter((line) => line !== '' && !line.endsWith(` ${TOC_TAR_NAME}`) && !line.endsWith(` ${NO_PREFETCH_LANDMARK}`) && !line.endsWith(` ${PREFETCH_LANDMARK}`))
}

describe('eStargz round trip of a rich layer', () => {
  let dir: string
  let inputTar: string
  let expectedTar: string
  let blob: string
  let result: EstargzResult
  let source: ClosableRandomAccessSource
  let reader: EstargzReader

  before(async () => {
    requireCommand('tar', 'tar')
    requireCommand('getfattr', 'attr')
    dir = await testDir('roundtrip')
    inputTar = join(dir, 'input.tar')
    expectedTar = join(dir, 'expected.tar')
    blob = join(dir, 'layer.esgz')
    await writeTar(inputTar, richEntries())
    await writeTar(expectedTar, expectedEntries(richEntries()))
    result = await createEstargzFile(inputTar, blob)
    source = await openFileSource(blob)
    reader = await openEstargz(source, {expectedTocDigest: result.tocDigest})
  })

  after(async () => {
    await source?.close()
    if (dir) rmSync(dir, {recursive: true, force: true})
  })

  test('gunzip | tar lists exactly the input entries, in order, with the same metadata', () => {
    const decompressed = gunzipSync(readFileSync(blob))
    assert.deepEqual(listing(decompressed), listing(readFileSync(expectedTar)))
    // The landmark comes first and the TOC last, as the spec requires.
    const names = gnuTar(['-tf', '-'], decompressed).trim().split('\n')
    assert.equal(names[0], NO_PREFETCH_LANDMARK)
    assert.equal(names.at(-1), TOC_TAR_NAME)
  })

  test('GNU tar extracts the same contents, modes, owners, devices and xattrs as from the input', () => {
    const fromInput = join(dir, 'from-input')
    const fromBlob = join(dir, 'from-blob')
    for (const target of [fromInput, fromBlob]) execFileSync('mkdir', ['-p', target])
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--same-owner', '-xpf', expectedTar, '-C', fromInput])
    execFileSync('sh', ['-c', `gunzip -c "$1" | tar --xattrs --xattrs-include='*' --same-owner -xpf - -C "$2"`, 'sh', blob, fromBlob])
    rmSync(join(fromBlob, TOC_TAR_NAME))
    rmSync(join(fromBlob, NO_PREFETCH_LANDMARK))
    // dev/ holds only devices and a FIFO, which diff cannot compare; the stat listing below covers them.
    const diff = spawnSync('diff', ['-r', '--no-dereference', '-x', 'dev', fromInput, fromBlob], {encoding: 'utf8'})
    assert.equal(diff.status, 0, diff.stdout + diff.stderr)
    // Directory mtimes change as tar fills them (and for implicit parents); compare the rest.
    const stat = (root: string): string =>
      execFileSync('sh', ['-c', 'cd "$1" && find . -type d -printf "%p %y %m %U %G\\n" -o -printf "%p %y %m %U %G %s %T@ %l %n\\n" | sort', 'sh', root], {encoding: 'utf8'})
    assert.equal(stat(fromBlob), stat(fromInput))
    const xattrs = (root: string): string => execFileSync('sh', ['-c', 'cd "$1" && getfattr -R -d -m - --absolute-names . 2>/dev/null | sort', 'sh', root], {encoding: 'utf8'})
    assert.match(xattrs(fromBlob), /user.comment="hello world"/)
    assert.equal(xattrs(fromBlob), xattrs(fromInput))
  })

  test('every file reads back its exact bytes through the TOC, and hardlinks share their target', async () => {
    for (const entry of expectedEntries(richEntries())) {
      if (entry.header.type !== 'file') continue
      const got = await reader.readFile(entry.header.name)
      assert.equal(sha256(got), sha256(entry.content!), entry.header.name)
    }
    const hard = reader.lookup('dir/hard-one')!
    assert.equal(hard, reader.lookup('/dir/one'))
    assert.equal(hard.numLink, 2)
    assert.equal(hard.userName, 'alice')
    assert.equal((await reader.readFile('./dir/hard-one')).toString(), 'x')
    assert.equal(reader.lookup('dup') && (await reader.readFile('dup')).toString(), 'second version wins\n')
    assert.deepEqual(reader.lookup('dir/xattrs')!.xattrs.get('user.comment'), Buffer.from('hello world'))
    assert.equal(reader.lookup('dev/null')!.type, 'char')
    assert.deepEqual([reader.lookup('dev/loop0')!.devMajor, reader.lookup('dev/loop0')!.devMinor], [7, 0])
    assert.equal(reader.lookup('dir/setuid')!.mode, 0o4755)
    assert.equal(reader.lookup('sticky')!.mode, 0o1777)
    assert.equal(reader.lookup(NO_PREFETCH_LANDMARK), null, 'landmarks are hidden')
    assert.deepEqual(reader.prefetch, {kind: 'no-prefetch'})
  })

  test('`estargz cat` writes each file byte for byte', () => {
    const byName = new Map(richEntries().map((e) => [e.header.name, e.content]))
    for (const name of ['nine-MiB', 'dir/exact-4MiB', UNICODE_NAME, LONG_NAME, 'dir/empty', 'dir/hard-one']) {
      const out = execFileSync('node', [CLI, 'estargz', 'cat', blob, name], {maxBuffer: 64 * MiB})
      const want = name === 'dir/hard-one' ? byName.get('dir/one') : byName.get(name)
      assert.equal(sha256(out), sha256(want!), name)
    }
  })

  test('any byte range reads correctly, across chunk boundaries', async () => {
    const nine = richEntries().find((e) => e.header.name === 'nine-MiB')!.content!
    const chunks = reader.chunksFor('nine-MiB', 0, nine.length)
    assert.deepEqual(chunks.map((c) => [c.chunkOffset, c.chunkSize]), [[0, 4 * MiB], [4 * MiB, 4 * MiB], [8 * MiB, MiB]])
    for (const c of chunks) assert.ok(c.compressedEnd > c.compressedOffset)
    let seed = 7
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2147483648) % n
    for (let i = 0; i < 40; i++) {
      const offset = i < 4 ? 4 * MiB * (i % 3) - 3 : rand(nine.length)
      const length = i % 5 === 0 ? 5 * MiB : rand(70000) + 1
      const got = await reader.readFile('nine-MiB', Math.max(0, offset), length)
      assert.ok(got.equals(nine.subarray(Math.max(0, offset), Math.max(0, offset) + length)), `range ${offset}+${length}`)
    }
    assert.equal((await reader.readFile('nine-MiB', nine.length, 10)).length, 0)
  })

  test('the TOC records chunks as the spec says and names once per uid', () => {
    const entries = reader.toc.entries
    const exact = entries.filter((e) => e.name === 'dir/exact-4MiB')
    assert.deepEqual(exact.map((e) => [e.type, e.chunkSize ?? 0]), [['reg', 0]], 'a file of exactly one chunk has a single reg entry')
    const nine = entries.filter((e) => e.name === 'nine-MiB')
    assert.deepEqual(nine.map((e) => [e.type, e.chunkOffset ?? 0, e.chunkSize ?? 0]), [['reg', 0, DEFAULT_CHUNK_SIZE], ['chunk', 4 * MiB, DEFAULT_CHUNK_SIZE], ['chunk', 8 * MiB, 0]])
    assert.equal(nine[0]!.digest, sha256(richEntries().find((e) => e.header.name === 'nine-MiB')!.content!))
    const alice = entries.filter((e) => e.uid === 1000)
    assert.equal(alice[0]!.userName, 'alice')
    assert.ok(alice.slice(1).every((e) => e.userName === undefined), 'userName is written only on the first entry of a uid')
    assert.equal(entries.find((e) => e.name === 'dir/empty')!.digest, sha256(Buffer.alloc(0)))
    assert.ok(entries.some((e) => e.name === 'dir/.wh.removed') && entries.some((e) => e.name === 'opaque/.wh..wh..opq'), 'whiteouts are kept')
    assert.equal(entries.filter((e) => e.name === 'dup').length, 1)
    assert.ok(entries.findIndex((e) => e.name === 'dup') > entries.findIndex((e) => e.name === 'after-dup'), 'a later duplicate takes the later position')
  })

  test('the diffID and uncompressed size are those of the decompressed blob, and verify agrees', async () => {
    const decompressed = gunzipSync(readFileSync(blob))
    assert.equal(result.diffID, sha256(decompressed))
    assert.equal(result.uncompressedSize, decompressed.length)
    assert.equal(result.blobDigest, sha256(readFileSync(blob)))
    const verified = await verifyEstargz(source, {expectedTocDigest: result.tocDigest})
    assert.equal(verified.diffID, result.diffID)
    const cli = JSON.parse(execFileSync('node', [CLI, 'estargz', 'verify', blob, '--toc-digest', result.tocDigest, '--format', 'json'], {encoding: 'utf8'}))
    assert.equal(cli.ok, true)
  })

  test('output is deterministic, and gzip or zstd input gives the same blob as plain tar', async () => {
    requireCommand('zstd', 'zstd')
    execFileSync('sh', ['-c', 'gzip -c "$1" > "$1.gz" && zstd -q -c "$1" > "$1.zst"', 'sh', inputTar])
    const again = await createEstargzFile(inputTar, join(dir, 'again.esgz'), {concurrency: 1})
    const fromGzip = await createEstargzFile(`${inputTar}.gz`, join(dir, 'gz.esgz'))
    const fromZstd = await createEstargzFile(`${inputTar}.zst`, join(dir, 'zst.esgz'))
    for (const r of [again, fromGzip, fromZstd]) assert.equal(r.blobDigest, result.blobDigest)
  })

  test('prioritized files come first with their parents, then .prefetch.landmark, whose offset ends the prefetch range', async () => {
    const record = join(dir, 'record.json')
    writeFileSync(record, ['{"path": "/nine-MiB"}', '{"path":"dir/hard-one","manifestDigest":"sha256:00"}', '{"path": "/not/there"}', '{"path": "/nine-MiB"}'].join('\n') + '\n')
    const out = join(dir, 'prio.esgz')
    const json = JSON.parse(execFileSync('node', [CLI, 'estargz', 'create', inputTar, out, '--record-in', record, '--format', 'json'], {encoding: 'utf8'}))
    assert.deepEqual(json.missingPrioritized, ['/not/there'])
    const names = gnuTar(['-tf', '-'], gunzipSync(readFileSync(out))).trim().split('\n')
    assert.deepEqual(names.slice(0, 6), ['./', 'nine-MiB', 'dir/', 'dir/one', 'dir/hard-one', PREFETCH_LANDMARK])
    const src = await openFileSource(out)
    try {
      const prio = await openEstargz(src, {expectedTocDigest: json.tocDigest})
      assert.equal(prio.prefetch.kind, 'landmark')
      const end = prio.prefetch.kind === 'landmark' ? prio.prefetch.end : 0
      assert.ok(prio.lookup('nine-MiB')!.chunks.every((c) => c.compressedEnd <= end), 'prioritized chunks lie inside the prefetch range')
      assert.ok(prio.lookup('dir/exact-4MiB')!.chunks.every((c) => c.compressedOffset > end), 'other files lie after it')
      assert.equal(gunzipSync(readFileSync(out)).length, json.uncompressedSize)
      assert.equal(sha256(gunzipSync(readFileSync(out))), json.diffID)
      await verifyEstargz(src, {expectedTocDigest: json.tocDigest})
    } finally {
      await src.close()
    }
  })
})
