// Scanning kernel text in place, by index: files read on every request are parsed without splitting them
// into lines and words, whose garbage the reader threads would pause to collect.

/** The number written as text[start, end) in decimal digits only, else undefined. */
export function digitsIn(text: string, start: number, end: number): number | undefined {
  if (start >= end) return undefined;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return undefined;
    value = value * 10 + digit;
  }
  // Past 2^53 the running sum rounds at each step; Number() rounds once, as a parse of the text would.
  return value <= Number.MAX_SAFE_INTEGER ? value : Number(text.slice(start, end));
}

/** A space, tab, newline or carriage return. */
export function isBlank(code: number): boolean {
  return code === 32 || code === 9 || code === 10 || code === 13;
}
