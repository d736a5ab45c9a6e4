#!/usr/bin/env node
// The lazyctl entry point: oclif loads commands from dist/commands via oclif.manifest.json.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
