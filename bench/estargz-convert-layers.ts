// Benchmark helper: converts the given gzip layer blobs to eStargz, all layers at once in one
// process (as `lazyctl` converts an image), and prints the results as JSON. Run under
// /usr/bin/time -v by estargz-convert.ts.
// Usage: node dist/bench/estargz-convert-layers.js OUTDIR LEVEL CHUNK_SIZE LAYER...
import {join} from 'node:path'
import {createEstargzFile} from '../src/estargz/create-file.js'

const [outDir, level, chunkSize, ...layers] = process.argv.slice(2)
if (!outDir || !level || !chunkSize || layers.length === 0) {
  process.stderr.write('usage: estargz-convert-layers OUTDIR LEVEL CHUNK_SIZE LAYER...\n')
  process.exit(2)
}
const results = await Promise.all(
  layers.map((layer, i) => createEstargzFile(layer, join(outDir, `layer-${i}.esgz`), {compressionLevel: Number(level), chunkSize: Number(chunkSize)})),
)
process.stdout.write(JSON.stringify(results) + '\n')
