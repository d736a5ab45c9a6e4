// Flags of a command line parsed with the flag definitions of oclif.manifest.json, for the commands
// that run without loading oclif (src/cli/lean.ts). Only the plain, common forms are taken: anything
// else — help, an unknown or malformed flag, a value outside a flag's options, a boolean set through
// the environment, an exclusive pair — returns undefined, and oclif parses the line as always, with
// its messages. So this never has to reproduce oclif's errors, only its results for good input.
// No imports: bin/run.js loads it before anything else.

/** A flag as oclif.manifest.json records it. */
export interface ManifestFlag {
  type: string
  char?: string
  aliases?: string[]
  env?: string
  default?: unknown
  multiple?: boolean
  options?: string[]
  allowNo?: boolean
  exclusive?: string[]
}

export interface ParsedLine {
  flags: Record<string, string | string[] | boolean | undefined>
  /** Words that are not flags, in order; after the first one of a command that stops there, every word. */
  positionals: string[]
}

export interface ParseOptions {
  /** Flags end at the first positional word (`run IMAGE CMD --flag`: the flag is the container's). */
  stopAtPositional?: boolean
  env?: NodeJS.ProcessEnv
}

/** The parsed line, or undefined when oclif should parse it (see above). */
export function parseWithManifest(argv: readonly string[], defs: Record<string, ManifestFlag>, options: ParseOptions = {}): ParsedLine | undefined {
  const env = options.env ?? process.env
  const byLong = new Map<string, string>()
  const byChar = new Map<string, string>()
  for (const [name, def] of Object.entries(defs)) {
    byLong.set(name, name)
    for (const alias of def.aliases ?? []) byLong.set(alias, name)
    if (def.char) byChar.set(def.char, name)
  }
  const given: Record<string, string | string[] | boolean> = {}
  const positionals: string[] = []
  const set = (name: string, value: string | true): boolean => {
    const def = defs[name]!
    if (def.type === 'boolean') {
      if (value !== true) return false
      given[name] = true
      return true
    }
    if (value === true) return false
    if (def.options && !def.options.includes(value)) return false
    if (def.multiple) given[name] = [...((given[name] as string[] | undefined) ?? []), value]
    else given[name] = value
    return true
  }
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!
    if (word === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!word.startsWith('-') || word === '-') {
      if (options.stopAtPositional) {
        positionals.push(...argv.slice(i))
        break
      }
      positionals.push(word)
      continue
    }
    if (word.startsWith('--')) {
      const eq = word.indexOf('=')
      const name = byLong.get(eq < 0 ? word.slice(2) : word.slice(2, eq))
      if (!name) return undefined // --help, --no-…, a typo: oclif's to answer
      const def = defs[name]!
      if (eq >= 0) {
        if (!set(name, word.slice(eq + 1))) return undefined
      } else if (def.type === 'boolean') {
        set(name, true)
      } else {
        if (i + 1 >= argv.length) return undefined
        if (!set(name, argv[++i]!)) return undefined
      }
      continue
    }
    // -a VALUE, or a cluster of booleans whose last letter may take the next word.
    const letters = word.slice(1)
    for (let j = 0; j < letters.length; j++) {
      const name = byChar.get(letters[j]!)
      if (!name) return undefined // -h, a glued value (-eFOO=1), an unknown letter
      if (defs[name]!.type === 'boolean') {
        set(name, true)
        continue
      }
      if (j !== letters.length - 1 || i + 1 >= argv.length) return undefined
      if (!set(name, argv[++i]!)) return undefined
    }
  }
  const flags: ParsedLine['flags'] = {}
  for (const [name, def] of Object.entries(defs)) {
    let value: string | string[] | boolean | undefined = given[name]
    if (value === undefined && def.env && env[def.env] !== undefined && env[def.env] !== '') {
      if (def.type === 'boolean' || def.multiple) return undefined
      const fromEnv = env[def.env]!
      if (def.options && !def.options.includes(fromEnv)) return undefined
      value = fromEnv
    }
    if (value === undefined) value = def.default as typeof value
    if (value === undefined && def.multiple) value = []
    flags[name] = value
  }
  for (const [name, def] of Object.entries(defs)) {
    if (given[name] !== undefined && def.exclusive?.some((other) => given[other] !== undefined)) return undefined
  }
  return {flags, positionals}
}
