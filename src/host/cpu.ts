// CPU facts of a container's cgroups: its cpuset, its CFS quota, and the CPU time it used. Functions over
// a CgroupLocation branch on the hierarchy's version (v1 files vs cgroup2 files).
//
// Which cgroup accounts CPU time: on v1 and hybrid hosts the cpuacct hierarchy, as in lxcfs. On a pure
// cgroup2 host the process's cgroup2 cgroup, whose cpu.stat exists whatever controllers are enabled. The
// controller-less cgroup2 of a hybrid host (/sys/fs/cgroup/unified) also has a working cpu.stat, but it
// is not used: container runtimes place containers in the v1 controller hierarchies, and where a
// container lands in that cgroup2 tree is systemd's bookkeeping (with the cgroupfs driver every container
// stays in its runtime's cgroup there, and the processes of this host's tests all sit in its root). Its
// cpu.stat would mix containers, or be the whole host's.

import { existsSync } from 'node:fs';
import type { CgroupHierarchy } from './cgroup-layout.js';
import { cgroupOfProcessIn, parentCgroup, type CgroupLocation } from './cgroup-location.js';
import { parseCount, readCgroupFile } from './cgroup-reader.js';
import type { Host } from './host.js';
import { fail, ok, type Result } from './result.js';

/** CPU time of a cgroup per CPU, in nanoseconds (v1 cpuacct). */
export interface PerCpuTime {
  readonly userNs: number;
  readonly systemNs: number;
}

/** cgroup2 cpu.stat, in microseconds. user includes nice. */
export interface CpuStat {
  readonly usageUsec: number;
  readonly userUsec: number;
  readonly systemUsec: number;
  readonly niceUsec: number;
}

/** CPU time used by a container's cgroup, as the host accounts it. */
export type CpuUsage =
  | { readonly version: 1; readonly cgroup: CgroupLocation; readonly perCpu: readonly PerCpuTime[] }
  | { readonly version: 2; readonly cgroup: CgroupLocation; readonly stat: CpuStat };

/**
 * The cpuset of a cpuset cgroup: cpuset.cpus, or (cgroup2) cpuset.cpus.effective when that is empty, in
 * the cgroup or else its nearest ancestor that has one (lxcfs's rule). A v1 cgroup that holds tasks
 * always has a non-empty cpuset.cpus; a cgroup2 cgroup without the cpuset controller has neither file.
 */
export function readCpuset(cgroup: CgroupLocation): Result<string> {
  const names = cgroup.hierarchy.version === 2 ? ['cpuset.cpus', 'cpuset.cpus.effective'] : ['cpuset.cpus'];
  for (let level: CgroupLocation | undefined = cgroup; level !== undefined; level = parentCgroup(level)) {
    for (const name of names) {
      const text = readCgroupFile(level, name)?.trim();
      if (text) return ok(text);
    }
    // The cgroup itself must exist (lxcfs opens it before walking up), or a removed cgroup would show its parent's.
    if (level === cgroup && !existsSync(cgroup.directory)) {
      return fail(`cannot read cgroup ${cgroup.path} (${cgroup.directory}): it was removed`);
    }
  }
  return fail(`no cpuset in cgroup ${cgroup.path} nor in any of its ancestors`);
}

/** quota/period of one cgroup; undefined without a quota ("max", -1) or without the files. */
function quotaOf(cgroup: CgroupLocation): number | undefined {
  let quota: number;
  let period: number;
  if (cgroup.hierarchy.version === 2) {
    const [q, p] = (readCgroupFile(cgroup, 'cpu.max') ?? '').trim().split(/\s+/);
    quota = Number(q);
    period = Number(p);
  } else {
    quota = Number(readCgroupFile(cgroup, 'cpu.cfs_quota_us')?.trim() || NaN);
    period = Number(readCgroupFile(cgroup, 'cpu.cfs_period_us')?.trim() || NaN);
  }
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return quota / period;
}

/**
 * The CFS quota in CPUs (quota/period) that binds a cpu cgroup: the smallest over the cgroup and its
 * ancestors (lxcfs 7.0; 5.0 looked at the cgroup alone). Undefined when none has a quota.
 */
