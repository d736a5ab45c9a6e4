#!/usr/bin/env node
// The lazyctl entry point: the bundled CLI (dist/bundle, made by `npm run build`), where oclif finds
// each command through oclif.manifest.json and loads only that command's files.
// `run` and `pull` first tell lazyctl's snapshotter which image is coming (src/run/early-hint.ts):
// the CLI is imported after that, so the daemon reads the image's TOCs while the CLI loads.
import {hintSnapshotterEarly} from '../dist/bundle/src/run/early-hint.js'

hintSnapshotterEarly(process.argv.slice(2))
const {run} = await import('../dist/bundle/src/cli/main.js')
await run()
