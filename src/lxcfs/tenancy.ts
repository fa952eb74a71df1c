// Containers as the tenants of the daemon's shared resources (handles, snapshot memory, reader time):
// a request belongs to the pid namespace of its caller, the unit per-cgroup state is charged to
// (Caller.pidNamespace) and lxcfs picks a container by (the namespace's init). Processes of the host's
// namespace are one tenant. A tenant's key is the inode of that namespace: the tree hands the reader's
// answer (Caller.tenant) to CallerResolver, which would otherwise read the same link again.

import { readFileSync } from 'node:fs';
import type { Caller, Tenancy } from '../fuse/filesystem.js';
import { readPidNamespaceInode } from '../host/process.js';

const REUSE_MS = 1;

/** `options` are the tree's (TreeOptions); only procRoot is used. */
export function createTenancy(options: unknown): Tenancy {
  const { procRoot } = options as { procRoot: string };
  // One system call of a client is several requests back to back (open: LOOKUP and OPEN; then READ), and
  // each asks for its caller's tenant: the last answer serves the same pid for a millisecond. A process
  // never changes its own pid namespace, and the kernel hands pids out in turn up to pid_max before it
  // reuses one: no pid names two processes within a millisecond.
  const last = { pid: 0, key: 0, at: -Infinity };
  return {
    keyOf(caller: Caller): number {
      // An exited caller (or pid 0, the kernel) falls into tenant 0.
      if (caller.pid <= 0) return 0;
      const now = performance.now();
      if (caller.pid === last.pid && now - last.at < REUSE_MS) return last.key;
      const key = readPidNamespaceInode(procRoot, caller.pid);
      last.pid = key === 0 ? 0 : caller.pid;
      last.key = key;
      last.at = now;
      return key;
    },
    describe(key: number, caller: Caller): Record<string, unknown> {
      let command: string | undefined;
      try {
        command = readFileSync(`${procRoot}/${caller.pid}/comm`, 'utf8').trim();
      } catch {
        // gone already
      }
      return { pidNamespace: `pid:[${key}]`, command };
    },
  };
}
