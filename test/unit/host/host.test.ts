import { afterEach, describe, expect, it } from 'vitest';
import { Host } from '../../../src/host/host.js';
import { renderMeminfo } from '../../../src/views/meminfo.js';
import { renderSwaps } from '../../../src/views/swaps.js';
import { HostTree, unifiedHost, v2MemoryFiles } from '../../fixtures/host-tree.js';
import { GiB, MiB } from '../../fixtures/memory-facts.js';
import { HOST_PID_NAMESPACE, hostMeminfo, unifiedProcCgroup, v2MemoryStat } from '../../fixtures/proc-text.js';

const CONTAINER_NS = 4026532600;

describe('Host on a cgroup v2 fixture: from request pid to rendered files', () => {
  let tree: HostTree;
  afterEach(() => tree.remove());

  function containerHost(): Host {
    tree = unifiedHost();
    tree.write('proc/meminfo', hostMeminfo({ swapTotalKb: 4 * 1048576 }));
    // a container limited to 200 MiB by its parent, its init in init.scope with a tighter limit of its own,
    // and one of its processes moved into a child cgroup limited to 64 MiB
    tree.cgroup('', '/lxc.payload', v2MemoryFiles({ max: 200 * MiB, current: 120 * MiB, swapMax: 1 * GiB, swapCurrent: 0, stat: v2MemoryStat() }));
    tree.cgroup('', '/lxc.payload/c1', v2MemoryFiles({ current: 100 * MiB, swapCurrent: 3 * MiB, stat: v2MemoryStat({ file_mapped: 7 * MiB }) }));
    tree.cgroup('', '/lxc.payload/c1/init.scope', v2MemoryFiles({ max: 32 * MiB, current: 1 * MiB, swapCurrent: 0, stat: v2MemoryStat() }));
    tree.cgroup('', '/lxc.payload/c1/worker', v2MemoryFiles({ max: 64 * MiB, current: 10 * MiB, swapCurrent: 0, stat: v2MemoryStat() }));
    tree
      .addProcess({ pid: 3000, pidNamespace: CONTAINER_NS, nsPids: [3000, 1], cgroup: unifiedProcCgroup('/lxc.payload/c1/init.scope') })
      .addProcess({ pid: 3050, pidNamespace: CONTAINER_NS, nsPids: [3050, 17], ppid: 3000, cgroup: unifiedProcCgroup('/lxc.payload/c1/worker') })
      .addProcess({ pid: 400, pidNamespace: HOST_PID_NAMESPACE, cgroup: unifiedProcCgroup('/lxc.payload/c1/worker') });
    return new Host(tree.roots);
  }

  function meminfoFor(host: Host, requestPid: number): string {
    const caller = host.callers.resolve(requestPid);
    if (!caller.ok) throw new Error(caller.error);
    const facts = host.memoryFacts(caller.value.cgroupPid);
    if (!facts.ok) throw new Error(facts.error);
    return renderMeminfo(host.readProcFile('meminfo')!, facts.value, { disableSwap: false, disableZswap: false });
  }

  it("a container process sees its init's cgroup (init.scope stripped): the parent's 200 MiB, not 64 or 32 MiB", () => {
    const meminfo = meminfoFor(containerHost(), 3050).split('\n');
    expect(meminfo).toContain('MemTotal:         204800 kB');
    expect(meminfo).toContain('MemFree:          102400 kB');
    expect(meminfo).toContain('Mapped:             7168 kB');
    expect(meminfo).toContain('SwapTotal:       1048576 kB');
    expect(meminfo).toContain('SwapFree:        1045504 kB');
  });

  it("a host process in the same cgroup sees that cgroup's own limit", () => {
    expect(meminfoFor(containerHost(), 400).split('\n')).toContain('MemTotal:          65536 kB');
  });

  it('/proc/swaps for the container', () => {
    const host = containerHost();
    const facts = host.memoryFacts(3000);
    expect(facts.ok).toBe(true);
    if (!facts.ok) return;
    expect(renderSwaps(host.readProcFile('meminfo')!, facts.value, { disableSwap: false })).toBe(
      'Filename\t\t\t\tType\t\tSize\tUsed\tPriority\nnone                                    virtual\t\t1048576\t3072\t0\n',
    );
  });
});
