import type { MemoryFacts } from '../host/memory-facts.js';
import { clampedDifference, kbFromBytes, meminfoLine, parseMeminfo } from './format.js';
import { containerSwap, type SwapViewOptions } from './swaps.js';

export interface MeminfoOptions extends SwapViewOptions {
  /** lxcfs --disable-zswap: show Zswap and Zswapped as 0. */
  readonly disableZswap: boolean;
}

/**
 * /proc/meminfo for a container (lxcfs 6.0/7.0 formulas, with its memory.stat
 * prefix-matching bugs fixed: Mapped, Dirty, Writeback and AnonHugePages are
 * read on both cgroup versions). Lines computed here replace the host's, in
 * lxcfs's format; every other host line is passed through unchanged.
 */
export function renderMeminfo(hostMeminfo: string, memory: MemoryFacts, options: MeminfoOptions): string {
  const host = parseMeminfo(hostMeminfo);
  const hostMemTotalKb = host.get('MemTotal');
  // Nothing sane to clamp against: pass the host file through.
  if (hostMemTotalKb === undefined) return hostMeminfo;

  const values = containerMeminfo(memory, hostMemTotalKb, host.get('SwapTotal') ?? 0, options);
  return hostMeminfo
    .split('\n')
    .map((line) => {
      const colon = line.indexOf(':');
      const key = line.slice(0, colon);
      const kb = colon > 0 ? values.get(key) : undefined;
      return kb === undefined ? line : meminfoLine(key, kb);
    })
    .join('\n');
}

/** The container's value for each meminfo key it replaces, in kB. */
function containerMeminfo(
  memory: MemoryFacts,
  hostMemTotalKb: number,
  hostSwapTotalKb: number,
  options: MeminfoOptions,
): Map<string, number> {
  const c = memory.counters;
  const limitKb = kbFromBytes(memory.limitBytes);
  // A limit below 1 kB would show MemTotal 0, which breaks tools such as ps (lxcfs #389): lxcfs shows the host's.
  const memTotal = Math.min(limitKb === 0 ? hostMemTotalKb : limitKb, hostMemTotalKb);
  const memFree = clampedDifference(memTotal, kbFromBytes(memory.usageBytes));
  const swap = containerSwap(memory, memTotal, hostSwapTotalKb, options);
  const showZswap = memory.zswapAccounting && !options.disableZswap;

  return new Map([
    ['MemTotal', memTotal],
    ['MemFree', memFree],
    // Free plus what reclaim can drop without swapping: the file LRUs, and reclaimable slab where cgroups count it (v2).
    ['MemAvailable', memFree + kbFromBytes(c.activeFile + c.inactiveFile + c.slabReclaimable)],
    // Cgroups do not count buffers apart from the page cache, nor swap cache apart from swap.
    ['Buffers', 0],
    ['Cached', kbFromBytes(c.cache)],
    ['SwapCached', 0],
    ['Active', kbFromBytes(c.activeAnon + c.activeFile)],
    ['Inactive', kbFromBytes(c.inactiveAnon + c.inactiveFile)],
    ['Active(anon)', kbFromBytes(c.activeAnon)],
    ['Inactive(anon)', kbFromBytes(c.inactiveAnon)],
    ['Active(file)', kbFromBytes(c.activeFile)],
    ['Inactive(file)', kbFromBytes(c.inactiveFile)],
    ['Unevictable', kbFromBytes(c.unevictable)],
    ['SwapTotal', swap.totalKb],
    ['SwapFree', clampedDifference(swap.totalKb, swap.usedKb)],
    ['Zswap', showZswap ? kbFromBytes(c.zswap) : 0],
    ['Zswapped', showZswap ? kbFromBytes(c.zswapped) : 0],
    ['Dirty', kbFromBytes(c.dirty)],
    ['Writeback', kbFromBytes(c.writeback)],
    // shmem pages sit on the anon LRUs but are not anonymous memory.
    ['AnonPages', kbFromBytes(clampedDifference(c.activeAnon + c.inactiveAnon, c.shmem))],
    ['Mapped', kbFromBytes(c.mapped)],
    ['Shmem', kbFromBytes(c.shmem)],
    ['Slab', kbFromBytes(c.slab)],
    ['SReclaimable', kbFromBytes(c.slabReclaimable)],
    ['SUnreclaim', kbFromBytes(c.slabUnreclaimable)],
    ['AnonHugePages', kbFromBytes(c.anonHugePages)],
    ['ShmemHugePages', 0],
    ['ShmemPmdMapped', 0],
  ]);
}