export function readCpuQuota(cgroup: CgroupLocation): number | undefined {
  let minimum: number | undefined;
  for (let level: CgroupLocation | undefined = cgroup; level !== undefined; level = parentCgroup(level)) {
    const ratio = quotaOf(level);
    if (ratio !== undefined && (minimum === undefined || ratio < minimum)) minimum = ratio;
  }
  return minimum;
}

/**
 * Per-CPU time of a v1 cpuacct cgroup: cpuacct.usage_all (`cpu user system` header, then `N user
 * system` lines), or cpuacct.usage_percpu (totals only: lxcfs then counts each total as user AND as
 * system, and so do we).
 */
export function readCpuacctPerCpu(cgroup: CgroupLocation): Result<PerCpuTime[]> {
  const all = readCgroupFile(cgroup, 'cpuacct.usage_all');
  if (all !== undefined) {
    const lines = all.trim().split('\n');
    if (lines[0]?.trim() !== 'cpu user system') return fail(`unexpected header in ${cgroup.directory}/cpuacct.usage_all`);
    const perCpu: PerCpuTime[] = [];
    for (const line of lines.slice(1)) {
      const [cpu, user, system] = line.trim().split(/\s+/).map(Number);
      if (![cpu, user, system].every((n) => Number.isFinite(n)) || cpu !== perCpu.length) {
        return fail(`unexpected line ${JSON.stringify(line)} in ${cgroup.directory}/cpuacct.usage_all`);
      }
      perCpu.push({ userNs: user!, systemNs: system! });
    }
    return ok(perCpu);
  }
  const percpu = readCgroupFile(cgroup, 'cpuacct.usage_percpu');
  if (percpu === undefined) {
    return fail(`cannot read cpuacct.usage_all nor cpuacct.usage_percpu of cgroup ${cgroup.path} (${cgroup.directory})`);
  }
  const totals = percpu.trim().split(/\s+/).filter(Boolean).map(Number);
  if (!totals.every((n) => Number.isFinite(n))) return fail(`unexpected content in ${cgroup.directory}/cpuacct.usage_percpu`);
  return ok(totals.map((total) => ({ userNs: total, systemNs: total })));
}

/** cgroup2 cpu.stat (usage_usec, user_usec, system_usec, nice_usec when the kernel has it). */
export function readCpuStat(cgroup: CgroupLocation): Result<CpuStat> {
  const text = readCgroupFile(cgroup, 'cpu.stat');
  if (text === undefined) return fail(`cannot read cpu.stat of cgroup ${cgroup.path} (${cgroup.directory}): it was removed`);
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.split(' ');
    const count = value === undefined ? undefined : parseCount(value);
    if (key && count !== undefined) values.set(key, count);
  }
  const usageUsec = values.get('usage_usec');
  const userUsec = values.get('user_usec');
  const systemUsec = values.get('system_usec');
  if (usageUsec === undefined || userUsec === undefined || systemUsec === undefined) {
    return fail(`cpu.stat of cgroup ${cgroup.path} lacks usage_usec, user_usec or system_usec`);
  }
  return ok({ usageUsec, userUsec, systemUsec, niceUsec: values.get('nice_usec') ?? 0 });
}

/** Total CPU time of a cgroup in nanoseconds: v1 cpuacct.usage, v2 cpu.stat usage_usec. */
export function readCpuTimeNs(cgroup: CgroupLocation): Result<number> {
  if (cgroup.hierarchy.version === 2) {
    const stat = readCpuStat(cgroup);
    return stat.ok ? ok(stat.value.usageUsec * 1000) : stat;
  }
  const text = readCgroupFile(cgroup, 'cpuacct.usage');
  const value = text === undefined ? undefined : parseCount(text);
  return value === undefined ? fail(`cannot read cpuacct.usage of cgroup ${cgroup.path} (${cgroup.directory})`) : ok(value);
}

