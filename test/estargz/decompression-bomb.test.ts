// A zstd bomb (32 KiB of RLE blocks that expand to 1 GiB) through the decoders `convert` and
// `estargz create` read layers with: the decoded bytes must come out as fast as they are consumed,
// never buffered ahead, so memory stays bounded whatever the input's ratio.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {Readable} from 'node:stream'
import {setImmediate as yieldToLoop} from 'node:timers/promises'
import {decompressedTar, decompressor} from '../../src/estargz/input.js'

const BLOCK = 128 << 10
const EXPANDED = 1 << 30

/** One zstd frame of raw-literal RLE blocks: 4 bytes each on the wire, 128 KiB each decoded. */
function zstdBomb(): Buffer {
  const blocks = EXPANDED / BLOCK
  const out = Buffer.alloc(6 + blocks * 4)
  out.set([0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3]) // magic; no content size, no checksum; 2^17 window
  for (let i = 0; i < blocks; i++) {
    const header = (BLOCK << 3) | (1 << 1) | (i === blocks - 1 ? 1 : 0) // size, RLE, last block
    out.writeUIntLE(header, 6 + i * 4, 3)
    out[6 + i * 4 + 3] = 0
  }
  return out
}

/** Reads everything, slowly (a turn of the event loop per piece), and tracks the memory high-water mark. */
async function drainSlowly(pieces: AsyncIterable<Buffer>): Promise<{bytes: number; peakExternalGrowth: number}> {
  const base = process.memoryUsage().arrayBuffers
  let bytes = 0
  let peak = 0
  let n = 0
  for await (const piece of pieces) {
    bytes += piece.length
    if (++n % 64 === 0) {
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)
      await yieldToLoop()
    }
  }
  return {bytes, peakExternalGrowth: peak}
}

const LIMIT = 64 << 20

test('the layer decoder of convert expands a 32 KiB zstd bomb to 1 GiB with bounded memory', async () => {
  const bomb = zstdBomb()
  assert.ok(bomb.length <= 33 << 10)
  const decoder = decompressor('zstd')
  Readable.from([bomb]).pipe(decoder)
  const {bytes, peakExternalGrowth} = await drainSlowly(decoder)
  assert.equal(bytes, EXPANDED)
  assert.ok(peakExternalGrowth < LIMIT, `decoded bytes buffered ahead of the reader: ${(peakExternalGrowth / 2 ** 20).toFixed(0)} MiB`)
})

test('the input reader of estargz create does the same', async () => {
  const {bytes, peakExternalGrowth} = await drainSlowly(decompressedTar(Readable.from([zstdBomb()]), 'bomb.tar.zst'))
  assert.equal(bytes, EXPANDED)
  assert.ok(peakExternalGrowth < LIMIT, `decoded bytes buffered ahead of the reader: ${(peakExternalGrowth / 2 ** 20).toFixed(0)} MiB`)
})
