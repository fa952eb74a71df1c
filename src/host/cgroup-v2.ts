import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isHierarchyTop, parentCgroup, type CgroupLocation } from './cgroup-location.js';
import { CgroupFilesReader, parseCount, quotaRatio, readCgroupFile } from './cgroup-files.js';
import type { CgroupReader, CpuStat, CpuUsage, MemoryStatKeys } from './cgroup-reader.js';
import { readIoV2, type CgroupIo } from './io.js';
import { fail, ok, type Result } from './result.js';

function parseV2Limit(text: string): number | undefined {
  return text.trim() === 'max' ? Infinity : parseCount(text);
}

/**
 * Whether `file` exists in the cgroup or an ancestor. The v2 root never has
 * memory.swap.* files, so a daemon sitting in the root looks at its first-level
 * children instead (lxcfs's probe; lxcfs issue #534 was probing the root only).
 */
function existsInCgroupOrAncestors(cgroup: CgroupLocation, file: string): boolean {
  for (let level: CgroupLocation | undefined = cgroup; level !== undefined; level = parentCgroup(level)) {
    if (existsSync(join(level.directory, file))) return true;
  }
  return isHierarchyTop(cgroup) && existsInAChild(cgroup.directory, file);
}

function existsInAChild(directory: string, file: string): boolean {
  try {
    return readdirSync(directory, { withFileTypes: true }).some(
      (entry) => entry.isDirectory() && existsSync(join(directory, entry.name, file)),
    );
  } catch {
    return false;
  }
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

/** cgroup v2: one hierarchy. memory.stat is recursive already; keys have no `total_` prefix. cpu.stat
 * exists whichever controllers are enabled, but has no per-CPU times. */
export class CgroupV2Reader extends CgroupFilesReader implements CgroupReader {
  readonly version = 2;
  readonly perCpuTimes = false;

  constructor() {
    super({
      limit: 'memory.max',
      swapLimit: 'memory.swap.max',
      usage: 'memory.current',
      swapUsage: 'memory.swap.current',
      parseLimit: parseV2Limit,
      // A cgroup2 cgroup without the cpuset controller of its own has an empty cpuset.cpus.
      cpuset: ['cpuset.cpus', 'cpuset.cpus.effective'],
    });
  }

  readonly memoryStatKeys: MemoryStatKeys = {
    cache: 'file',
    shmem: 'shmem',
    mapped: 'file_mapped',
    dirty: 'file_dirty',
    writeback: 'file_writeback',
    activeAnon: 'active_anon',
    inactiveAnon: 'inactive_anon',
    activeFile: 'active_file',
    inactiveFile: 'inactive_file',
    unevictable: 'unevictable',
    anonHugePages: 'anon_thp',
    slab: 'slab',
    slabReclaimable: 'slab_reclaimable',
    slabUnreclaimable: 'slab_unreclaimable',
    zswap: 'zswap',
    zswapped: 'zswapped',
  };

  /** v2 has no memory.swappiness; lxcfs then behaves as if swapping were allowed. */
  swappiness(): number | undefined {
    return undefined;
  }

  hasSwapAccounting(cgroup: CgroupLocation): boolean {
    return existsInCgroupOrAncestors(cgroup, 'memory.swap.current');
  }

  hasZswapAccounting(cgroup: CgroupLocation): boolean {
    return existsInCgroupOrAncestors(cgroup, 'memory.zswap.current');
  }

  slabinfo(): Result<string> {
    return fail('cgroup v2 has no per-cgroup slabinfo');
  }

  protected quotaOf(cgroup: CgroupLocation): number | undefined {
    const [quota, period] = (readCgroupFile(cgroup, 'cpu.max') ?? '').trim().split(/\s+/);
    return quotaRatio(Number(quota), Number(period));
  }

  cpuUsage(cgroup: CgroupLocation): Result<CpuUsage> {
    const stat = readCpuStat(cgroup);
    return stat.ok ? ok({ kind: 'totals', cgroup, stat: stat.value }) : stat;
  }

  cpuTimeNs(cgroup: CgroupLocation): Result<number> {
    const stat = readCpuStat(cgroup);
    return stat.ok ? ok(stat.value.usageUsec * 1000) : stat;
  }

  io(cgroup: CgroupLocation): Result<CgroupIo> {
    return readIoV2(cgroup);
  }

  threadListPath(directory: string): string {
    return directory + '/cgroup.threads';
  }
}
