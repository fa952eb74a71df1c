// The slab usage of a memory cgroup, for /proc/slabinfo: memory.kmem.slabinfo of cgroup v1. Linux ≥ 5.9
// accounts slab objects per cgroup without per-cache lists, and that file is empty there (or gone with
// kmem accounting on newer kernels); cgroup v2 has no such file at all.

import type { Host } from './host.js';
import { readCgroupFile } from './cgroup-reader.js';
import type { ProcessId } from './process.js';
import { fail, ok, type Result } from './result.js';

/** The cgroup's memory.kmem.slabinfo; fails (header only applies) when there is none to read. */
export function readKmemSlabinfo(host: Host, cgroupPid: ProcessId): Result<string> {
  const cgroup = host.cgroupOf(cgroupPid, 'memory');
  if (!cgroup.ok) return cgroup;
  if (cgroup.value.hierarchy.version !== 1) return fail('cgroup v2 has no per-cgroup slabinfo');
  const text = readCgroupFile(cgroup.value, 'memory.kmem.slabinfo');
  if (text === undefined) return fail(`no memory.kmem.slabinfo in cgroup ${cgroup.value.path} (kmem accounting is off or gone)`);
  return ok(text);
}
