import { join } from 'node:path';
import { CallerResolver } from './caller.js';
import { detectCgroupLayout, type CgroupLayout, type CgroupVersion } from './cgroup-layout.js';
import { cgroupOfProcess, type CgroupLocation } from './cgroup-location.js';
import type { CgroupReader } from './cgroup-reader.js';
import { CgroupV1Reader } from './cgroup-v1.js';
import { CgroupV2Reader } from './cgroup-v2.js';
import { readRenderedFile } from './files.js';
import { readMemoryFacts, type MemoryAccounting, type MemoryFacts } from './memory-facts.js';
import type { ProcessId } from './process.js';
import { REAL_HOST_ROOTS, type HostRoots } from './roots.js';
import type { Result } from './result.js';

const READERS: Readonly<Record<CgroupVersion, CgroupReader>> = { 1: new CgroupV1Reader(), 2: new CgroupV2Reader() };

/**
 * Host facts for one daemon: cgroup layout, caller resolution and cgroup
 * reads, all synchronous. Construct once per thread (startup probes run here);
 * each call then does only the reads it needs.
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
    return READERS[cgroup.hierarchy.version];
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
