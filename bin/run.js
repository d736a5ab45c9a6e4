#!/usr/bin/env node
// The lazyctl entry point: the bundled CLI (dist/bundle, made by `npm run build`), where oclif finds
// each command through oclif.manifest.json and loads only that command's files.
import {run} from '../dist/bundle/src/cli/main.js'

await run()
