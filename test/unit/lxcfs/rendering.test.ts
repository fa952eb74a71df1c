// The bytes of a rendering: latin1, in one buffer per thread that every rendering reuses.

import { describe, expect, it } from 'vitest';
import { encodeRendering } from '../../../src/lxcfs/rendering.js';

describe('encodeRendering', () => {
  it('gives the latin1 bytes of the text, one per character', () => {
    const text = 'MemTotal:       262144 kB\n\u00e9\u00ff\n';
    expect(Buffer.from(encodeRendering(text))).toEqual(Buffer.from(text, 'latin1'));
    expect(encodeRendering('')).toHaveLength(0);
  });

  it('reuses one buffer, so a rendering allocates no memory outside the JavaScript heap', () => {
    const first = encodeRendering('0.00 0.00 0.00 0/1 1\n');
    const second = encodeRendering('12345.67 890.12\n');
    expect(second.buffer).toBe(first.buffer);
    expect(second.toString('latin1')).toBe('12345.67 890.12\n');
  });

  it('grows for a text longer than its buffer, and keeps the larger one', () => {
    const long = 'x'.repeat(100_000) + '\n';
    const encoded = encodeRendering(long);
    expect(encoded.toString('latin1')).toBe(long);
    expect(encodeRendering('short\n').buffer).toBe(encoded.buffer);
  });
});
