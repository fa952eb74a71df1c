import { describe, expect, it } from 'vitest';
import { renderSwaps } from '../../../src/views/swaps.js';
import { hostMeminfo } from '../../fixtures/proc-text.js';
import { GiB, MiB, memoryFacts } from '../../fixtures/memory-facts.js';

const HEADER = 'Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n';
const ENABLED = { disableSwap: false };

function virtualLine(sizeKb: number, usedKb: number): string {
  return `none                                    virtual\t\t${sizeKb}\t${usedKb}\t0\n`;
}

describe('renderSwaps', () => {
  const hostWithSwap = hostMeminfo({ swapTotalKb: 64 * 1048576 });

  it('is only lxcfs header (single tabs after Size and Used) when there is no swap', () => {
    expect(renderSwaps(hostMeminfo(), memoryFacts({ swap: { includesRam: false, limitBytes: GiB, usageBytes: 0 } }), ENABLED)).toBe(HEADER);
    expect(renderSwaps(hostWithSwap, memoryFacts(), ENABLED)).toBe(HEADER);
    // no swap can be shown at all (no host swap, or -u): the cgroup's numbers are not even read
    expect(renderSwaps(hostWithSwap, undefined, ENABLED)).toBe(HEADER);
  });

  it('v2: one virtual device sized by memory.swap.max', () => {
    const facts = memoryFacts({ swap: { includesRam: false, limitBytes: GiB, usageBytes: 100 * MiB } });
    expect(renderSwaps(hostWithSwap, facts, ENABLED)).toBe(HEADER + virtualLine(1048576, 102400));
  });

  it('v1: adds the unclamped RAM limit, unlike meminfo which adds the clamped MemTotal', () => {
    // a 32 GiB limit on a 24 GiB host, 1 GiB of swap room above it
    const facts = memoryFacts({
      limitBytes: 32 * GiB,
      usageBytes: 2 * GiB,
      swap: { includesRam: true, limitBytes: 33 * GiB, usageBytes: 2 * GiB + 10 * MiB },
    });
    expect(renderSwaps(hostWithSwap, facts, ENABLED)).toBe(HEADER + virtualLine(1048576 + 32 * 1048576, 10240));
  });

  it('is clamped to the host swap size', () => {
    const facts = memoryFacts({ swap: { includesRam: false, limitBytes: Infinity, usageBytes: 0 } });
    expect(renderSwaps(hostMeminfo({ swapTotalKb: 2048 }), facts, ENABLED)).toBe(HEADER + virtualLine(2048, 0));
  });

  it('shows only the header with disableSwap, or with swappiness 0 and nothing swapped', () => {
    const swap = { includesRam: false, limitBytes: GiB, usageBytes: 0 };
    expect(renderSwaps(hostWithSwap, memoryFacts({ swap }), { disableSwap: true })).toBe(HEADER);
    expect(renderSwaps(hostWithSwap, memoryFacts({ swap, swappiness: 0 }), ENABLED)).toBe(HEADER);
  });
});
