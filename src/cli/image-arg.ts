// Where IMAGE is in `run [FLAGS] IMAGE [COMMAND…]`: everything after it is the container's, its
// flags included. Used by the run command and by the early snapshotter hint (src/run/early-hint.ts),
// which reads the flag definitions from oclif.manifest.json before oclif is loaded; so no imports.

/** The shape of a flag definition both oclif's flags and the manifest's entries have. */
export interface FlagShape {
  type: string
  char?: string
  aliases?: string[]
}

/** Index of the first positional word (the image), skipping flags and the values of flags that take one. */
export function imageArgIndex(argv: string[], flags: Record<string, FlagShape>): number {
  const takesValue = new Set<string>()
  for (const [name, def] of Object.entries(flags)) {
    if (def.type !== 'option') continue
    takesValue.add(`--${name}`)
    if (def.char) takesValue.add(`-${def.char}`)
    for (const alias of def.aliases ?? []) takesValue.add(`--${alias}`)
  }
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!
    if (word === '--') return i + 1 < argv.length ? i + 1 : -1
    if (!word.startsWith('-') || word === '-') return i
    if (word.includes('=')) continue
    // A cluster like `-it` or `-dv` takes a value only when its last letter does.
    const last = word.startsWith('--') ? word : `-${word.at(-1)}`
    if (takesValue.has(last)) i++
  }
  return -1
}
