import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rmSync, symlinkSync } from 'node:fs';
import { namespaceInode, readInnermostPid, readPidNamespace, readProcessStat, readStartTime } from '../../../src/host/process.js';
import { HostTree } from '../../fixtures/host-tree.js';
import { hybridProcCgroup } from '../../fixtures/proc-text.js';

describe('per-process facts from /proc', () => {
  let tree: HostTree;
  beforeEach(() => {
    tree = HostTree.create();
    // a command name that looks like more stat fields
    tree.addProcess({ pid: 77, pidNamespace: 4026532999, nsPids: [77, 12, 1], startTime: 123456, comm: 'x) R 1 2 3 (y', cgroup: hybridProcCgroup() });
  });
  afterEach(() => tree.remove());

  it('reads the start time after the last ")" of /proc/<pid>/stat', () => {
    expect(readStartTime(tree.roots.procRoot, 77)).toBe(123456);
    expect(readProcessStat(tree.roots.procRoot, 77)).toEqual({ state: expect.stringMatching(/^[A-Z]$/), startTime: 123456 });
  });

  it('reads the link anew on every call: a pid may name another process by the next request', () => {
    expect(readPidNamespace(tree.roots.procRoot, 77)).toBe('pid:[4026532999]');
    tree.addProcess({ pid: 79, pidNamespace: 4026533000, nsPids: [79], startTime: 1, comm: 'y', cgroup: hybridProcCgroup() });
    expect(readPidNamespace(tree.roots.procRoot, 79)).toBe('pid:[4026533000]');
    const link = `${tree.roots.procRoot}/77/ns/pid`;
    rmSync(link);
    symlinkSync('pid:[4026533001]', link);
    expect(readPidNamespace(tree.roots.procRoot, 77)).toBe('pid:[4026533001]');
  });

  it('takes the inode out of a namespace link', () => {
    expect(namespaceInode('pid:[4026531836]')).toBe(4026531836);
    expect(namespaceInode('pid:4026531836')).toBe(0);
    expect(namespaceInode('pid:[x]')).toBe(0);
  });

  it('reads the innermost NSpid and the pid namespace link', () => {
    expect(readInnermostPid(tree.roots.procRoot, 77)).toBe(1);
    expect(readPidNamespace(tree.roots.procRoot, 77)).toBe('pid:[4026532999]');
  });

  it('returns undefined for a process that is gone', () => {
    expect(readStartTime(tree.roots.procRoot, 78)).toBeUndefined();
    expect(readInnermostPid(tree.roots.procRoot, 78)).toBeUndefined();
    expect(readPidNamespace(tree.roots.procRoot, 78)).toBeUndefined();
  });

  it('works on the real /proc for this process', () => {
    expect(readPidNamespace('/proc', 'self')).toMatch(/^pid:\[\d+\]$/);
    expect(readInnermostPid('/proc', process.pid)).toBe(process.pid);
    expect(readStartTime('/proc', process.pid)).toBeGreaterThan(0);
  });
});
