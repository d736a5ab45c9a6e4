// The log capture of a detached container with a terminal (`run -d -t`): the shim's file:// IO does
// not take a console in containerd 1.6, so the shim runs a logging binary instead (binary:// IO):
// fd 3 carries the console's output, fd 4 stderr (unused with a terminal), and closing fd 5 tells
// the shim we are ready. Run as `node logger.js LOGFILE`, without oclif, so it starts fast.
import {closeSync, createWriteStream, writeFileSync} from 'node:fs'
import {Socket} from 'node:net'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

/**
 * Writes an executable wrapper next to the container's other files and returns its binary:// URI.
 * A wrapper, because the shim passes URI query parameters in no fixed order.
 */
export function writeLoggerBinary(stateDir: string, logPath: string): string {
  const wrapper = join(stateDir, 'logger')
  const script = fileURLToPath(import.meta.url)
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`
  writeFileSync(wrapper, `#!/bin/sh\nexec ${quote(process.execPath)} ${quote(script)} ${quote(logPath)}\n`, {mode: 0o700})
  return `binary://${wrapper}`
}

function runLogger(logPath: string): void {
  const out = createWriteStream(logPath, {flags: 'a'})
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
