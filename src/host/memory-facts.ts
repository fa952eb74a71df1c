import type { CgroupLocation } from './cgroup-location.js';
import type { CgroupReader, MemoryCounters } from './cgroup-reader.js';
import { ok, type Result } from './result.js';

export type { MemoryCounters, MemoryStatKeys } from './cgroup-reader.js';

export interface SwapFacts {
  /** v1 accounts RAM and swap together (memsw); v2 accounts swap alone. */
  readonly includesRam: boolean;
  /** Minimum over the cgroup and its ancestors; Infinity = no limit. */
  readonly limitBytes: number;
  readonly usageBytes: number;
}

/** Everything /proc/meminfo and /proc/swaps need from a memory cgroup. */
export interface MemoryFacts {
  /** Minimum over the cgroup and its ancestors; Infinity = no limit. */
  readonly limitBytes: number;
  readonly usageBytes: number;
  readonly counters: MemoryCounters;
  /** Undefined when the host does not account swap per cgroup, or the swap files could not be read. */
  readonly swap: SwapFacts | undefined;
  /** 0 means the cgroup never swaps; undefined where there is no such knob (v2). */
  readonly swappiness: number | undefined;
  /** Whether the zswap counters mean anything on this host. */
  readonly zswapAccounting: boolean;
}

/** Host-wide facts probed once at startup, on the daemon's own memory cgroup (as lxcfs does). */
export interface MemoryAccounting {
  readonly swap: boolean;
  readonly zswap: boolean;
}

/**
 * Reads what the memory views need. Fails (host values apply) when usage,
 * memory.stat or the limit cannot be read — lxcfs's fallback conditions.
 */
export function readMemoryFacts(
  reader: CgroupReader,
  cgroup: CgroupLocation,
  accounting: MemoryAccounting,
): Result<MemoryFacts> {
  const usage = reader.memoryUsage(cgroup);
  if (!usage.ok) return usage;
  const stat = reader.memoryStat(cgroup);
  if (!stat.ok) return stat;
  const limit = reader.memoryLimit(cgroup);
  if (!limit.ok) return limit;

  const counter = (name: keyof MemoryCounters): number => {
    const key = reader.memoryStatKeys[name];
    return key === undefined ? 0 : (stat.value.get(key) ?? 0);
  };
  const counters: MemoryCounters = {
    cache: counter('cache'),
    shmem: counter('shmem'),
    mapped: counter('mapped'),
    dirty: counter('dirty'),
    writeback: counter('writeback'),
    activeAnon: counter('activeAnon'),
    inactiveAnon: counter('inactiveAnon'),
    activeFile: counter('activeFile'),
    inactiveFile: counter('inactiveFile'),
    unevictable: counter('unevictable'),
    anonHugePages: counter('anonHugePages'),
    slab: counter('slab'),
    slabReclaimable: counter('slabReclaimable'),
    slabUnreclaimable: counter('slabUnreclaimable'),
    zswap: counter('zswap'),
    zswapped: counter('zswapped'),
  };

  return ok({
    limitBytes: limit.value,
    usageBytes: usage.value,
    counters,
    swap: accounting.swap ? readSwapFacts(reader, cgroup) : undefined,
    // Swappiness only shapes the swap lines.
    swappiness: accounting.swap ? reader.swappiness(cgroup) : undefined,
    zswapAccounting: accounting.zswap,
  });
}

function readSwapFacts(reader: CgroupReader, cgroup: CgroupLocation): SwapFacts | undefined {
  const limit = reader.swapLimit(cgroup);
  const usage = reader.swapUsage(cgroup);
  if (!limit.ok || !usage.ok) return undefined;
  return { includesRam: reader.version === 1, limitBytes: limit.value, usageBytes: usage.value };
}
