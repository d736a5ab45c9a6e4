// The demo behind scripts/demo. For now: a private containerd started here, and lazyctl talking
// to it. The lazy run of a demo image replaces this when the lazy snapshotter lands.
import {spawnSync} from 'node:child_process'
import {CLI_ENTRY} from '../src/paths.js'
import {startContainerd} from '../test/rig/containerd.js'

const containerd = await startContainerd()
try {
  process.stdout.write(`demo: private containerd at ${containerd.address}\n`)
  const res = spawnSync(process.execPath, [CLI_ENTRY, 'version', '-a', containerd.address], {stdio: 'inherit'})
  process.exitCode = res.status ?? 1
  process.stdout.write('demo: the lazy run of a demo image is not built yet (issue 7); this shows the containerd path works.\n')
} finally {
  await containerd.stop()
}
