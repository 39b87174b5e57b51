// Glob matching as Redis' stringmatchlen: *, ?, [a-z], [^…], and \ escapes.

/** Whether `text` matches `pattern` as Redis matches PSUBSCRIBE patterns and KEYS/SCAN MATCH. */
export function globMatch(pattern: string, text: string, nocase = false): boolean {
  return match(pattern, 0, text, 0, nocase);
}

function match(p: string, pi: number, s: string, si: number, nocase: boolean): boolean {
  const eq = (a: string, b: string) => (nocase ? a.toLowerCase() === b.toLowerCase() : a === b);
  while (pi < p.length && si < s.length) {
    const c = p[pi];
    if (c === "*") {
      while (pi + 1 < p.length && p[pi + 1] === "*") pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) if (match(p, pi + 1, s, k, nocase)) return true;
      return false;
    }
    if (c === "?") {
      pi++;
      si++;
      continue;
    }
    if (c === "[") {
      pi++;
      const not = p[pi] === "^";
      if (not) pi++;
      let hit = false;
      for (;;) {
        if (pi >= p.length) { pi--; break; } // unterminated: as Redis, the class ends here
        if (p[pi] === "\\" && pi + 1 < p.length) {
          pi++;
          if (eq(p[pi], s[si])) hit = true;
        } else if (p[pi] === "]") {
          break;
        } else if (pi + 2 < p.length && p[pi + 1] === "-") {
          let lo = p[pi], hi = p[pi + 2], ch = s[si];
          if (nocase) { lo = lo.toLowerCase(); hi = hi.toLowerCase(); ch = ch.toLowerCase(); }
          if (lo > hi) [lo, hi] = [hi, lo];
          if (ch >= lo && ch <= hi) hit = true;
          pi += 2;
        } else if (eq(p[pi], s[si])) {
          hit = true;
        }
        pi++;
      }
      if (not) hit = !hit;
      if (!hit) return false;
      pi++;
      si++;
      continue;
    }
    if (c === "\\" && pi + 1 < p.length) pi++;
    if (!eq(p[pi], s[si])) return false;
    pi++;
    si++;
  }
  if (si < s.length) return false;
  while (pi < p.length && p[pi] === "*") pi++;
  return pi === p.length;
}
