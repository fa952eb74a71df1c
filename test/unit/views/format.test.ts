import { describe, expect, it } from 'vitest';
import { clampedDifference, kbFromBytes, meminfoLine, parseMeminfo } from '../../../src/views/format.js';

describe('meminfoLine', () => {
  it('pads the key and colon to 16 columns and the value to 8', () => {
    expect(meminfoLine('MemTotal', 262144)).toBe('MemTotal:         262144 kB');
    expect(meminfoLine('Inactive(file)', 0)).toBe('Inactive(file):        0 kB');
  });

  it('lets wider values grow instead of truncating', () => {
    expect(meminfoLine('MemTotal', 1234567890)).toBe('MemTotal:       1234567890 kB');
  });
});

describe('parseMeminfo', () => {
  it('reads kB values and plain counts by key', () => {
    const values = parseMeminfo('MemTotal:       24684092 kB\nHugePages_Total:       0\nbroken line\nSwapTotal:  8 kB\n');
    expect(values.get('MemTotal')).toBe(24684092);
    expect(values.get('HugePages_Total')).toBe(0);
    expect(values.get('SwapTotal')).toBe(8);
    expect(values.size).toBe(3);
  });
});

describe('arithmetic helpers', () => {
  it('kbFromBytes divides like C integer division', () => {
    expect(kbFromBytes(2047)).toBe(1);
    expect(kbFromBytes(Infinity)).toBe(Infinity);
  });

  it('clampedDifference never goes below 0', () => {
    expect(clampedDifference(5, 7)).toBe(0);
    expect(clampedDifference(7, 5)).toBe(2);
  });
});
