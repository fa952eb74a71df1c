import type { MemoryFacts } from '../host/memory-facts.js';
import { clampedDifference, kbFromBytes, meminfoLine, meminfoValue } from './format.js';
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
  const hostMemTotalKb = meminfoValue(hostMeminfo, 'MemTotal');
  // Nothing sane to clamp against: pass the host file through.
  if (hostMemTotalKb === undefined) return hostMeminfo;

  const values = containerMeminfo(memory, hostMemTotalKb, meminfoValue(hostMeminfo, 'SwapTotal') ?? 0, options);
  // Line by line without splitting the text, copying runs of host lines whole: this file is read often,
  // and garbage makes the reader threads pause to collect it.
  let rendered = '';
  let run = 0; // where the host lines not yet copied begin
  for (let start = 0; start < hostMeminfo.length;) {
    const newline = hostMeminfo.indexOf('\n', start);
    const end = newline < 0 ? hostMeminfo.length : newline;
    const colon = hostMeminfo.indexOf(':', start);
    const key = colon > start && colon < end ? hostMeminfo.slice(start, colon) : undefined;
    const kb = key === undefined ? undefined : values.get(key);
    if (key !== undefined && kb !== undefined) {
      rendered += hostMeminfo.slice(run, start) + meminfoLine(key, kb);
      run = end;
    }
    start = end + 1;
  }
  return rendered + hostMeminfo.slice(run);
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
