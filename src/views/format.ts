/** Whole kB in a byte count, as the kernel and lxcfs print them (integer division); Infinity stays Infinity. */
export function kbFromBytes(bytes: number): number {
  return Math.floor(bytes / 1024);
}

/**
 * a − b, but never below 0. lxcfs subtracts unsigned numbers and prints
 * wrapped values near 2^64 when, say, usage exceeds a lowered limit.
 */
export function clampedDifference(a: number, b: number): number {
  return Math.max(0, a - b);
}

/** lxcfs's `%-16s%8lu kB` line: label and colon left-justified in 16 columns, value right-justified in 8 (wider values just grow). */
export function meminfoLine(key: string, kb: number): string {
  return `${(key + ':').padEnd(16)}${String(kb).padStart(8)} kB`;
}

/** The values of a /proc/meminfo text by key (the text before the colon), in the unit shown (kB, or a count). */
export function parseMeminfo(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const value = Number.parseInt(line.slice(colon + 1).trim(), 10);
    if (Number.isFinite(value)) values.set(line.slice(0, colon), value);
  }
  return values;
}
