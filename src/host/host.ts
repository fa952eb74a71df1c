import { join } from 'node:path';
import { CallerResolver } from './caller.js';
import { detectCgroupLayout, findHierarchy, type CgroupHierarchy, type CgroupLayout } from './cgroup-layout.js';
import { cgroupOfProcess, cgroupOfProcessIn, isHierarchyTop, type CgroupLocation } from './cgroup-location.js';
import type { CgroupReader, CpuUsage } from './cgroup-reader.js';
import { canUseCfsView, cpuAccountingHierarchy, type CpuLimitFacts } from './cpu.js';
import { readRenderedFile } from './files.js';
import type { CgroupIo } from './io.js';
import { readMemoryFacts, type MemoryAccounting, type MemoryFacts } from './memory-facts.js';
import { cgroupPressureFile, readCgroupPressure, type PressureResource } from './pressure.js';
import type { ProcessId } from './process.js';
import { readerOf } from './readers.js';
import { REAL_HOST_ROOTS, type HostRoots } from './roots.js';
import { fail, ok, type Result } from './result.js';
import { loadavgHierarchy } from './tasks.js';

/**
 * Host facts for one daemon: cgroup layout, caller resolution and cgroup
 * reads, all synchronous. Construct once per thread (startup probes run here);
 * each call then does only the reads it needs. The facts of a process's
 * cgroups take its pid first (a Caller's cgroupPid, for a container).
 */
export class Host {
  readonly roots: HostRoots;
  readonly layout: CgroupLayout;
  readonly callers: CallerResolver;
  /** Probed on the daemon's own memory cgroup, like lxcfs. */
  readonly memoryAccounting: MemoryAccounting;

  constructor(roots: Partial<HostRoots> = {}) {
    this.roots = { ...REAL_HOST_ROOTS, ...roots };
    this.layout = detectCgroupLayout(this.roots);
    this.callers = new CallerResolver(this.roots.procRoot);
    this.memoryAccounting = this.probeMemoryAccounting();
  }

  /** The cgroup of process `pid` for `controller` (`/init.scope` stripped). */
  cgroupOf(pid: ProcessId, controller: string): Result<CgroupLocation> {
    return cgroupOfProcess(this.layout, this.roots.procRoot, pid, controller);
  }

  /** The back end that reads `cgroup`'s hierarchy. */
  readerFor(cgroup: CgroupLocation): CgroupReader {
    return readerOf(cgroup.hierarchy);
  }

  /** The back end of the hierarchy that accounts CPU time (cpu.ts), if any. */
  get cpuAccounting(): CgroupReader | undefined {
    const hierarchy = cpuAccountingHierarchy(this.layout);
    return hierarchy === undefined ? undefined : readerOf(hierarchy);
  }

  /** Memory facts of the memory cgroup of `cgroupPid` (a Caller's cgroupPid). `swapShown` false skips
   * the swap files: with no host swap (or -u) every swap line is 0 whatever the cgroup says. */
  memoryFacts(cgroupPid: ProcessId, swapShown = true): Result<MemoryFacts> {
    const cgroup = this.cgroupOf(cgroupPid, 'memory');
    if (!cgroup.ok) return cgroup;
    const reader = this.readerFor(cgroup.value);
    // The startup probe looks where lxcfs does (our own cgroup, or the root's first children); a
    // cgroup made later can have swap accounting all the same, so ask it too.
    const swap = swapShown && (this.memoryAccounting.swap || reader.hasSwapAccounting(cgroup.value));
    return readMemoryFacts(reader, cgroup.value, { ...this.memoryAccounting, swap });
  }

  /** The memory cgroup's own slab caches (v1 only). */
  slabinfo(pid: ProcessId): Result<string> {
    const cgroup = this.cgroupOf(pid, 'memory');
    return cgroup.ok ? this.readerFor(cgroup.value).slabinfo(cgroup.value) : cgroup;
  }

  /**
   * The cpuset (of the cpuset cgroup: no cpuset hierarchy or cgroup ⇒ failure, and the CPU views serve
   * the host's files, as lxcfs does) and, for the CFS view, the quota of the **cpu** cgroup (lxcfs 5.0
   * read it at the cpuset cgroup's path).
   */
  cpuLimits(pid: ProcessId, enableCfs: boolean): Result<CpuLimitFacts> {
    const cpusetCgroup = this.cgroupOf(pid, 'cpuset');
    if (!cpusetCgroup.ok) return cpusetCgroup;
    const cpuset = this.readerFor(cpusetCgroup.value).cpuset(cpusetCgroup.value);
    if (!cpuset.ok) return cpuset;
    const cfsView = enableCfs && canUseCfsView(this.layout);
    let quota: number | undefined;
    if (cfsView) {
      const cpuCgroup = this.cgroupOf(pid, 'cpu');
      if (cpuCgroup.ok) quota = this.readerFor(cpuCgroup.value).cpuQuota(cpuCgroup.value);
    }
    return ok({ cpuset: cpuset.value, quota, cfsView });
  }

