// Command-line options of the benchmarks: `--name value` pairs, nothing more (benches are run by hand).

/** The value after `name` on the command line, if given. */
export function benchOption(name: string, argv: string[] = process.argv.slice(2)): string | undefined {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}

/** A numeric option, or `fallback` when absent. */
export function benchNumber(name: string, fallback: number): number {
  const value = benchOption(name)
  return value === undefined ? fallback : Number(value)
}
