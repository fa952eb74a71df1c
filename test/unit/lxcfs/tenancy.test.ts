// Tenancy: a request's tenant is its caller's pid namespace, looked up once for the requests of one
// system call.

import { rmSync, symlinkSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTenancy } from '../../../src/lxcfs/tenancy.js';
import { HostTree } from '../../fixtures/host-tree.js';
import { hybridProcCgroup } from '../../fixtures/proc-text.js';

let tree: HostTree | undefined;
afterEach(() => {
  vi.useRealTimers();
  tree?.remove();
});

describe('createTenancy', () => {
  it("keys a caller by its pid namespace's inode, reusing the answer for its pid within a millisecond", () => {
    // A stopped clock: on a busy host, changing the link took more than the millisecond itself.
    vi.useFakeTimers({ toFake: ['performance'] });
    tree = HostTree.create();
    tree.addProcess({ pid: 77, pidNamespace: 4026532999, nsPids: [77, 1], cgroup: hybridProcCgroup() });
    tree.addProcess({ pid: 78, pidNamespace: 4026533000, nsPids: [78, 1], cgroup: hybridProcCgroup() });
    const tenancy = createTenancy({ procRoot: tree.roots.procRoot });
    const caller = (pid: number) => ({ pid, uid: 0, gid: 0 });
    expect(tenancy.keyOf(caller(77))).toBe(4026532999);
    // The link changes under the same pid (a test's doing: a live process cannot move): the next
    // request of the same system call still gets the first answer, a later one the new answer.
    const link = `${tree.roots.procRoot}/77/ns/pid`;
    rmSync(link);
    symlinkSync('pid:[4026533001]', link);
    expect(tenancy.keyOf(caller(77))).toBe(4026532999);
    vi.advanceTimersByTime(1);
    expect(tenancy.keyOf(caller(77))).toBe(4026533001);
    expect(tenancy.keyOf(caller(78))).toBe(4026533000);
    expect([tenancy.keyOf(caller(0)), tenancy.keyOf(caller(4242))]).toEqual([0, 0]);
  });
});
