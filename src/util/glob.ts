// Redis' glob (stringmatchlen, case-sensitive) over bytes: a key or channel in place, a pattern as bytes.

/**
 * Past this recursion depth (one level per '*'), no match: Redis 7.2 added the same guard so an
 * abusive pattern cannot exhaust the stack (7.0 has none; only patterns of over 1000 '*' differ).
 */
const MAX_NESTING = 1000;

// Set by a '*' that found no match for the rest of the pattern anywhere in the string: no
// earlier '*' can do better by matching more, so every enclosing loop stops (as Redis does).
let giveUp = false;

/**
 * Whether `s[start, end)` matches `pattern` exactly as Redis' stringmatchlen would (nocase = 0):
 * `*`, `?`, `[...]` with `^` and ranges, `\` escapes. Allocates nothing. Bytes past the pattern's
 * end read as 0, as Redis reads the terminator of its NUL-terminated pattern.
 */
export function globMatch(pattern: Uint8Array, s: Uint8Array, start: number, end: number): boolean {
  giveUp = false;
  return match(pattern, 0, s, start, end, 0);
}

function match(p: Uint8Array, pi: number, s: Uint8Array, si: number, end: number, nesting: number): boolean {
  if (nesting > MAX_NESTING) return false;
  const plen = p.length;
  while (pi < plen && si < end) {
    const c = p[pi];
    if (c === STAR) {
      while (pi + 1 < plen && p[pi + 1] === STAR) pi++;
      if (pi + 1 === plen) return true;
      while (si < end) {
        if (match(p, pi + 1, s, si, end, nesting + 1)) return true;
        if (giveUp) return false;
        si++;
      }
      giveUp = true;
      return false;
    } else if (c === QUESTION) {
      si++;
    } else if (c === OPEN) {
      pi++;
      const not = at(p, pi) === CARET;
      if (not) pi++;
      let matched = false;
      const sc = s[si];
      // Redis compares range ends as (signed) C chars: bytes from 0x80 sort below 0.
      const ssc = signed(sc);
      for (;;) {
        const pc = at(p, pi);
        if (pc === BACKSLASH && plen - pi >= 2) {
          pi++;
          if (p[pi] === sc) matched = true;
        } else if (pc === CLOSE) {
          break;
        } else if (pi >= plen) {
          // Unterminated class: step back so the advance below lands on the end.
          pi--;
          break;
        } else if (plen - pi >= 3 && p[pi + 1] === DASH) {
          let lo = signed(pc), hi = signed(p[pi + 2]);
          if (lo > hi) { const t = lo; lo = hi; hi = t; }
          pi += 2;
          if (ssc >= lo && ssc <= hi) matched = true;
        } else if (pc === sc) {
          matched = true;
        }
        pi++;
      }
      if (not) matched = !matched;
      if (!matched) return false;
      si++;
    } else {
      if (c === BACKSLASH && plen - pi >= 2) pi++;
      if (p[pi] !== s[si]) return false;
      si++;
    }
    pi++;
    if (si === end) {
      while (at(p, pi) === STAR) pi++;
      break;
    }
  }
  return pi >= plen && si === end;
}

function signed(b: number): number {
  return (b << 24) >> 24;
}

function at(p: Uint8Array, i: number): number {
  return i < p.length ? p[i] : 0;
}

const STAR = 42, QUESTION = 63, OPEN = 91, CLOSE = 93, CARET = 94, BACKSLASH = 92, DASH = 45;
