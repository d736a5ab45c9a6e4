// The log capture of a detached container (`run -d`), as nerdctl does it: the shim runs a logging
// binary (binary:// IO) with fd 3 carrying stdout (or the console's output), fd 4 stderr (unused
// with a terminal); closing fd 5 tells the shim we are ready. Not the shim's own file:// IO: it takes
// no console in containerd 1.6, and nothing tells when it has copied the last byte (the shim
// publishes the exit before its copy goroutines finish), so `logs -f` could end short. The logger
// writes a marker once both streams hit EOF and the file is flushed: that is when the log is whole.
// Run as `node logger.js LOGFILE`, without oclif, so it starts fast.
import {closeSync, createWriteStream, existsSync, watch, writeFileSync} from 'node:fs'
import {Socket} from 'node:net'
import {basename, dirname, join} from 'node:path'
import {pathToFileURL} from 'node:url'
import {shellCommand} from '../cli/shell-quote.js'
import {PACKAGE_ROOT} from '../paths.js'

/**
 * Writes an executable wrapper next to the container's other files and returns its binary:// URI.
 * A wrapper, because the shim passes URI query parameters in no fixed order.
 */
export function writeLoggerBinary(stateDir: string, logPath: string): string {
  const wrapper = join(stateDir, 'logger')
  // tsc's output of this file: the CLI runs from a bundle, where import.meta.url names a chunk.
  const script = join(PACKAGE_ROOT, 'dist', 'src', 'run', 'logger.js')
  writeFileSync(wrapper, `#!/bin/sh\nexec ${shellCommand([process.execPath, script, logPath])}\n`, {mode: 0o700})
  return `binary://${wrapper}`
}

/** The marker the logger writes once the container's output is all in the log file. */
export function logCompletePath(logPath: string): string {
  return `${logPath}.complete`
}

/**
 * Resolves once the logger has written everything (its marker exists), or after `timeoutMs` for a
 * log without a logger that finishes (one a killed logger left, or one an older lazyctl wrote).
 */
export async function waitForLogComplete(logPath: string, timeoutMs: number): Promise<void> {
  const marker = logCompletePath(logPath)
  if (existsSync(marker)) return
  await new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      watcher.close()
      resolve()
    }
    const watcher = watch(dirname(marker), (_event, file) => {
      if (file === basename(marker) && existsSync(marker)) done()
    })
    const timer = setTimeout(done, timeoutMs)
    // The marker may have appeared between the first check and the watch.
    if (existsSync(marker)) done()
  })
}

function runLogger(logPath: string): void {
  const out = createWriteStream(logPath, {flags: 'a'})
  out.on('finish', () => writeFileSync(logCompletePath(logPath), ''))
  let open = 0
  for (const fd of [3, 4]) {
    let stream: Socket
    try {
      stream = new Socket({fd, readable: true, writable: false})
    } catch {
      continue // not passed (e.g. no stderr with a terminal)
    }
    open++
    stream.on('data', (chunk: Buffer) => out.write(chunk))
    stream.on('error', () => undefined)
    stream.on('close', () => {
      if (--open === 0) out.end()
    })
  }
  closeSync(5)
  if (open === 0) out.end()
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) runLogger(process.argv[2]!)
