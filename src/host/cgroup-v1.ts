import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CgroupLocation } from './cgroup-location.js';
import { MemoryFilesReader, parseCount, readCgroupFile, type CgroupReader } from './cgroup-reader.js';
import type { MemoryStatKeys } from './memory-facts.js';

/**
 * v1 writes "no limit" as the page counter maximum (2^63 minus a page, so it
 * depends on the page size); nothing real comes near 2^62 bytes.
 */
const V1_UNLIMITED_FROM = 2 ** 62;

function parseV1Limit(text: string): number | undefined {
  const value = parseCount(text);
  return value !== undefined && value >= V1_UNLIMITED_FROM ? Infinity : value;
}

/** cgroup v1 memory controller. The `total_*` keys of memory.stat include descendant cgroups. */
export class CgroupV1Reader extends MemoryFilesReader implements CgroupReader {
  readonly version = 1;

  constructor() {
    super({
      limit: 'memory.limit_in_bytes',
      swapLimit: 'memory.memsw.limit_in_bytes',
      usage: 'memory.usage_in_bytes',
      swapUsage: 'memory.memsw.usage_in_bytes',
      parseLimit: parseV1Limit,
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
}
