// CPU lists as the kernel writes them (cpuset.cpus, /sys/devices/system/cpu/online: "0-3,5"), and the
// set of CPUs a container is shown: its cpuset, cut down to the CFS quota with --enable-cfs.

/**
 * The CPUs of a list such as `0-3,5` or `1,4-5\n`, sorted, without duplicates. Empty text (or just a
 * newline) is the empty set. Like lxcfs, a malformed item is skipped rather than failing the whole
 * list; a reversed range (`5-3`) contains nothing.
 */
export function parseCpuList(text: string): number[] {
  const cpus = new Set<number>();
  for (const item of text.trim().split(',')) {
    const match = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(item);
    if (!match) continue;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    for (let cpu = first; cpu <= last; cpu++) cpus.add(cpu);
  }
  return [...cpus].sort((a, b) => a - b);
}

/** The kernel's compact form of a CPU list: `0-3,5`. */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** What the CPU views need to know about a container's CPUs. */
export interface CpuLimits {
  /** Its cpuset as the kernel wrote it (trimmed), e.g. `0-3,5`. */
  readonly cpuset: string;
  /** The smallest quota/period ratio over its cpu cgroup and their ancestors; undefined without a quota. */
  readonly quota: number | undefined;
  /** Whether the CFS view applies: --enable-cfs, and a host where lxcfs can use it (v2, or v1 with both
   * the cpu and the cpuacct hierarchies). */
  readonly cfsView: boolean;
}

/** The CPUs shown to a container. */
export interface VisibleCpus {
  /** The container's cpuset, physical CPU numbers, ascending. */
  readonly cpuset: readonly number[];
  /**
   * How many CPUs it is shown: the cpuset size, or with the CFS view lxcfs's max_cpu_count (the ceiling
   * of the quota, capped by the host's online CPUs and by the cpuset size). Views that list CPUs show the
   * first `count` CPUs of the cpuset.
   */
  readonly count: number;
  /** With the CFS view the CPUs are renumbered 0..count-1 everywhere (online, stat); else physical numbers. */
  readonly cfsView: boolean;
  /** The cpuset text, for the online file outside the CFS view. */
  readonly cpusetText: string;
}

/**
 * lxcfs's visible CPU count (max_cpu_count, 7.0 rules): ceil(quota) when there is a quota, at most the
 * host's online CPUs and at most the cpuset size; the cpuset size when there is no quota.
 */
export function visibleCpuCount(cpusetSize: number, quota: number | undefined, hostOnlineCpus: number): number {
  let count = quota !== undefined && quota > 0 ? Math.ceil(quota) : 0;
  if (count === 0) return cpusetSize;
  count = Math.min(count, hostOnlineCpus);
  if (cpusetSize > 0 && cpusetSize < count) count = cpusetSize;
  return count;
}

/** `cpusetOf` parses the cpuset text (a caller may bring one that keeps its results). */
export function visibleCpus(
  limits: CpuLimits,
  hostOnlineCpus: number,
  cpusetOf: (text: string) => readonly number[] = parseCpuList,
): VisibleCpus {
  const cpuset = cpusetOf(limits.cpuset);
  const count = limits.cfsView ? visibleCpuCount(cpuset.length, limits.quota, hostOnlineCpus) : cpuset.length;
  return { cpuset, count, cfsView: limits.cfsView, cpusetText: limits.cpuset.trim() };
}

/** How many CPUs the host has online: its /proc/stat has one `cpuN` line per online CPU (glibc's
 * get_nprocs reads the same fact from /sys/devices/system/cpu/online). */
export function countHostCpus(hostStat: string): number {
  let count = 0;
  for (const line of hostStat.split('\n')) if (/^cpu\d/.test(line)) count++;
  return count;
}
