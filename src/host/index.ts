export { Host } from './host.js';
export { CallerResolver, type Caller } from './caller.js';
export {
  detectCgroupLayout,
  findHierarchy,
  layoutFromMountinfo,
  type CgroupHierarchy,
  type CgroupLayout,
  type CgroupLayoutKind,
  type CgroupVersion,
} from './cgroup-layout.js';
export {
  cgroupOfProcess,
  isHierarchyTop,
  normalizeCgroupPath,
  parentCgroup,
  parseProcCgroup,
  type CgroupLocation,
  type ProcCgroupLine,
} from './cgroup-location.js';
export { parseMemoryStat } from './cgroup-files.js';
export type { CgroupReader, CpuUsage, MemoryStat } from './cgroup-reader.js';
export { CgroupV1Reader } from './cgroup-v1.js';
export { CgroupV2Reader } from './cgroup-v2.js';
export {
  readMemoryFacts,
  type MemoryAccounting,
  type MemoryCounters,
  type MemoryFacts,
  type MemoryStatKeys,
  type SwapFacts,
} from './memory-facts.js';
export { readInnermostPid, readPidNamespace, readStartTime, type ProcessId } from './process.js';
export { REAL_HOST_ROOTS, type HostRoots } from './roots.js';
export { fail, ok, type Failure, type Result, type Success } from './result.js';
