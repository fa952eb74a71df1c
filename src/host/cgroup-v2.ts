import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isHierarchyTop, parentCgroup, type CgroupLocation } from './cgroup-location.js';
import { MemoryFilesReader, parseCount, type CgroupReader } from './cgroup-reader.js';
import type { MemoryStatKeys } from './memory-facts.js';

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
export class CgroupV2Reader extends MemoryFilesReader implements CgroupReader {
  readonly version = 2;

  constructor() {
    super({ limit: 'memory.max', swapLimit: 'memory.swap.max', usage: 'memory.current', swapUsage: 'memory.swap.current', parseLimit: parseV2Limit });
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
}
