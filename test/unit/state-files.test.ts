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

  it('carries the dump to the reader once, then holds nothing', () => {
    fd = openStateFile(pino({ enabled: false }));
    expect(fd).toBeDefined();
    const big = Uint8Array.from({ length: 3 << 20 }, (_, i) => i % 251);
    writeHandoff(fd!, { control: Uint8Array.of(1, 2, 3), pages: big });
    const dump = takeHandoff(fd!);
    expect([dump?.control.length, dump?.pages.length]).toEqual([3, 3 << 20]);
    expect([...dump!.control]).toEqual([1, 2, 3]);
    expect(Buffer.compare(dump!.pages, big)).toBe(0);
    expect(fs.fstatSync(fd!).size).toBe(0);
    expect(takeHandoff(fd!)).toBeUndefined();
  });

  it('gives nothing for a file cut short, and replaces a longer earlier content', () => {
    fd = openStateFile(pino({ enabled: false }));
    writeHandoff(fd!, { control: new Uint8Array(100), pages: new Uint8Array(100) });
    writeHandoff(fd!, { control: Uint8Array.of(7), pages: new Uint8Array(0) });
    expect(fs.fstatSync(fd!).size).toBe(17);
    const dump = takeHandoff(fd!);
    expect([[...dump!.control], dump!.pages.length]).toEqual([[7], 0]);
    writeHandoff(fd!, { control: new Uint8Array(10), pages: new Uint8Array(10) });
    fs.ftruncateSync(fd!, 25);
    expect(takeHandoff(fd!)).toBeUndefined();
  });
});
