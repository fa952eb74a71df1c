import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import type { CgroupLocation } from '../../../src/host/cgroup-location.js';
import { readCpuacctPerCpu } from '../../../src/host/cgroup-v1.js';
import { readCpuStat } from '../../../src/host/cgroup-v2.js';
import { canUseCfsView } from '../../../src/host/cpu.js';
import { Host } from '../../../src/host/host.js';
import { readerOf } from '../../../src/host/readers.js';
import { cpuacctFiles, DAEMON_PID, HostTree, hybridHost, unifiedHost, v1CpuFiles, v2CpuFiles } from '../../fixtures/host-tree.js';
import { HOST_PID_NAMESPACE, HYBRID_MOUNTINFO, hybridProcCgroup, unifiedProcCgroup } from '../../fixtures/proc-text.js';

let tree: HostTree | undefined;
afterEach(() => {
  tree?.remove();
  tree = undefined;
});

const readCpuset = (cgroup: CgroupLocation) => readerOf(cgroup.hierarchy).cpuset(cgroup);
const readCpuQuota = (cgroup: CgroupLocation) => readerOf(cgroup.hierarchy).cpuQuota(cgroup);
const readCpuTimeNs = (cgroup: CgroupLocation) => readerOf(cgroup.hierarchy).cpuTimeNs(cgroup);

function cgroupOf(host: Host, pid: number, controller: string): CgroupLocation {
  const location = host.cgroupOf(pid, controller);
  if (!location.ok) throw new Error(location.error);
  return location.value;
}

describe('cgroup v1', () => {
  function v1Host(): Host {
    tree = hybridHost();
    tree.cgroup('cpuset', '/', { 'cpuset.cpus': '0-3\n' });
    tree.cgroup('cpuset', '/lxc', { 'cpuset.cpus': '1-2\n' });
    tree.cgroup('cpuset', '/lxc/c1', { 'cpuset.cpus': '\n' });
    tree.cgroup('cpuset', '/lxc/c2', { 'cpuset.cpus': '3\n' });
    tree.cgroup('cpu', '/', v1CpuFiles());
    tree.cgroup('cpu', '/lxc', v1CpuFiles({ quota: 150000, period: 100000 }));
    tree.cgroup('cpu', '/lxc/c1', v1CpuFiles({ quota: 20000, period: 10000 }));
    tree.cgroup('cpu', '/lxc/c2', v1CpuFiles());
    tree.cgroup('cpu', '/lxc/c2/small', v1CpuFiles({ quota: 50000 }));
    tree.cgroup('cpuacct', '/', cpuacctFiles([{ user: 9e9, system: 1e9 }, { user: 9e9, system: 1e9 }]));
    tree.cgroup('cpuacct', '/lxc/c1', cpuacctFiles([{ user: 2_500_000_000, system: 1_000_000_000 }, { user: 0, system: 10_000_000 }]));
    tree.cgroup('cpuacct', '/lxc/c2', cpuacctFiles([{ user: 1e9, system: 0 }, { user: 3e9, system: 0 }], { percpuOnly: true }));
    tree.addProcess({ pid: 500, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup({ cpuset: '/lxc/c1', cpu: '/lxc/c1', cpuacct: '/lxc/c1' }) });
    // cpuset and cpu in different cgroups (Kubernetes layouts)
    tree.addProcess({ pid: 501, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup({ cpuset: '/lxc/c2', cpu: '/lxc/c1', cpuacct: '/lxc/c2' }) });
    tree.addProcess({ pid: 502, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup({ cpuset: '/lxc/c2', cpu: '/lxc/c2/small', cpuacct: '/lxc/gone' }) });
    return new Host(tree.roots);
  }

  it('reads cpuset.cpus, walking up while it is empty', () => {
    const host = v1Host();
    expect(readCpuset(cgroupOf(host, 501, 'cpuset'))).toEqual({ ok: true, value: '3' });
    expect(readCpuset(cgroupOf(host, 500, 'cpuset'))).toEqual({ ok: true, value: '1-2' });
  });

  it('fails for a removed cgroup rather than showing its parent\'s cpuset', () => {
    const host = v1Host();
    const c1 = cgroupOf(host, 500, 'cpuset');
    rmSync(c1.directory, { recursive: true });
    expect(readCpuset(c1)).toMatchObject({ ok: false, error: expect.stringMatching(/removed/) });
  });

  it('takes the smallest quota/period of the cpu cgroup and its ancestors; -1 is none', () => {
    const host = v1Host();
    expect(readCpuQuota(cgroupOf(host, 500, 'cpu'))).toBe(1.5);
    expect(readCpuQuota(cgroupOf(host, 502, 'cpu'))).toBe(0.5);
    tree!.write('sys/fs/cgroup/cpu/lxc/cpu.cfs_quota_us', '-1\n');
    expect(readCpuQuota(cgroupOf(host, 500, 'cpu'))).toBe(2);
    tree!.write('sys/fs/cgroup/cpu/lxc/c1/cpu.cfs_quota_us', '-1\n');
    expect(readCpuQuota(cgroupOf(host, 500, 'cpu'))).toBeUndefined();
  });

  it('reads the quota at the cpu cgroup, not at the cpuset cgroup\'s path (lxcfs 5.0 did)', () => {
    const host = v1Host();
    expect(host.cpuLimits(501, true)).toEqual({ ok: true, value: { cpuset: '3', quota: 1.5, cfsView: true } });
    expect(host.cpuLimits(501, false)).toEqual({ ok: true, value: { cpuset: '3', quota: undefined, cfsView: false } });
    expect(canUseCfsView(host.layout)).toBe(true);
  });

  it('reads per-CPU time from cpuacct.usage_all, or usage_percpu as both user and system', () => {
    const host = v1Host();
    expect(readCpuacctPerCpu(cgroupOf(host, 500, 'cpuacct'))).toEqual({
      ok: true,
      value: [{ userNs: 2_500_000_000, systemNs: 1_000_000_000 }, { userNs: 0, systemNs: 10_000_000 }],
    });
    expect(readCpuacctPerCpu(cgroupOf(host, 501, 'cpuacct'))).toEqual({
      ok: true,
      value: [{ userNs: 1e9, systemNs: 1e9 }, { userNs: 3e9, systemNs: 3e9 }],
    });
    expect(readCpuTimeNs(cgroupOf(host, 500, 'cpuacct'))).toEqual({ ok: true, value: 3_510_000_000 });
  });

  it('accounts CPU time in cpuacct, never in the controller-less cgroup2 of the hybrid host', () => {
    const host = v1Host();
    tree!.cgroup('unified', '/', v2CpuFiles({ userUsec: 5, systemUsec: 5 }));
    expect(host.cpuAccountingCgroupOf(500)).toMatchObject({ ok: true, value: { path: '/lxc/c1', hierarchy: { version: 1 } } });
    expect(host.cpuUsage(500)).toMatchObject({ ok: true, value: { kind: 'per-cpu' } });
    expect(host.cpuUsage(502)).toMatchObject({ ok: false, error: expect.stringMatching(/cpuacct\.usage_all nor cpuacct\.usage_percpu/) });
  });

  it('cannot use the CFS view without a cpuacct hierarchy (lxcfs), so the quota is not even read', () => {
    tree = HostTree.create();
    const mountinfo = HYBRID_MOUNTINFO.split('\n').filter((line) => !line.includes('cpuacct')).join('\n');
    tree.addDaemon({ pid: DAEMON_PID, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup() }, mountinfo);
    tree.cgroup('cpuset', '/', { 'cpuset.cpus': '0-1\n' });
    tree.cgroup('cpu', '/', v1CpuFiles({ quota: 50000 }));
    const host = new Host(tree.roots);
    expect(canUseCfsView(host.layout)).toBe(false);
    expect(host.cpuLimits(DAEMON_PID, true)).toEqual({ ok: true, value: { cpuset: '0-1', quota: undefined, cfsView: false } });
  });
});

