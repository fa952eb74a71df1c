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

/** Labels by key, padded: the same few dozen keys are printed on every read. */
const meminfoLabels = new Map<string, string>();

/** lxcfs's `%-16s%8lu kB` line: label and colon left-justified in 16 columns, value right-justified in 8 (wider values just grow). */
export function meminfoLine(key: string, kb: number): string {
  let label = meminfoLabels.get(key);
  if (label === undefined) meminfoLabels.set(key, (label = (key + ':').padEnd(16)));
  return label + String(kb).padStart(8) + ' kB';
}

/** The value of a /proc/meminfo line by its key (the text before the colon), in the unit shown (kB, or a
 * count); undefined without such a line. */
export function meminfoValue(text: string, key: string): number | undefined {
  for (let start = 0; start < text.length;) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    if (text.startsWith(key, start) && text.charCodeAt(start + key.length) === 0x3a /* : */) {
      const value = Number.parseInt(text.slice(start + key.length + 1, end), 10);
      return Number.isFinite(value) ? value : undefined;
    }
    start = end + 1;
  }
  return undefined;
}
