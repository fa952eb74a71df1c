import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupLocation } from '../../../src/host/cgroup-location.js';
import { parseMemoryStat } from '../../../src/host/cgroup-files.js';
import { Host } from '../../../src/host/host.js';
import {
  HostTree,
  hybridHost,
  unifiedHost,
  v1MemoryFiles,
  v2MemoryFiles,
} from '../../fixtures/host-tree.js';
import { GiB, MiB } from '../../fixtures/memory-facts.js';
import { HOST_PID_NAMESPACE, hybridProcCgroup, unifiedProcCgroup, v1MemoryStat, v2MemoryStat } from '../../fixtures/proc-text.js';

let tree: HostTree | undefined;
afterEach(() => {
  tree?.remove();
  tree = undefined;
});

/** The memory cgroup of fixture process `pid`. */
function memoryCgroupOf(host: Host, pid: number): CgroupLocation {
  const location = host.cgroupOf(pid, 'memory');
  if (!location.ok) throw new Error(location.error);
  return location.value;
}

describe('parseMemoryStat', () => {
  it('keys by the exact name and skips malformed lines', () => {
    const stat = parseMemoryStat('file 100\nfile_mapped 7\ngarbage\nfile_dirty twelve\n slab 3\nanon_thp 4096 extra\nanon_thp2\n\nzswap 0');
    expect([...stat]).toEqual([['file', 100], ['file_mapped', 7], ['zswap', 0]]);
  });

  it('reads values past 2^53 as Number() does, and allows blanks after the value', () => {
    const stat = parseMemoryStat('hierarchical_memory_limit 9223372036854771712\ncache 12 \r\n');
    expect(stat.get('hierarchical_memory_limit')).toBe(Number('9223372036854771712'));
    expect(stat.get('cache')).toBe(12);
  });
});