describe('cgroup v2', () => {
  function v2Host(): Host {
    tree = unifiedHost();
    tree.cgroup('', '/', { 'cpuset.cpus.effective': '0-7\n' });
    tree.cgroup('', '/machine.slice', { 'cpuset.cpus': '\n', 'cpuset.cpus.effective': '0-5\n', ...v2CpuFiles({ quota: 300000, userUsec: 0, systemUsec: 0 }) });
    tree.cgroup('', '/machine.slice/c1', { 'cpuset.cpus': '\n', 'cpuset.cpus.effective': '2-3\n', ...v2CpuFiles({ quota: 'max', userUsec: 4_000_000, systemUsec: 1_000_000, niceUsec: 500_000 }) });
    // no cpuset controller here: no cpuset files
    tree.cgroup('', '/machine.slice/c1/sub', v2CpuFiles({ quota: 50000, userUsec: 1, systemUsec: 1 }));
    tree.addProcess({ pid: 600, pidNamespace: HOST_PID_NAMESPACE, cgroup: unifiedProcCgroup('/machine.slice/c1/init.scope') });
    tree.addProcess({ pid: 601, pidNamespace: HOST_PID_NAMESPACE, cgroup: unifiedProcCgroup('/machine.slice/c1/sub') });
    return new Host(tree.roots);
  }

  it('reads cpuset.cpus, else cpuset.cpus.effective, else the parent\'s', () => {
    const host = v2Host();
    expect(readCpuset(cgroupOf(host, 600, 'cpuset'))).toEqual({ ok: true, value: '2-3' });
    expect(readCpuset(cgroupOf(host, 601, 'cpuset'))).toEqual({ ok: true, value: '2-3' });
    tree!.write('sys/fs/cgroup/machine.slice/c1/cpuset.cpus', '2\n');
    expect(readCpuset(cgroupOf(host, 600, 'cpuset'))).toEqual({ ok: true, value: '2' });
  });

  it('reads cpu.max over the ancestors; "max" is no quota', () => {
    const host = v2Host();
    expect(readCpuQuota(cgroupOf(host, 600, 'cpu'))).toBe(3);
    expect(readCpuQuota(cgroupOf(host, 601, 'cpu'))).toBe(0.5);
    tree!.write('sys/fs/cgroup/machine.slice/cpu.max', 'max 100000\n');
    expect(readCpuQuota(cgroupOf(host, 600, 'cpu'))).toBeUndefined();
    expect(canUseCfsView(host.layout)).toBe(true);
  });

  it('reads cpu.stat of the cgroup2 cgroup, whatever controllers it has', () => {
    const host = v2Host();
    expect(readCpuStat(cgroupOf(host, 600, 'cpu'))).toEqual({ ok: true, value: { usageUsec: 5_000_000, userUsec: 4_000_000, systemUsec: 1_000_000, niceUsec: 500_000 } });
    expect(host.cpuUsage(600)).toMatchObject({ ok: true, value: { kind: 'totals', cgroup: { path: '/machine.slice/c1' } } });
    expect(readCpuTimeNs(cgroupOf(host, 600, 'cpu'))).toEqual({ ok: true, value: 5e9 });
  });
});
