import { describe, expect, it } from 'vitest';
import { renderMeminfo, type MeminfoOptions } from '../../../src/views/meminfo.js';
import { hostMeminfo } from '../../fixtures/proc-text.js';
import { GiB, MiB, memoryFacts } from '../../fixtures/memory-facts.js';

const DEFAULTS: MeminfoOptions = { disableSwap: false, disableZswap: false };
const HOST_MEM_TOTAL_KB = 24684092;

/** The value column of `key`'s line, in kB. */
function valueOf(meminfo: string, key: string): number {
  const line = meminfo.split('\n').find((l) => l.startsWith(key + ':'));
  if (line === undefined) throw new Error(`no ${key} line in:\n${meminfo}`);
  return Number(line.slice(key.length + 1).trim().split(/\s+/)[0]);
}

describe('renderMeminfo', () => {
  const container = memoryFacts({
    limitBytes: 256 * MiB,
    usageBytes: 100 * MiB,
    counters: {
      cache: 40 * MiB,
      shmem: 2 * MiB,
      mapped: 12 * MiB,
      dirty: 3 * MiB,
      writeback: 1 * MiB,
      activeAnon: 30 * MiB,
      inactiveAnon: 20 * MiB,
      activeFile: 25 * MiB,
      inactiveFile: 15 * MiB + 1000,
      unevictable: 4 * MiB,
      anonHugePages: 8 * MiB,
      slab: 6 * MiB,
      slabReclaimable: 5 * MiB,
      slabUnreclaimable: 1 * MiB,
    },
  });
  const rendered = renderMeminfo(hostMeminfo(), container, DEFAULTS);

  it('prints replaced lines in lxcfs format: key and colon in 16 columns, value in 8, then " kB"', () => {
    const lines = rendered.split('\n');
    expect(lines).toContain('MemTotal:         262144 kB');
    expect(lines).toContain('Active(anon):      30720 kB');
    expect(lines).toContain('Buffers:' + ' '.repeat(15) + '0 kB');
  });

  it('computes every replaced field from the cgroup', () => {
    const expected: Record<string, number> = {
      MemTotal: 262144,
      MemFree: 262144 - 102400,
      // free + active_file + inactive_file + slab_reclaimable, bytes summed before the division
      MemAvailable: 262144 - 102400 + Math.floor((25 * MiB + 15 * MiB + 1000 + 5 * MiB) / 1024),
      Buffers: 0,
      Cached: 40960,
      SwapCached: 0,
      Active: 30720 + 25600,
      Inactive: Math.floor((20 * MiB + 15 * MiB + 1000) / 1024),
      'Active(anon)': 30720,
      'Inactive(anon)': 20480,
      'Active(file)': 25600,
      'Inactive(file)': Math.floor((15 * MiB + 1000) / 1024),
      Unevictable: 4096,
      SwapTotal: 0,
      SwapFree: 0,
      Zswap: 0,
      Zswapped: 0,
      Dirty: 3072,
      Writeback: 1024,
      AnonPages: 51200 - 2048,
      Mapped: 12288,
      Shmem: 2048,
      Slab: 6144,
      SReclaimable: 5120,
      SUnreclaim: 1024,
      AnonHugePages: 8192,
      ShmemHugePages: 0,
      ShmemPmdMapped: 0,
    };
    for (const [key, kb] of Object.entries(expected)) expect({ key, kb: valueOf(rendered, key) }).toEqual({ key, kb });
  });

  it('passes every other host line through unchanged and keeps the order', () => {
    const host = hostMeminfo();
    const hostLines = host.split('\n');
    const renderedLines = rendered.split('\n');
    expect(renderedLines.map((l) => l.split(':')[0])).toEqual(hostLines.map((l) => l.split(':')[0]));
    for (const key of ['Mlocked', 'KReclaimable', 'KernelStack', 'CommitLimit', 'VmallocTotal', 'HugePages_Total', 'Hugepagesize', 'DirectMap1G']) {
      const hostLine = hostLines.find((l) => l.startsWith(key + ':'));
      expect(renderedLines).toContain(hostLine);
    }
  });

  it('shows the host MemTotal when there is no limit, the limit is above the host, or the limit is 0', () => {
    for (const limitBytes of [Infinity, 64 * GiB, 0]) {
      const meminfo = renderMeminfo(hostMeminfo(), memoryFacts({ limitBytes, usageBytes: 1 * GiB }), DEFAULTS);
      expect(valueOf(meminfo, 'MemTotal')).toBe(HOST_MEM_TOTAL_KB);
      expect(valueOf(meminfo, 'MemFree')).toBe(HOST_MEM_TOTAL_KB - 1048576);
    }
  });

  it('clamps MemFree and AnonPages at 0 instead of wrapping', () => {
    // usage above a lowered memory.max, and more shmem than anon pages
    const meminfo = renderMeminfo(
      hostMeminfo(),
      memoryFacts({ limitBytes: 64 * MiB, usageBytes: 80 * MiB, counters: { activeFile: 1 * MiB, shmem: 9 * MiB, activeAnon: 4 * MiB } }),
      DEFAULTS,
    );
    expect(valueOf(meminfo, 'MemFree')).toBe(0);
    expect(valueOf(meminfo, 'MemAvailable')).toBe(1024);
    expect(valueOf(meminfo, 'AnonPages')).toBe(0);
  });

  it('leaves the host text alone when it has no MemTotal to clamp against', () => {
    const broken = 'garbage\nMemFree: 12 kB\n';
    expect(renderMeminfo(broken, container, DEFAULTS)).toBe(broken);
  });

  describe('swap', () => {
    const hostWithSwap = hostMeminfo({ swapTotalKb: 8 * 1048576 });

    it('v2: memory.swap.max and memory.swap.current', () => {
      const facts = memoryFacts({ limitBytes: 256 * MiB, swap: { includesRam: false, limitBytes: 1 * GiB, usageBytes: 100 * MiB } });
      const meminfo = renderMeminfo(hostWithSwap, facts, DEFAULTS);
      expect(valueOf(meminfo, 'SwapTotal')).toBe(1048576);
      expect(valueOf(meminfo, 'SwapFree')).toBe(1048576 - 102400);
    });

    it('v2: an unlimited swap.max shows the host swap', () => {
      const facts = memoryFacts({ swap: { includesRam: false, limitBytes: Infinity, usageBytes: 0 } });
      expect(valueOf(renderMeminfo(hostWithSwap, facts, DEFAULTS), 'SwapTotal')).toBe(8 * 1048576);
    });

    it('v1: memsw counts RAM+swap; SwapTotal is the swap part plus MemTotal, SwapFree excludes swap in use', () => {
      const facts = memoryFacts({
        limitBytes: 256 * MiB,
        usageBytes: 200 * MiB,
        swap: { includesRam: true, limitBytes: 384 * MiB, usageBytes: 250 * MiB },
      });
      const meminfo = renderMeminfo(hostWithSwap, facts, DEFAULTS);
      expect(valueOf(meminfo, 'SwapTotal')).toBe(131072 + 262144);
      expect(valueOf(meminfo, 'SwapFree')).toBe(131072 + 262144 - 51200);
    });

    it('v1: no swap room above the RAM limit means no swap in use is counted', () => {
      const facts = memoryFacts({
        limitBytes: 256 * MiB,
        usageBytes: 200 * MiB,
        swap: { includesRam: true, limitBytes: 256 * MiB, usageBytes: 250 * MiB },
      });
      const meminfo = renderMeminfo(hostWithSwap, facts, DEFAULTS);
      expect(valueOf(meminfo, 'SwapTotal')).toBe(262144);
      expect(valueOf(meminfo, 'SwapFree')).toBe(262144);
    });

    it('is clamped to the host swap size', () => {
      const facts = memoryFacts({ swap: { includesRam: false, limitBytes: 1 * GiB, usageBytes: 0 } });
      const meminfo = renderMeminfo(hostMeminfo({ swapTotalKb: 100000 }), facts, DEFAULTS);
      expect(valueOf(meminfo, 'SwapTotal')).toBe(100000);
      expect(valueOf(renderMeminfo(hostMeminfo(), facts, DEFAULTS), 'SwapTotal')).toBe(0);
    });

    it('swappiness 0 leaves no free swap', () => {
      const facts = memoryFacts({ swappiness: 0, swap: { includesRam: false, limitBytes: 1 * GiB, usageBytes: 10 * MiB } });
      const meminfo = renderMeminfo(hostWithSwap, facts, DEFAULTS);
      expect(valueOf(meminfo, 'SwapTotal')).toBe(10240);
      expect(valueOf(meminfo, 'SwapFree')).toBe(0);
    });

    it('shows none with disableSwap (-u) or without swap accounting', () => {
      const swap = { includesRam: false, limitBytes: 1 * GiB, usageBytes: 0 };
      const disabled = renderMeminfo(hostWithSwap, memoryFacts({ swap }), { ...DEFAULTS, disableSwap: true });
      const unaccounted = renderMeminfo(hostWithSwap, memoryFacts({ swap: undefined }), DEFAULTS);
      for (const meminfo of [disabled, unaccounted]) {
        expect(valueOf(meminfo, 'SwapTotal')).toBe(0);
        expect(valueOf(meminfo, 'SwapFree')).toBe(0);
      }
    });

    it('SwapFree is clamped at 0 when usage exceeds the size', () => {
      const facts = memoryFacts({ swap: { includesRam: false, limitBytes: 10 * MiB, usageBytes: 20 * MiB } });
      expect(valueOf(renderMeminfo(hostWithSwap, facts, DEFAULTS), 'SwapFree')).toBe(0);
    });
  });

  describe('zswap', () => {
    const facts = memoryFacts({ zswapAccounting: true, counters: { zswap: 3 * MiB, zswapped: 9 * MiB } });

    it('shows the cgroup zswap counters where zswap is accounted', () => {
      const meminfo = renderMeminfo(hostMeminfo(), facts, DEFAULTS);
      expect(meminfo.split('\n')).toContain('Zswap:              3072 kB');
      expect(valueOf(meminfo, 'Zswapped')).toBe(9216);
    });

    it('shows 0 with disableZswap or without zswap accounting', () => {
      for (const meminfo of [
        renderMeminfo(hostMeminfo(), facts, { ...DEFAULTS, disableZswap: true }),
        renderMeminfo(hostMeminfo(), { ...facts, zswapAccounting: false }, DEFAULTS),
      ]) {
        expect(valueOf(meminfo, 'Zswap')).toBe(0);
        expect(valueOf(meminfo, 'Zswapped')).toBe(0);
      }
    });
  });
});
