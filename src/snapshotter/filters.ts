// containerd's filter syntax, as List requests carry it: `field==value`, `field!=value`,
// `field~=regex`, a bare `field` (present), fields joined by "." and quotable
// (`labels."containerd.io/snapshot.ref"==sha256:…`), "," = AND inside one string, "|" or separate
// strings = OR. Values are bare (up to "," or "|") or quoted ("…", '…', /…/).
import {SnapshotError} from './snapshot-error.js'

type Operator = 'present' | '==' | '!=' | '~='

interface Selector {
  fieldpath: string[]
  operator: Operator
  value: string
  regex?: RegExp
}

/** A parsed filter: OR of ANDs of selectors. An empty filter list matches everything. */
export interface Filter {
  match(field: (fieldpath: string[]) => string | undefined): boolean
}

export function parseFilters(filters: string[]): Filter {
  const alternatives: Selector[][] = []
  for (const text of filters) {
    if (text.trim() === '') continue
    alternatives.push(...new FilterParser(text).parse())
  }
  return {
    match(field) {
      if (alternatives.length === 0) return true
      return alternatives.some((all) => all.every((selector) => matchSelector(selector, field(selector.fieldpath))))
    },
  }
}

function matchSelector(selector: Selector, value: string | undefined): boolean {
  switch (selector.operator) {
    case 'present':
      return value !== undefined
    case '==':
      return value !== undefined && value === selector.value
    case '!=':
      // containerd compares the (possibly absent, so empty) value: absent != "x" is true.
      return (value ?? '') !== selector.value
    case '~=':
      return selector.regex!.test(value ?? '')
  }
}

class FilterParser {
  private pos = 0

  constructor(private readonly input: string) {}

  parse(): Selector[][] {
    const alternatives: Selector[][] = [[this.selector()]]
    for (;;) {
      this.skipSpace()
      if (this.pos >= this.input.length) return alternatives
      const ch = this.input[this.pos]
      this.pos++
      if (ch === ',') alternatives[alternatives.length - 1]!.push(this.selector())
      else if (ch === '|') alternatives.push([this.selector()])
      else this.fail(`unexpected ${JSON.stringify(ch)}`)
    }
  }

  private selector(): Selector {
    const fieldpath = [this.field()]
    while (this.input[this.pos] === '.') {
      this.pos++
      fieldpath.push(this.field())
    }
    this.skipSpace()
    const op = this.input.slice(this.pos, this.pos + 2)
    if (op !== '==' && op !== '!=' && op !== '~=') return {fieldpath, operator: 'present', value: ''}
    this.pos += 2
    this.skipSpace()
    const value = this.value()
    const selector: Selector = {fieldpath, operator: op, value}
    if (op === '~=') {
      try {
        selector.regex = new RegExp(value)
      } catch {
        this.fail(`bad regular expression ${JSON.stringify(value)}`)
      }
    }
    return selector
  }

  private field(): string {
    this.skipSpace()
    const ch = this.input[this.pos]
    if (ch === '"' || ch === "'" || ch === '`') return this.quoted(ch)
    const match = /^[A-Za-z_][A-Za-z0-9_-]*/.exec(this.input.slice(this.pos))
    if (!match) this.fail('expected a field name')
    this.pos += match[0].length
    return match[0]
  }

  private value(): string {
    const ch = this.input[this.pos]
    if (ch === '"' || ch === "'" || ch === '/') return this.quoted(ch)
    const match = /^[^\s,|]+/.exec(this.input.slice(this.pos))
    if (!match) this.fail('expected a value')
    this.pos += match[0].length
    return match[0]
  }

  private quoted(quote: string): string {
    let out = ''
    this.pos++
    while (this.pos < this.input.length) {
      const ch = this.input[this.pos++]!
      if (ch === quote) return out
      if (ch === '\\' && this.pos < this.input.length) {
        const next = this.input[this.pos++]!
        out += next === 'n' ? '\n' : next === 't' ? '\t' : next
      } else {
        out += ch
      }
    }
    this.fail('unterminated quoted string')
  }

  private skipSpace(): void {
    while (this.pos < this.input.length && /\s/.test(this.input[this.pos]!)) this.pos++
  }

  private fail(what: string): never {
    throw new SnapshotError('INVALID_ARGUMENT', `filter ${JSON.stringify(this.input)}: ${what} at ${this.pos}`)
  }
}
