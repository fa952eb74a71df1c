// CPU facts that depend on the host's layout rather than on one cgroup (the per-cgroup reads are the
// CgroupReaders'): which hierarchy accounts CPU time, whether lxcfs's CPU view can be used, time units.
//
// Which cgroup accounts CPU time: on v1 and hybrid hosts the cpuacct hierarchy, as in lxcfs. On a pure
// cgroup2 host the process's cgroup2 cgroup, whose cpu.stat exists whatever controllers are enabled. The
// controller-less cgroup2 of a hybrid host (/sys/fs/cgroup/unified) also has a working cpu.stat, but it
// is not used: container runtimes place containers in the v1 controller hierarchies, and where a
// container lands in that cgroup2 tree is systemd's bookkeeping (with the cgroupfs driver every container
// stays in its runtime's cgroup there, and the processes of this host's tests all sit in its root). Its
// cpu.stat would mix containers, or be the whole host's.

import { existsSync } from 'node:fs';
import type { CgroupHierarchy, CgroupLayout } from './cgroup-layout.js';

/** The hierarchy that accounts CPU time (see the top of this file), if any. */
export function cpuAccountingHierarchy(layout: CgroupLayout): CgroupHierarchy | undefined {
  const cpuacct = layout.hierarchies.find((h) => h.version === 1 && h.controllers.includes('cpuacct'));
  if (cpuacct !== undefined) return cpuacct;
  return layout.kind === 'unified' ? layout.hierarchies.find((h) => h.version === 2) : undefined;
}

/** lxcfs's "can use the CPU view": always on pure cgroup2; on v1 only with both cpu and cpuacct hierarchies. */
export function canUseCfsView(layout: CgroupLayout): boolean {
  if (layout.kind === 'unified') return true;
  const v1 = (controller: string): boolean =>
    layout.hierarchies.some((h) => h.version === 1 && h.controllers.includes(controller));
  return v1('cpu') && v1('cpuacct');
}

/** The cpuset and CFS quota of the cgroups of a process, what the CPU views start from. */
export interface CpuLimitFacts {
  readonly cpuset: string;
  readonly quota: number | undefined;
  readonly cfsView: boolean;
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
