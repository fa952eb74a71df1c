// Containers as the tenants of the daemon's shared resources (handles, snapshot memory, reader time):
// a request belongs to the pid namespace of its caller, the unit per-cgroup state is charged to
// (Caller.pidNamespace) and lxcfs picks a container by (the namespace's init). Processes of the host's
// namespace are one tenant. A tenant's key is the inode of that namespace: the tree hands the reader's
// answer (Caller.tenant) to CallerResolver, which would otherwise read the same link again.

import { readFileSync } from 'node:fs';
import type { Caller, Tenancy } from '../fuse/filesystem.js';
import { namespaceInode, readPidNamespace } from '../host/process.js';

/** `options` are the tree's (TreeOptions); only procRoot is used. */
export function createTenancy(options: unknown): Tenancy {
  const { procRoot } = options as { procRoot: string };
  return {
    keyOf(caller: Caller): number {
      // An exited caller (or pid 0, the kernel) falls into tenant 0.
      const namespace = caller.pid > 0 ? readPidNamespace(procRoot, caller.pid) : undefined;
      return namespace === undefined ? 0 : namespaceInode(namespace);
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
