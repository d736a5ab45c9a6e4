// The daemon's log: one JSON object per line on a stream (stderr by default), so that a log
// shipper or `jq` can read it and a test can wait on a specific line.
import type {Writable} from 'node:stream'

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

export type LogFields = Record<string, unknown>

export interface Logger {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
  /** A logger that adds `fields` to every line. */
  with(fields: LogFields): Logger
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value)
}

export function createJsonLogger(options: {level: LogLevel; stream?: Writable; base?: LogFields}): Logger {
  const stream = options.stream ?? process.stderr
  const threshold = LOG_LEVELS.indexOf(options.level)
  const base = options.base ?? {}
  const write = (level: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (LOG_LEVELS.indexOf(level) < threshold) return
    const line = {time: new Date().toISOString(), level, msg, ...base, ...serializable(fields)}
    stream.write(`${JSON.stringify(line)}\n`)
  }
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
    with: (fields) => createJsonLogger({level: options.level, stream, base: {...base, ...fields}}),
  }
}

// Errors do not survive JSON.stringify (their fields are non-enumerable); keep their message and code.
function serializable(fields: LogFields): LogFields {
  const out: LogFields = {}
  for (const [key, value] of Object.entries(fields)) {
    if (value instanceof Error) {
      const code = (value as {code?: unknown}).code
      out[key] = code === undefined ? value.message : `${value.message} (${String(code)})`
    } else {
      out[key] = value
    }
  }
  return out
}
