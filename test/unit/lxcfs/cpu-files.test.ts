// The CPU views wired to fixture hosts: from a request pid to the rendered files, with the per-cgroup
// /proc/stat state shared by two view instances, as by two reader threads.

import { rmSync } from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { bindFiles, type Views } from '../../../src/lxcfs/bind.js';
import { allocateCpuState, type CpuStateMemory } from '../../../src/lxcfs/cpu-state.js';
import type { ServedPath } from '../../../src/lxcfs/paths.js';
import { SharedTable } from '../../../src/lxcfs/shared-table.js';
import { cpuacctFiles, HostTree, hostUptime, hybridHost, unifiedHost, v1CpuFiles, v2CpuFiles } from '../../fixtures/host-tree.js';
import { HOST_PID_NAMESPACE, hostProcStat, hybridProcCgroup, unifiedProcCgroup, x86Cpuinfo, type StatColumns } from '../../fixtures/proc-text.js';

const CONTAINER_NS = 4026532700;
const INIT = 3000;
const MEMBER = 3001;
const silent = pino({ level: 'silent' });

let tree: HostTree | undefined;
afterEach(() => {
  tree?.remove();
  tree = undefined;
});

/** Host /proc/stat after `seconds` of uptime on `cpus` CPUs, half busy. */
function hostStatAt(seconds: number, cpus = 2): string {
  const columns: StatColumns = [Math.round(50 * seconds), 0, 0, Math.round(50 * seconds), 0, 0, 0, 0, 0, 0];
  return hostProcStat(Array.from({ length: cpus }, () => columns));
}

interface Reader {
  read(file: ServedPath, pid: number): string | undefined;
}

/** A view instance over the fixture, as one reader thread has it. */
function reader(options: { enableCfs?: boolean; cpuState: CpuStateMemory }): Reader {
  const views: Views = bindFiles(
    { procRoot: tree!.roots.procRoot, cgroupRoot: tree!.roots.cgroupRoot, disableSwap: false, disableZswap: false, enableCfs: options.enableCfs ?? false, cpuState: options.cpuState },
    silent,
  );
  const hostFile: Partial<Record<ServedPath, string>> = { 'sys/devices/system/cpu/online': 'sys/online' };
  return {
    read(file, pid) {
      const content = tree!.read(hostFile[file] ?? file);
      return views[file]!({ pid, uid: 0, gid: 0 }, () => content)?.toString('latin1');
    },
  };
}

function cpuTotals(stat: string): { busy: number; idle: number; lines: string[] } {
  const lines = stat.split('\n').filter((line) => line.startsWith('cpu'));
  const [user, nice, system, idle] = lines[0]!.split(/\s+/).slice(1).map(Number) as [number, number, number, number];
  return { busy: user + nice + system, idle, lines: lines.map((line) => line.split(' ')[0]!) };
}

