// TOC `modtime` → seconds since the epoch. Every writer we know (stargz-snapshotter's Go writer,
// ours) emits Go's time.RFC3339 in UTC at second precision, "2006-01-02T15:04:05Z"; that form is
// parsed here by arithmetic, since Date.parse per entry was a visible share of opening a layer
// (8k entries). Anything else (offsets, fractions, odd values) goes to Date.parse, so the result is
// always what Date.parse would say: 0 when it cannot be parsed.

const ZERO = 48

/** Seconds since the epoch of an RFC 3339 time (floor of Date.parse / 1000; 0 when absent or invalid). */
export function modtimeSeconds(modtime: string | undefined): number {
  if (!modtime) return 0
  const fast = fixedUtcSeconds(modtime)
  if (fast !== null) return fast
  const ms = Date.parse(modtime)
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000)
}

/** "YYYY-MM-DDTHH:MM:SSZ" with every field in range, or null (the caller falls back). */
function fixedUtcSeconds(s: string): number | null {
  if (s.length !== 20 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 84 ||
    s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58 || s.charCodeAt(19) !== 90) return null
  const year = digits(s, 0, 4)
  const month = digits(s, 5, 2)
  const day = digits(s, 8, 2)
  const hour = digits(s, 11, 2)
  const minute = digits(s, 14, 2)
  const second = digits(s, 17, 2)
  // The ranges Date.parse accepts (it lets a day roll over into the next month, as here); the
  // rarer ones it also takes (24:00:00) are left to it.
  if (year < 0 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null
  return (daysFromCivil(year, month) + day - 1) * 86400 + hour * 3600 + minute * 60 + second
}

/** Decimal value of s[at, at+count), or -1 if any of it is not a digit. */
function digits(s: string, at: number, count: number): number {
  let value = 0
  for (let i = at; i < at + count; i++) {
    const d = s.charCodeAt(i) - ZERO
    if (d < 0 || d > 9) return -1
    value = value * 10 + d
  }
  return value
}

/** Days from 1970-01-01 to the first of `month` of `year` (proleptic Gregorian; H. Hinnant's algorithm). */
function daysFromCivil(year: number, month: number): number {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const shiftedMonth = month > 2 ? month - 3 : month + 9
  const dayOfYear = Math.floor((153 * shiftedMonth + 2) / 5)
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146097 + dayOfEra - 719468
}

/**
 * modtimeSeconds remembering what it parsed: a layer's entries share few distinct times (the
 * demo's base layer: 340 for 8,364 entries). One per TOC, so it holds at most that TOC's strings.
 */
export function memoizedModtimeSeconds(): (modtime: string | undefined) => number {
  const known = new Map<string, number>()
  return (modtime) => {
    if (!modtime) return 0
    let seconds = known.get(modtime)
    if (seconds === undefined) {
      seconds = modtimeSeconds(modtime)
      known.set(modtime, seconds)
    }
    return seconds
  }
}
