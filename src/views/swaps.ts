import type { MemoryFacts } from '../host/memory-facts.js';
import { clampedDifference, kbFromBytes, meminfoValue } from './format.js';

export interface SwapViewOptions {
  /** lxcfs -u / --disable-swap: show no swap at all. */
  readonly disableSwap: boolean;
}

/** Swap shown to a container, in kB. */
export interface ContainerSwap {
  readonly totalKb: number;
  readonly usedKb: number;
}

/**
 * lxcfs's swap rules (6.0/7.0), shared by /proc/meminfo and /proc/swaps.
 * `v1RamKb` is the RAM part v1 adds to SwapTotal: meminfo passes its MemTotal,
 * /proc/swaps the unclamped RAM limit — lxcfs differs between the two files.
 */
export function containerSwap(
  memory: MemoryFacts,
  v1RamKb: number,
  hostSwapTotalKb: number,
  options: SwapViewOptions,
): ContainerSwap {
  const swap = memory.swap;
  // No per-cgroup swap accounting (or -u): nothing to show.
  if (options.disableSwap || swap === undefined) return { totalKb: 0, usedKb: 0 };

  let totalKb: number;
  let usedKb: number;
  if (swap.includesRam) {
    // v1 memsw counts RAM and swap together: the swap part is what exceeds the RAM limit / RAM usage.
    // An unlimited memsw means unlimited swap (lxcfs computes 0 when RAM is unlimited too).
    const swapOnlyKb =
      swap.limitBytes === Infinity ? Infinity : kbFromBytes(clampedDifference(swap.limitBytes, memory.limitBytes));
    usedKb = swapOnlyKb > 0 ? kbFromBytes(clampedDifference(swap.usageBytes, memory.usageBytes)) : 0;
    // lxcfs reports the RAM+swap total as the v1 swap size.
    totalKb = swapOnlyKb + v1RamKb;
  } else {
    totalKb = kbFromBytes(swap.limitBytes);
    usedKb = kbFromBytes(swap.usageBytes);
  }
  // A container cannot swap more than the host has.
  totalKb = Math.min(totalKb, hostSwapTotalKb);
  // Swappiness 0: the cgroup never swaps out, so only what is already swapped counts.
  if (memory.swappiness === 0) totalKb = usedKb;
  return { totalKb, usedKb };
}

/** lxcfs's header: single tabs between Size, Used and Priority, unlike the kernel's. */
const SWAPS_HEADER = 'Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n';

/** /proc/swaps for a container: lxcfs's header, plus one virtual device when it has swap. `memory`
 * undefined: no swap can be shown (the host has none, or -u), whatever the cgroup's numbers. */
export function renderSwaps(hostMeminfo: string, memory: MemoryFacts | undefined, options: SwapViewOptions): string {
  if (memory === undefined) return SWAPS_HEADER;
  const hostSwapTotalKb = meminfoValue(hostMeminfo, 'SwapTotal') ?? 0;
  const { totalKb, usedKb } = containerSwap(memory, kbFromBytes(memory.limitBytes), hostSwapTotalKb, options);
  if (totalKb <= 0) return SWAPS_HEADER;
  return `${SWAPS_HEADER}none${' '.repeat(36)}virtual\t\t${totalKb}\t${usedKb}\t0\n`;
}
