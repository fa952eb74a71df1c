import type { CgroupHierarchy, CgroupVersion } from './cgroup-layout.js';
import type { CgroupReader } from './cgroup-reader.js';
import { CgroupV1Reader } from './cgroup-v1.js';
import { CgroupV2Reader } from './cgroup-v2.js';

const READERS: Readonly<Record<CgroupVersion, CgroupReader>> = { 1: new CgroupV1Reader(), 2: new CgroupV2Reader() };

/** The back end that reads the cgroups of `hierarchy`. */
export function readerOf(hierarchy: CgroupHierarchy): CgroupReader {
  return READERS[hierarchy.version];
}
