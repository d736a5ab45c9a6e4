// The logger lazyfs writes to. The snapshotter passes its own; tests pass one that collects lines.
export type LogFields = Record<string, string | number | boolean | undefined>

export interface LazyfsLog {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
}

export const silentLog: LazyfsLog = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
}