describe('cgroup2 container: a 2-CPU cpuset, a quota of 0.5 CPU', () => {
  function setUp(): void {
    tree = unifiedHost();
    tree.write('proc/stat', hostStatAt(1000)).write('proc/uptime', hostUptime(1000)).write('proc/cpuinfo', x86Cpuinfo(2)).write('sys/online', '0-1\n');
    tree.cgroup('', '/', { 'cpuset.cpus.effective': '0-1\n' });
    tree.cgroup('', '/c1', { 'cpuset.cpus.effective': '0-1\n', ...v2CpuFiles({ quota: 50000, userUsec: 2_000_000, systemUsec: 500_000 }) });
    // The container started 10 s ago (start times are in ticks since boot).
    tree.addProcess({ pid: INIT, pidNamespace: CONTAINER_NS, nsPids: [INIT, 1], startTime: 99000, cgroup: unifiedProcCgroup('/c1/init.scope') });
    tree.addProcess({ pid: MEMBER, pidNamespace: CONTAINER_NS, nsPids: [MEMBER, 7], cgroup: unifiedProcCgroup('/c1') });
  }

  /** The container ran `busySeconds` more (4/5 user) and `seconds` passed. */
  function advance(seconds: number, busySeconds: number, uptime: number): void {
    tree!.cgroup('', '/c1', v2CpuFiles({ quota: 50000, userUsec: 2_000_000 + busySeconds * 800_000, systemUsec: 500_000 + busySeconds * 200_000 }));
    tree!.write('proc/uptime', hostUptime(uptime)).write('proc/stat', hostStatAt(uptime));
    void seconds;
  }

  it('shows 1 CPU with --enable-cfs everywhere, and 50 % busy for a container using its whole quota, across threads', () => {
    setUp();
    const cpuState = allocateCpuState(4);
    const [a, b] = [reader({ enableCfs: true, cpuState }), reader({ enableCfs: true, cpuState })];
    expect(a.read('sys/devices/system/cpu/online', MEMBER)).toBe('0\n');
    expect(a.read('proc/cpuinfo', MEMBER)!.match(/^processor.*$/gm)).toEqual(['processor\t: 0']);
    const first = cpuTotals(a.read('proc/stat', MEMBER)!);
    expect(first.lines).toEqual(['cpu', 'cpu0']);
    // First sight: cpu.stat's totals (2.5 s) and idle = 1 CPU × 10 s − busy.
    expect(first).toMatchObject({ busy: 250, idle: 750 });
    advance(3, 1.5, 1003);
    const second = cpuTotals(b.read('proc/stat', INIT)!);
    expect((second.busy - first.busy) / (second.busy - first.busy + second.idle - first.idle)).toBeCloseTo(0.5, 2);
    expect(b.read('proc/stat', MEMBER)).toContain('\nintr ');
  });

  it('shows the 2 CPUs of the cpuset without --enable-cfs: the same usage is 25 % of them', () => {
    setUp();
    const cpuState = allocateCpuState(4);
    const a = reader({ cpuState });
    expect(a.read('sys/devices/system/cpu/online', MEMBER)).toBe('0-1\n');
    const first = cpuTotals(a.read('proc/stat', MEMBER)!);
    expect(first.lines).toEqual(['cpu', 'cpu0', 'cpu1']);
    expect(first).toMatchObject({ busy: 250, idle: 1750 });
    advance(3, 1.5, 1003);
    const second = cpuTotals(reader({ cpuState }).read('proc/stat', MEMBER)!);
    expect((second.busy - first.busy) / (second.busy - first.busy + second.idle - first.idle)).toBeCloseTo(0.25, 2);
  });

  it('shows uptime as the age of the init and idle = age − cpu.stat usage', () => {
    setUp();
    expect(reader({ cpuState: allocateCpuState(4) }).read('proc/uptime', MEMBER)).toBe('10.00 7.50\n');
  });

  it('drops the state of removed cgroups, at most every 10 s', () => {
    setUp();
    const cpuState = allocateCpuState(4);
    const table = new SharedTable(cpuState.table);
    const a = reader({ enableCfs: true, cpuState });
    a.read('proc/stat', MEMBER);
    tree!.cgroup('', '/c2', { 'cpuset.cpus.effective': '1\n', ...v2CpuFiles({ userUsec: 1, systemUsec: 1 }) });
    tree!.addProcess({ pid: 4000, pidNamespace: HOST_PID_NAMESPACE, cgroup: unifiedProcCgroup('/c2') });
    a.read('proc/stat', 4000);
    expect(table.size).toBe(3); // two cgroups and the sweep clock
    rmSync(`${tree!.roots.cgroupRoot}/c2`, { recursive: true });
    advance(5, 0, 1005);
    a.read('proc/stat', MEMBER);
    expect(table.size).toBe(3);
    advance(11, 0, 1011);
    a.read('proc/stat', MEMBER);
    expect(table.size).toBe(2);
  });

  it('serves the host file to readers it cannot place', () => {
    setUp();
    const a = reader({ cpuState: allocateCpuState(4) });
    for (const file of ['proc/stat', 'proc/cpuinfo', 'proc/uptime', 'sys/devices/system/cpu/online'] as const) expect(a.read(file, 0), file).toBeUndefined();
    tree!.removeProcess(MEMBER);
    expect(a.read('proc/stat', MEMBER)).toBeUndefined();
  });
});

