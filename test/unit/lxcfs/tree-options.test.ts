import { describe, expect, it } from 'vitest';
import { fileBudget } from '../../../src/host/files.js';
import { CONTROL_FIELDS, treeOptionsFrom, type TreeSettings } from '../../../src/lxcfs/tree-options.js';

const settings: TreeSettings = {
  procRoot: '/proc',
  cgroupRoot: '/sys/fs/cgroup',
  disableSwap: false,
  disableZswap: false,
  enableCfs: false,
  enableLoadavg: false,
  enablePsiPoll: false,
  readers: 2,
};

describe('treeOptionsFrom', () => {
  it("shares the readers' part of the open-file budget between them, between 256 and 8192 each", () => {
    const control = new SharedArrayBuffer(CONTROL_FIELDS * 4);
    const share = (readers: number) => treeOptionsFrom({ ...settings, readers }, control).keptFilesPerReader;
    const expected = (readers: number) => Math.min(8192, Math.max(256, Math.floor(fileBudget().readers / readers)));
    expect(share(2)).toBe(expected(2));
    expect(share(64)).toBe(expected(64));
    expect(share(100_000)).toBe(256);
    expect(share(1)).toBeLessThanOrEqual(8192);
  });
});