describe('cgroup v2 back end', () => {
  const CONTAINER = '/machine.slice/c1';

  function v2Tree(options: { swapAccounting?: boolean } = {}): Host {
    tree = unifiedHost(options);
    const swap = (swapMax: number | 'max', swapCurrent: number) => (options.swapAccounting === false ? {} : { swapMax, swapCurrent });
    tree.cgroup('', '/machine.slice', v2MemoryFiles({ max: 200 * MiB, current: 90 * MiB, ...swap(1 * GiB, 0), stat: v2MemoryStat() }));
    tree.cgroup('', CONTAINER, v2MemoryFiles({
      max: 'max',
      current: 80 * MiB,
      ...swap('max', 5 * MiB),
      stat: v2MemoryStat({ file: 40 * MiB, file_mapped: 12 * MiB, file_dirty: 3 * MiB, file_writeback: 1 * MiB, anon: 30 * MiB, anon_thp: 8 * MiB, slab: 6 * MiB, slab_reclaimable: 5 * MiB, slab_unreclaimable: 1 * MiB, zswap: 2 * MiB, zswapped: 7 * MiB }),
    }));
    tree.cgroup('', `${CONTAINER}/small`, v2MemoryFiles({ max: 64 * MiB, current: 1 * MiB, ...swap(0, 0), stat: v2MemoryStat() }));
    tree.addProcess({ pid: 500, pidNamespace: HOST_PID_NAMESPACE, cgroup: unifiedProcCgroup(`${CONTAINER}/init.scope`) });
    tree.addProcess({ pid: 501, pidNamespace: HOST_PID_NAMESPACE, cgroup: unifiedProcCgroup(`${CONTAINER}/small`) });
    tree.addProcess({ pid: 502, pidNamespace: HOST_PID_NAMESPACE, cgroup: unifiedProcCgroup('/') });
    return new Host(tree.roots);
  }

  it('takes the smallest limit of the cgroup and its ancestors; "max" is no limit; the root has none', () => {
    const host = v2Tree();
    const container = memoryCgroupOf(host, 500);
    const reader = host.readerFor(container);
    expect(reader.version).toBe(2);
    expect(container.path).toBe(CONTAINER);
    expect(reader.memoryLimit(container)).toEqual({ ok: true, value: 200 * MiB });
    expect(reader.memoryLimit(memoryCgroupOf(host, 501))).toEqual({ ok: true, value: 64 * MiB });
    expect(reader.memoryLimit(memoryCgroupOf(host, 502))).toEqual({ ok: true, value: Infinity });
    expect(reader.swapLimit(container)).toEqual({ ok: true, value: 1 * GiB });
    expect(reader.swapLimit(memoryCgroupOf(host, 501))).toEqual({ ok: true, value: 0 });
  });

  it('reads usage from memory.current and memory.swap.current', () => {
    const host = v2Tree();
    const container = memoryCgroupOf(host, 500);
    expect(host.readerFor(container).memoryUsage(container)).toEqual({ ok: true, value: 80 * MiB });
    expect(host.readerFor(container).swapUsage(container)).toEqual({ ok: true, value: 5 * MiB });
  });

  it('maps memory.stat counters by exact key, where lxcfs prefix matching took `file` for file_mapped', () => {
    const host = v2Tree();
    const facts = host.memoryFacts(500);
    expect(facts.ok).toBe(true);
    if (!facts.ok) return;
    expect(facts.value.counters).toMatchObject({
      cache: 40 * MiB,
      mapped: 12 * MiB,
      dirty: 3 * MiB,
      writeback: 1 * MiB,
      anonHugePages: 8 * MiB,
      slab: 6 * MiB,
      slabReclaimable: 5 * MiB,
      slabUnreclaimable: 1 * MiB,
      zswap: 2 * MiB,
      zswapped: 7 * MiB,
      shmem: 135168,
      activeFile: 13828096,
    });
    expect(facts.value).toMatchObject({
      limitBytes: 200 * MiB,
      usageBytes: 80 * MiB,
      swap: { includesRam: false, limitBytes: 1 * GiB, usageBytes: 5 * MiB },
      swappiness: undefined,
    });
  });

  it('falls back (a failure, not a throw) for the root cgroup, which has no memory.current', () => {
    const facts = v2Tree().memoryFacts(502);
    expect(facts).toMatchObject({ ok: false, error: expect.stringMatching(/cannot read memory.current of cgroup \//) });
  });

  it('falls back when the cgroup was removed meanwhile', () => {
    const host = v2Tree();
    rmSync(join(tree!.roots.cgroupRoot, CONTAINER, 'small'), { recursive: true });
    expect(host.memoryFacts(501)).toMatchObject({ ok: false, error: expect.stringMatching(/cgroup \/machine.slice\/c1\/small .*removed/) });
  });

  it('reports a malformed limit file instead of guessing', () => {
    const host = v2Tree();
    tree!.write(`sys/fs/cgroup${CONTAINER}/memory.max`, 'lots\n');
    expect(host.memoryFacts(500)).toMatchObject({ ok: false, error: expect.stringMatching(/unexpected content "lots"/) });
  });

  it('detects swap accounting in the cgroup or an ancestor, not at the root', () => {
    expect(v2Tree().memoryAccounting.swap).toBe(true);
    tree!.remove();
    expect(v2Tree({ swapAccounting: false }).memoryAccounting).toEqual({ swap: false, zswap: false });
  });

  it('reads a container\'s swap facts where it has swap accounting even if the startup probe found none', () => {
    // the daemon's cgroup chain has no memory.swap.* files; the container's has (lxcfs shows no swap here)
    tree = unifiedHost({ swapAccounting: false });
    tree.cgroup('', '/machine.slice', v2MemoryFiles({ current: 1 * MiB, swapCurrent: 1 * MiB, stat: '' }));
    tree.cgroup('', CONTAINER, v2MemoryFiles({ current: 1 * MiB, swapCurrent: 1 * MiB, stat: '' }));
    tree.addProcess({ pid: 500, pidNamespace: HOST_PID_NAMESPACE, cgroup: unifiedProcCgroup(CONTAINER) });
    const host = new Host(tree.roots);
    expect(host.memoryAccounting.swap).toBe(false);
    expect(host.memoryFacts(500)).toMatchObject({ ok: true, value: { swap: { includesRam: false, limitBytes: Infinity, usageBytes: 1 * MiB } } });
    expect(host.memoryFacts(500, false)).toMatchObject({ ok: true, value: { swap: undefined } });
  });

  it('a daemon in the root cgroup probes the first-level children', () => {
    tree = unifiedHost({ swapAccounting: false });
    tree.write('proc/self/cgroup', unifiedProcCgroup('/'));
    expect(new Host(tree.roots).memoryAccounting.swap).toBe(false);
    tree.cgroup('', '/user.slice', { 'memory.swap.current': '0\n', 'memory.zswap.current': '0\n' });
    expect(new Host(tree.roots).memoryAccounting).toEqual({ swap: true, zswap: true });
  });
});

describe('cgroup v1 back end', () => {
  const CONTAINER = '/lxt';

  function v1Tree(options: { swapAccounting?: boolean } = {}): Host {
    tree = hybridHost(options);
    const memsw = (limit: number, usage: number) => (options.swapAccounting === false ? {} : { memswLimit: limit, memswUsage: usage });
    tree.cgroup('memory', CONTAINER, v1MemoryFiles({
      limit: 256 * MiB,
      usage: 100 * MiB,
      ...memsw(384 * MiB, 120 * MiB),
      swappiness: 0,
      // the cgroup's own counters differ from the hierarchical total_* ones, which lxcfs uses
      stat: v1MemoryStat({ cache: 40 * MiB, rss: 50 * MiB, rss_huge: 8 * MiB, mapped_file: 12 * MiB, dirty: 3 * MiB, writeback: 1 * MiB, shmem: 2 * MiB }, { cache: 1, rss_huge: 2, mapped_file: 3 }),
    }));
    tree.cgroup('memory', `${CONTAINER}/child`, v1MemoryFiles({ limit: 512 * MiB, usage: 10 * MiB, ...memsw(600 * MiB, 10 * MiB), stat: v1MemoryStat() }));
    tree.addProcess({ pid: 600, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup({ memory: `${CONTAINER}/child` }) });
    tree.addProcess({ pid: 601, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup({ memory: CONTAINER }) });
    tree.addProcess({ pid: 602, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup() });
    return new Host(tree.roots);
  }

  it('takes the smallest RAM and RAM+swap limits over the ancestors; the v1 maximum means no limit', () => {
    const host = v1Tree();
    const child = memoryCgroupOf(host, 600);
    const reader = host.readerFor(child);
    expect(reader.version).toBe(1);
    expect(reader.memoryLimit(child)).toEqual({ ok: true, value: 256 * MiB });
    expect(reader.swapLimit(child)).toEqual({ ok: true, value: 384 * MiB });
    expect(reader.memoryLimit(memoryCgroupOf(host, 602))).toEqual({ ok: true, value: Infinity });
  });

  it('reads usage, swappiness and the total_* memory.stat keys (total_rss_huge, not total_rss)', () => {
    const facts = v1Tree().memoryFacts(601);
    expect(facts).toMatchObject({
      ok: true,
      value: {
        limitBytes: 256 * MiB,
        usageBytes: 100 * MiB,
        swap: { includesRam: true, limitBytes: 384 * MiB, usageBytes: 120 * MiB },
        swappiness: 0,
        zswapAccounting: false,
        counters: { cache: 40 * MiB, anonHugePages: 8 * MiB, mapped: 12 * MiB, dirty: 3 * MiB, writeback: 1 * MiB, shmem: 2 * MiB, slab: 0, zswap: 0 },
      },
    });
  });

  it('without memsw files there is no swap accounting and no swap facts', () => {
    const host = v1Tree({ swapAccounting: false });
    expect(host.memoryAccounting.swap).toBe(false);
    expect(host.memoryFacts(601)).toMatchObject({ ok: true, value: { swap: undefined } });
    const cgroup = memoryCgroupOf(host, 601);
    expect(host.readerFor(cgroup).swapLimit(cgroup)).toMatchObject({ ok: false, error: expect.stringMatching(/memory.memsw.limit_in_bytes/) });
  });

  it('falls back when memory.stat is missing', () => {
    const host = v1Tree();
    rmSync(join(tree!.roots.cgroupRoot, 'memory', CONTAINER, 'memory.stat'));
    expect(host.memoryFacts(601)).toMatchObject({ ok: false, error: expect.stringMatching(/memory.stat/) });
  });
});
