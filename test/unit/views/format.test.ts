import { describe, expect, it } from 'vitest';
import { clampedDifference, kbFromBytes, meminfoLine, meminfoValue } from '../../../src/views/format.js';

describe('meminfoLine', () => {
  it('pads the key and colon to 16 columns and the value to 8', () => {
    expect(meminfoLine('MemTotal', 262144)).toBe('MemTotal:         262144 kB');
    expect(meminfoLine('Inactive(file)', 0)).toBe('Inactive(file):        0 kB');
  });

  it('lets wider values grow instead of truncating', () => {
    expect(meminfoLine('MemTotal', 1234567890)).toBe('MemTotal:       1234567890 kB');
  });
});

describe('meminfoValue', () => {
  const text = 'MemTotal:       24684092 kB\nHugePages_Total:       0\nbroken line\nSwapTotal:  8 kB\nSwap: 3 kB';
  it('reads kB values and plain counts by key', () => {
    expect(meminfoValue(text, 'MemTotal')).toBe(24684092);
    expect(meminfoValue(text, 'HugePages_Total')).toBe(0);
    expect(meminfoValue(text, 'SwapTotal')).toBe(8);
  });

  it('matches the whole key only, up to its colon', () => {
    expect(meminfoValue(text, 'Swap')).toBe(3);
    expect(meminfoValue(text, 'Mem')).toBeUndefined();
    expect(meminfoValue(text, 'broken line')).toBeUndefined();
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