describe('cgroup v1 container: cpuset {1} of 2 CPUs, quota 0.5 at its cpu cgroup', () => {
  function setUp(): void {
    tree = hybridHost();
    tree.write('proc/stat', hostStatAt(1000)).write('proc/uptime', hostUptime(1000)).write('proc/cpuinfo', x86Cpuinfo(2)).write('sys/online', '0-1\n');
    tree.cgroup('cpuset', '/', { 'cpuset.cpus': '0-1\n' }).cgroup('cpuset', '/c1', { 'cpuset.cpus': '1\n' });
    tree.cgroup('cpu', '/', v1CpuFiles()).cgroup('cpu', '/c1', v1CpuFiles({ quota: 50000 }));
    tree.cgroup('cpuacct', '/', cpuacctFiles([{ user: 3e11, system: 1e11 }, { user: 3e11, system: 1e11 }]));
    tree.cgroup('cpuacct', '/c1', cpuacctFiles([{ user: 0, system: 0 }, { user: 2e9, system: 1e9 }]));
    const cgroup = hybridProcCgroup({ cpuset: '/c1', cpu: '/c1', cpuacct: '/c1' });
    tree.addProcess({ pid: INIT, pidNamespace: CONTAINER_NS, nsPids: [INIT, 1], startTime: 99000, cgroup });
    tree.addProcess({ pid: MEMBER, pidNamespace: CONTAINER_NS, nsPids: [MEMBER, 2], cgroup });
  }

  it('shows the cpuset under its physical number without --enable-cfs (lxcfs)', () => {
    setUp();
    const a = reader({ cpuState: allocateCpuState(4) });
    expect(a.read('sys/devices/system/cpu/online', MEMBER)).toBe('1\n');
    expect(a.read('proc/cpuinfo', MEMBER)).toBe(x86Cpuinfo(2).split('\n\n')[1]!.replace('processor\t: 1', 'processor\t: 0') + '\n\n');
    // cpu1: host busy 50000 ticks, idle 50000; the cgroup used 300 ticks
    expect(a.read('proc/stat', MEMBER)!.split('\n').slice(0, 2)).toEqual(['cpu  200 0 100 99700 0 0 0 0 0 0', 'cpu1 200 0 100 99700 0 0 0 0 0 0']);
    expect(a.read('proc/uptime', MEMBER)).toBe('10.00 7.00\n');
  });

  it('starts the CPU view at zero under --enable-cfs, as cpu0', () => {
    setUp();
    const a = reader({ enableCfs: true, cpuState: allocateCpuState(4) });
    expect(a.read('sys/devices/system/cpu/online', MEMBER)).toBe('0\n');
    expect(a.read('proc/stat', MEMBER)!.split('\n').slice(0, 2)).toEqual(['cpu  0 0 0 0 0 0 0 0 0 0', 'cpu0 0 0 0 0 0 0 0 0 0 0']);
  });

  it('continues the CPU view on another thread: the state is shared, so the second read shows the interval', () => {
    setUp();
    const cpuState = allocateCpuState(4);
    expect(reader({ enableCfs: true, cpuState }).read('proc/stat', MEMBER)!.split('\n')[0]).toBe('cpu  0 0 0 0 0 0 0 0 0 0');
    // One second later the container had used 0.5 s on CPU 1 (its quota), and the host's CPUs 100 ticks each.
    tree!.cgroup('cpuacct', '/c1', cpuacctFiles([{ user: 0, system: 0 }, { user: 2.5e9, system: 1e9 }]));
    tree!.write('proc/stat', hostStatAt(1001));
    expect(reader({ enableCfs: true, cpuState }).read('proc/stat', MEMBER)!.split('\n')[0]).toBe('cpu  50 0 0 50 0 0 0 0 0 0');
  });

  it('falls back to the host\'s lines when the cpuacct cgroup is gone, and to the host file for the host\'s init', () => {
    setUp();
    rmSync(`${tree!.roots.cgroupRoot}/cpuacct/c1`, { recursive: true });
    const a = reader({ enableCfs: true, cpuState: allocateCpuState(4) });
    expect(a.read('proc/stat', MEMBER)!.split('\n').slice(0, 2)).toEqual(['cpu  50000 0 0 50000 0 0 0 0 0 0', 'cpu0 50000 0 0 50000 0 0 0 0 0 0']);
    tree!.addProcess({ pid: 1, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup() });
    expect(a.read('proc/stat', 1)).toBeUndefined();
  });
});
