import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isHierarchyTop, parentCgroup, type CgroupLocation } from './cgroup-location.js';
import {
  minLimitOverAncestors,
  parseCount,
  readCgroupValue,
  readMemoryStat,
  type CgroupReader,
  type MemoryStat,
} from './cgroup-reader.js';
import type { MemoryStatKeys } from './memory-facts.js';
import type { Result } from './result.js';

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

/** cgroup v2 memory controller. memory.stat is recursive already; keys have no `total_` prefix. */
export class CgroupV2Reader implements CgroupReader {
  readonly version = 2;

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

  memoryLimit(cgroup: CgroupLocation): Result<number> {
    return minLimitOverAncestors(cgroup, 'memory.max', parseV2Limit);
  }

  swapLimit(cgroup: CgroupLocation): Result<number> {
    return minLimitOverAncestors(cgroup, 'memory.swap.max', parseV2Limit);
  }

  memoryUsage(cgroup: CgroupLocation): Result<number> {
    return readCgroupValue(cgroup, 'memory.current', parseCount);
  }

  swapUsage(cgroup: CgroupLocation): Result<number> {
    return readCgroupValue(cgroup, 'memory.swap.current', parseCount);
  }

  memoryStat(cgroup: CgroupLocation): Result<MemoryStat> {
    return readMemoryStat(cgroup);
  }

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
}
