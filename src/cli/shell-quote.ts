// Words for /bin/sh: for the scripts lazyctl writes (a node's setup steps, a container's logger
// wrapper, the remover of `run -d --rm`), where a path with a quote or a space must stay one word.

/** Quotes one word for /bin/sh. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_/.:=@%+,-]+$/.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}

export function shellCommand(words: string[]): string {
  return words.map(shellQuote).join(' ')
}
