// Child process for the "unmounted from outside" test: mounts a synthetic layer, lets
// `fusermount -uz` remove it, calls unmount() and must then exit on its own.
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'
import {join} from 'node:path'
import {bufferSource} from '../../src/estargz/random-access.js'
import {ChunkCache} from '../../src/lazyfs/chunk-cache.js'
import {mountLayerContent} from '../../src/lazyfs/mount.js'
import {buildSyntheticLayer} from './synthetic-layer.js'

const run = promisify(execFile)
const work = process.argv[2]
const layer = buildSyntheticLayer([{path: 'hello', kind: 'reg', data: Buffer.from('hello\n')}])
const cache = await ChunkCache.open({dir: join(work, 'cache')})
const mountpoint = join(work, 'mnt')
const mounted = await mountLayerContent({mountpoint, content: layer.content, source: bufferSource(layer.blob), cache})
process.stdout.write((await run('cat', [join(mountpoint, 'hello')])).stdout)
await run('fusermount', ['-uz', mountpoint])
await mounted.unmount()
await cache.close()
process.stdout.write('unmounted\n')