  /** The cgroup that accounts the CPU time of the process. */
  cpuAccountingCgroupOf(pid: ProcessId): Result<CgroupLocation> {
    const hierarchy = cpuAccountingHierarchy(this.layout);
    if (hierarchy === undefined) {
      return fail(`no cgroup hierarchy accounts CPU time on this host (layout: ${this.layout.kind}; no cpuacct, and the cgroup2 tree is not the controllers' one)`);
    }
    return cgroupOfProcessIn(hierarchy, this.roots.procRoot, pid, hierarchy.version === 2 ? 'cgroup2' : 'cpuacct');
  }

  /** The CPU time used by the process's cgroup: per CPU on v1 (cpuacct), totals on v2 (cpu.stat). */
  cpuUsage(pid: ProcessId): Result<CpuUsage> {
    const cgroup = this.cpuAccountingCgroupOf(pid);
    return cgroup.ok ? this.readerFor(cgroup.value).cpuUsage(cgroup.value) : cgroup;
  }

  /** Total CPU time of the process's cgroup, in nanoseconds. */
  cpuTimeNs(pid: ProcessId): Result<number> {
    const cgroup = this.cpuAccountingCgroupOf(pid);
    return cgroup.ok ? this.readerFor(cgroup.value).cpuTimeNs(cgroup.value) : cgroup;
  }

  /** I/O per device of the process's blkio (v1) or io (v2) cgroup; fails at the top of the hierarchy,
   * which is the whole host (the kernel's own file is its complete account). */
  io(pid: ProcessId): Result<CgroupIo> {
    const hierarchy = findHierarchy(this.layout, 'blkio') ?? findHierarchy(this.layout, 'io');
    if (hierarchy === undefined) return fail('no blkio (v1) or io (v2) controller is mounted');
    const cgroup = cgroupOfProcessIn(hierarchy, this.roots.procRoot, pid);
    if (!cgroup.ok) return cgroup;
    if (isHierarchyTop(cgroup.value)) return fail(`cgroup ${cgroup.value.path} is the top of the hierarchy`);
    return readerOf(hierarchy).io(cgroup.value);
  }

  /** The text of `<resource>.pressure` of the process's cgroup2 cgroup (pressure.ts). */
  pressure(pid: ProcessId, resource: PressureResource): Result<string> {
    return readCgroupPressure(this.layout, this.roots.procRoot, pid, resource);
  }

  /** Where `<resource>.pressure` of the process's cgroup2 cgroup is, with its text (pressure.ts). */
  pressureFile(pid: ProcessId, resource: PressureResource): Result<{ path: string; text: string }> {
    return cgroupPressureFile(this.layout, this.roots.procRoot, pid, resource);
  }

  /** The hierarchy whose cgroups key the load averages (tasks.ts), if any. */
  get loadavgHierarchy(): CgroupHierarchy | undefined {
    return loadavgHierarchy(this.layout);
  }

  /** The cgroup that keys the process's load averages. */
  loadavgCgroupOf(pid: ProcessId): Result<CgroupLocation> {
    const hierarchy = this.loadavgHierarchy;
    return hierarchy === undefined ? fail('no cpu (v1) or cgroup2 hierarchy is mounted') : cgroupOfProcessIn(hierarchy, this.roots.procRoot, pid);
  }

  private probeMemoryAccounting(): MemoryAccounting {
    const own = this.cgroupOf('self', 'memory');
    if (!own.ok) return { swap: false, zswap: false };
    const reader = this.readerFor(own.value);
    return { swap: reader.hasSwapAccounting(own.value), zswap: reader.hasZswapAccounting(own.value) };
  }

  /** A host /proc file rendered in one piece ("meminfo", "stat", "uptime"), or undefined if unreadable. */
  readProcFile(name: 'meminfo' | 'stat' | 'uptime'): string | undefined {
    return readRenderedFile(join(this.roots.procRoot, name), { singleRecord: true });
  }
}
