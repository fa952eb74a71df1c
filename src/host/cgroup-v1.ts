import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupLocation } from './cgroup-location.js';
import { CgroupFilesReader, parseCount, quotaRatio, readCgroupFile } from './cgroup-files.js';
import type { CgroupReader, CpuUsage, MemoryStatKeys, PerCpuTime } from './cgroup-reader.js';
import { readBlkioV1, type CgroupIo } from './io.js';
import { fail, ok, type Result } from './result.js';

/**
 * v1 writes "no limit" as the page counter maximum (2^63 minus a page, so it
 * depends on the page size); nothing real comes near 2^62 bytes.
 */
const V1_UNLIMITED_FROM = 2 ** 62;

function parseV1Limit(text: string): number | undefined {
  const value = parseCount(text);
  return value !== undefined && value >= V1_UNLIMITED_FROM ? Infinity : value;
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
    if (lines[0]?.trim() !== 'cpu user system')
      return fail(`unexpected header in ${cgroup.directory}/cpuacct.usage_all`);
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
    return fail(
      `cannot read cpuacct.usage_all nor cpuacct.usage_percpu of cgroup ${cgroup.path} (${cgroup.directory})`,
    );
  }
  const totals = percpu.trim().split(/\s+/).filter(Boolean).map(Number);
  if (!totals.every((n) => Number.isFinite(n)))
    return fail(`unexpected content in ${cgroup.directory}/cpuacct.usage_percpu`);
  return ok(totals.map((total) => ({ userNs: total, systemNs: total })));
}

/** cgroup v1: one hierarchy per controller (memory, cpuset, cpu, cpuacct, blkio). The `total_*` keys of
 * memory.stat include descendant cgroups. */
export class CgroupV1Reader extends CgroupFilesReader implements CgroupReader {
  readonly version = 1;
  readonly perCpuTimes = true;

  constructor() {
    super({
      limit: 'memory.limit_in_bytes',
      swapLimit: 'memory.memsw.limit_in_bytes',
      usage: 'memory.usage_in_bytes',
      swapUsage: 'memory.memsw.usage_in_bytes',
      parseLimit: parseV1Limit,
      cpuset: ['cpuset.cpus'],
    });
  }

  readonly memoryStatKeys: MemoryStatKeys = {
    cache: 'total_cache',
    shmem: 'total_shmem',
    mapped: 'total_mapped_file',
    dirty: 'total_dirty',
    writeback: 'total_writeback',
    activeAnon: 'total_active_anon',
    inactiveAnon: 'total_inactive_anon',
    activeFile: 'total_active_file',
    inactiveFile: 'total_inactive_file',
    unevictable: 'total_unevictable',
    anonHugePages: 'total_rss_huge',
  };

  swappiness(cgroup: CgroupLocation): number | undefined {
    const text = readCgroupFile(cgroup, 'memory.swappiness');
    return text === undefined ? undefined : parseCount(text);
  }

  hasSwapAccounting(cgroup: CgroupLocation): boolean {
    return existsSync(join(cgroup.directory, 'memory.memsw.usage_in_bytes'));
  }

  hasZswapAccounting(): boolean {
    return false;
  }

  /** Linux >= 5.9 accounts slab objects per cgroup without per-cache lists: the file is empty there (or
   * gone with kmem accounting on newer kernels). */
  slabinfo(cgroup: CgroupLocation): Result<string> {
    const text = readCgroupFile(cgroup, 'memory.kmem.slabinfo');
    return text === undefined
      ? fail(`no memory.kmem.slabinfo in cgroup ${cgroup.path} (kmem accounting is off or gone)`)
      : ok(text);
  }

  protected quotaOf(cgroup: CgroupLocation): number | undefined {
    return quotaRatio(
      Number(readCgroupFile(cgroup, 'cpu.cfs_quota_us')?.trim() || NaN),
      Number(readCgroupFile(cgroup, 'cpu.cfs_period_us')?.trim() || NaN),
    );
  }

  cpuUsage(cgroup: CgroupLocation): Result<CpuUsage> {
    const perCpu = readCpuacctPerCpu(cgroup);
    return perCpu.ok ? ok({ kind: 'per-cpu', cgroup, perCpu: perCpu.value }) : perCpu;
  }

  cpuTimeNs(cgroup: CgroupLocation): Result<number> {
    const text = readCgroupFile(cgroup, 'cpuacct.usage');
    const value = text === undefined ? undefined : parseCount(text);
    return value === undefined
      ? fail(`cannot read cpuacct.usage of cgroup ${cgroup.path} (${cgroup.directory})`)
      : ok(value);
  }

  io(cgroup: CgroupLocation): Result<CgroupIo> {
    return readBlkioV1(cgroup);
  }

  threadListPath(directory: string): string {
    // Concatenation, not path.join: the sampler asks for every cgroup every pass, and join allocates much more.
    return directory + '/tasks';
  }
}
