// nerdctl's, ctr's and docker's habit: global flags before the command (`lazyctl -n k8s.io ps`, how
// every Kubernetes node is inspected). lazyctl's flags belong to its commands, so the words before
// the command that are global flags move to just after the command's name: before any argument,
// where `run IMAGE CMD…` still reads them as its own. A global flag the command does not have is
// dropped, as it does not concern that command. Anything else before the command (help, a typo) is
// left where it is, for oclif to answer.
// No imports: bin/run.js loads it before anything else.

/** Flags lazyctl accepts before the command: long name, short form, whether a value follows. */
const GLOBAL_FLAGS: ReadonlyArray<{name: string; char?: string; takesValue: boolean}> = [
  {name: 'address', char: 'a', takesValue: true},
  {name: 'namespace', char: 'n', takesValue: true},
  {name: 'snapshotter', takesValue: true},
  {name: 'data-root', takesValue: true},
  {name: 'insecure-registry', takesValue: true},
  {name: 'hosts-dir', takesValue: true},
  {name: 'snapshotter-socket', takesValue: true},
]

/** What hoisting needs of each command: its id (`snapshotter:status`) and its flag names. */
export type CommandFlagNames = Record<string, {flags: Record<string, unknown>}>

interface Hoisted {
  name: string
  words: string[]
}

/** Reads one global flag at `argv[i]`; undefined when the word is not one (or lacks its value). */
function readGlobal(argv: readonly string[], i: number): {hoisted: Hoisted; next: number} | undefined {
  const word = argv[i]!
  const eq = word.indexOf('=')
  const long = word.startsWith('--') ? (eq > 0 ? word.slice(2, eq) : word.slice(2)) : undefined
  const flag = GLOBAL_FLAGS.find((f) => (long !== undefined ? f.name === long : word === `-${f.char}` || (f.char !== undefined && word.startsWith(`-${f.char}`) && word.length > 2)))
  if (!flag) return undefined
  if (long !== undefined && eq > 0) return {hoisted: {name: flag.name, words: [`--${flag.name}=${word.slice(eq + 1)}`]}, next: i + 1}
  if (long === undefined && word.length > 2) return {hoisted: {name: flag.name, words: [`--${flag.name}=${word.slice(2)}`]}, next: i + 1}
  if (!flag.takesValue) return {hoisted: {name: flag.name, words: [`--${flag.name}`]}, next: i + 1}
  if (i + 1 >= argv.length) return undefined
  return {hoisted: {name: flag.name, words: [`--${flag.name}`, argv[i + 1]!]}, next: i + 2}
}

/** `argv` with leading global flags moved after the command's name; unchanged when there are none. */
export function hoistGlobalFlags(argv: readonly string[], commands: CommandFlagNames): readonly string[] {
  if (!argv[0]?.startsWith('-')) return argv
  const hoisted: Hoisted[] = []
  let i = 0
  while (i < argv.length && argv[i]!.startsWith('-')) {
    const read = readGlobal(argv, i)
    if (!read) return argv
    hoisted.push(read.hoisted)
    i = read.next
  }
  const rest = argv.slice(i)
  // The longest run of words naming a command: `snapshotter status`, `node setup`, `ps`.
  let id: string | undefined
  let words = 0
  for (let n = 1; n <= Math.min(3, rest.length); n++) {
    const candidate = rest.slice(0, n).join(':')
    if (commands[candidate]) {
      id = candidate
      words = n
    }
  }
  if (!id) return argv
  const own = commands[id]!.flags
  const moved = hoisted.filter((h) => h.name in own).flatMap((h) => h.words)
  return [...rest.slice(0, words), ...moved, ...rest.slice(words)]
}