/** The hierarchy that accounts CPU time (see the top of this file), if any. */
export function cpuAccountingHierarchy(host: Host): CgroupHierarchy | undefined {
  const cpuacct = host.layout.hierarchies.find((h) => h.version === 1 && h.controllers.includes('cpuacct'));
  if (cpuacct !== undefined) return cpuacct;
  return host.layout.kind === 'unified' ? host.layout.hierarchies.find((h) => h.version === 2) : undefined;
}

/** The cgroup that accounts the CPU time of process `pid`. */
export function cpuAccountingCgroupOf(host: Host, pid: number): Result<CgroupLocation> {
  const hierarchy = cpuAccountingHierarchy(host);
  if (hierarchy === undefined) {
    return fail(`no cgroup hierarchy accounts CPU time on this host (layout: ${host.layout.kind}; no cpuacct, and the cgroup2 tree is not the controllers' one)`);
  }
  return cgroupOfProcessIn(hierarchy, host.roots.procRoot, pid, hierarchy.version === 2 ? 'cgroup2' : 'cpuacct');
}

/** The CPU time used by the cgroup of `pid`: per CPU on v1 (cpuacct), totals on v2 (cpu.stat). */
export function readCpuUsage(host: Host, pid: number): Result<CpuUsage> {
  const cgroup = cpuAccountingCgroupOf(host, pid);
  if (!cgroup.ok) return cgroup;
  if (cgroup.value.hierarchy.version === 2) {
    const stat = readCpuStat(cgroup.value);
    return stat.ok ? ok({ version: 2, cgroup: cgroup.value, stat: stat.value }) : stat;
  }
  const perCpu = readCpuacctPerCpu(cgroup.value);
  return perCpu.ok ? ok({ version: 1, cgroup: cgroup.value, perCpu: perCpu.value }) : perCpu;
}

/** lxcfs's "can use the CPU view": always on pure cgroup2; on v1 only with both cpu and cpuacct hierarchies. */
export function canUseCfsView(host: Host): boolean {
  if (host.layout.kind === 'unified') return true;
  const v1 = (controller: string): boolean => host.layout.hierarchies.some((h) => h.version === 1 && h.controllers.includes(controller));
  return v1('cpu') && v1('cpuacct');
}

/** The cpuset and CFS quota of the cgroups of `pid`, what the CPU views start from. */
export interface CpuLimitFacts {
  readonly cpuset: string;
  readonly quota: number | undefined;
  readonly cfsView: boolean;
}

/**
 * Reads the cpuset (the cpuset cgroup of `pid`; no cpuset hierarchy or cgroup ⇒ failure: the views then
 * serve the host's files, as lxcfs does) and, for the CFS view, the quota at the **cpu** cgroup of `pid`
 * (lxcfs 5.0 read it at the cpuset cgroup's path).
 */
export function readCpuLimits(host: Host, pid: number, enableCfs: boolean): Result<CpuLimitFacts> {
  const cpusetCgroup = host.cgroupOf(pid, 'cpuset');
  if (!cpusetCgroup.ok) return cpusetCgroup;
  const cpuset = readCpuset(cpusetCgroup.value);
  if (!cpuset.ok) return cpuset;
  const cfsView = enableCfs && canUseCfsView(host);
  let quota: number | undefined;
  if (cfsView) {
    const cpuCgroup = host.cgroupOf(pid, 'cpu');
    if (cpuCgroup.ok) quota = readCpuQuota(cpuCgroup.value);
  }
  return ok({ cpuset: cpuset.value, quota, cfsView });
}

/** USER_HZ: the unit of /proc/stat and of start times in /proc/<pid>/stat; 100 on every Linux port that
 * runs containers (sysconf(_SC_CLK_TCK) is not reachable from Node). */
export const CLOCK_TICKS_PER_SECOND = 100;

/** Seconds since boot (CLOCK_BOOTTIME) from the first field of the host's /proc/uptime text. */
export function parseUptimeSeconds(hostUptime: string): number | undefined {
  const value = Number(hostUptime.trim().split(/\s+/)[0]);
  return Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** Whether a cgroup's directory still exists: per-cgroup state of removed cgroups is dropped. */
export function cgroupExists(directory: string): boolean {
  return existsSync(directory);
}
