import fs from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openStateFile, takeHandoff, writeHandoff } from '../../src/daemon/state-files.js';

describe('the handoff state file', () => {
  let fd: number | undefined;
  afterEach(() => {
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined;
  });

  it('carries the parts to the reader once, then holds nothing', () => {
    fd = openStateFile(pino({ enabled: false }));
    expect(fd).toBeDefined();
    const big = Uint8Array.from({ length: 3 << 20 }, (_, i) => i % 251);
    writeHandoff(fd!, [Uint8Array.of(1, 2, 3), new Uint8Array(0), big]);
    const parts = takeHandoff(fd!, 3);
    expect(parts?.map((part) => part.length)).toEqual([3, 0, 3 << 20]);
    expect([...parts![0]!]).toEqual([1, 2, 3]);
    expect(Buffer.compare(parts![2]!, big)).toBe(0);
    expect(fs.fstatSync(fd!).size).toBe(0);
    expect(takeHandoff(fd!, 3)).toBeUndefined();
  });

  it('gives nothing for a file cut short, and replaces a longer earlier content', () => {
    fd = openStateFile(pino({ enabled: false }));
    writeHandoff(fd!, [new Uint8Array(100), new Uint8Array(100)]);
    writeHandoff(fd!, [Uint8Array.of(7)]);
    expect(fs.fstatSync(fd!).size).toBe(9);
    expect(takeHandoff(fd!, 1)?.map((part) => [...part])).toEqual([[7]]);
    writeHandoff(fd!, [new Uint8Array(10), new Uint8Array(10)]);
    fs.ftruncateSync(fd!, 25);
    expect(takeHandoff(fd!, 2)).toBeUndefined();
  });
});
