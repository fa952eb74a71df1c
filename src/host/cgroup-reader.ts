// One interface over the cgroup files of both versions, like lxcfs's cgroup_ops: callers never ask which
// version a cgroup is, they ask its reader (Host.readerFor).

import type { CgroupVersion } from './cgroup-layout.js';
import type { CgroupLocation } from './cgroup-location.js';
import type { CgroupIo } from './io.js';
import type { Result } from './result.js';

/** memory.stat as key → value, keys exactly as the kernel spells them. */
export type MemoryStat = ReadonlyMap<string, number>;

/** memory.stat counters the views use, in bytes, named independently of the cgroup version. */
export interface MemoryCounters {
  /** Page cache, tmpfs/shmem included. */
  readonly cache: number;
  readonly shmem: number;
  readonly mapped: number;
  readonly dirty: number;
  readonly writeback: number;
  readonly activeAnon: number;
  readonly inactiveAnon: number;
  readonly activeFile: number;
  readonly inactiveFile: number;
  readonly unevictable: number;
  readonly anonHugePages: number;
  readonly slab: number;
  readonly slabReclaimable: number;
  readonly slabUnreclaimable: number;
  /** Compressed size of what zswap holds, and the uncompressed size it stands for. */
  readonly zswap: number;
  readonly zswapped: number;
}

export type MemoryStatKeys = { readonly [Counter in keyof MemoryCounters]?: string };

/** CPU time of a cgroup per CPU, in nanoseconds (v1 cpuacct). */
export interface PerCpuTime {
  readonly userNs: number;
  readonly systemNs: number;
}

/** cgroup2 cpu.stat, in microseconds. user includes nice. */
export interface CpuStat {
  readonly usageUsec: number;
  readonly userUsec: number;
  readonly systemUsec: number;
  readonly niceUsec: number;
}

/** CPU time used by a container's cgroup, as the host accounts it: per CPU (v1 cpuacct), or in totals
 * only (cgroup2 cpu.stat). */
export type CpuUsage =
  | { readonly kind: 'per-cpu'; readonly cgroup: CgroupLocation; readonly perCpu: readonly PerCpuTime[] }
  | { readonly kind: 'totals'; readonly cgroup: CgroupLocation; readonly stat: CpuStat };

/**
 * Reads cgroup files of one cgroup version. Every method takes the cgroup to read; byte values are
 * numbers, `Infinity` meaning "no limit". A failure means the caller should serve host values (cgroup
 * removed, controller not enabled, nothing of the kind in this version).
 */
export interface CgroupReader {
  readonly version: CgroupVersion;

  // memory
  /** memory.stat key of each counter in this version; a counter without a key does not exist here (reads as 0). */
  readonly memoryStatKeys: MemoryStatKeys;
  /** RAM limit, minimum over the cgroup and its ancestors. */
  memoryLimit(cgroup: CgroupLocation): Result<number>;
  /** Swap limit, minimum over the cgroup and its ancestors. v1: of RAM+swap together (memsw); v2: of swap alone. */
  swapLimit(cgroup: CgroupLocation): Result<number>;
  /** RAM in use. */
  memoryUsage(cgroup: CgroupLocation): Result<number>;
  /** Swap in use. v1: RAM+swap together; v2: swap alone. */
  swapUsage(cgroup: CgroupLocation): Result<number>;
  memoryStat(cgroup: CgroupLocation): Result<MemoryStat>;
  /** memory.swappiness; undefined where the knob does not exist (v2) or cannot be read. */
  swappiness(cgroup: CgroupLocation): number | undefined;
  /** Whether the kernel accounts swap per cgroup, probed from this cgroup (the daemon's own, at startup). */
  hasSwapAccounting(cgroup: CgroupLocation): boolean;
  /** Whether the kernel accounts zswap per cgroup (v2 only). */
  hasZswapAccounting(cgroup: CgroupLocation): boolean;
  /** The memory cgroup's own slab caches (v1 memory.kmem.slabinfo); v2 has none. */
  slabinfo(cgroup: CgroupLocation): Result<string>;

  // cpuset, cpu, cpuacct
  /** The cpuset: cpuset.cpus (v2: or cpuset.cpus.effective when that is empty) of the cgroup, or of
   * its nearest ancestor that has one (lxcfs's rule). */
  cpuset(cgroup: CgroupLocation): Result<string>;
  /** The CFS quota in CPUs (quota/period) that binds the cgroup: the smallest over it and its ancestors
   * (lxcfs 7.0; 5.0 looked at the cgroup alone); undefined when none has a quota. */
  cpuQuota(cgroup: CgroupLocation): number | undefined;
  /** Whether this version accounts CPU time per CPU (v1 cpuacct) rather than in totals (cgroup2). */
  readonly perCpuTimes: boolean;
  /** The CPU time the cgroup and its descendants used. */
  cpuUsage(cgroup: CgroupLocation): Result<CpuUsage>;
  /** Total CPU time of the cgroup in nanoseconds. */
  cpuTimeNs(cgroup: CgroupLocation): Result<number>;

  // io, threads
  /** I/O per device of the cgroup and its descendants (v1 blkio, v2 io.stat). */
  io(cgroup: CgroupLocation): Result<CgroupIo>;
  /** The file listing the threads of the cgroup directory itself (v1 `tasks`, v2 `cgroup.threads`). */
  threadListPath(directory: string): string;
}
