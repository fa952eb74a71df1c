// Every served file, registered once under its path. The tree, `lxcfs-ts show`, the bench and the README's
// file table all read this table (or paths.ts, for tools that need only the names); the type makes a
// missing or misspelt path a compile error.

import { cpuinfo, offline, online, possible, present, stat, uptime } from './cpu-files.js';
import { diskstats, loadavg, pressure, slabinfo } from './activity-files.js';
import { meminfo, swaps } from './memory-files.js';
import type { ServedPath } from './paths.js';
import type { ServedFile } from './served-file.js';

export const SERVED: { readonly [P in ServedPath]: ServedFile } = {
  'proc/cpuinfo': cpuinfo,
  'proc/diskstats': diskstats,
  'proc/loadavg': loadavg,
  'proc/meminfo': meminfo,
  'proc/slabinfo': slabinfo,
  'proc/stat': stat,
  'proc/swaps': swaps,
  'proc/uptime': uptime,
  'proc/pressure/cpu': pressure('cpu'),
  'proc/pressure/io': pressure('io'),
  'proc/pressure/memory': pressure('memory'),
  'sys/devices/system/cpu/online': online,
  'sys/devices/system/cpu/present': present,
  'sys/devices/system/cpu/possible': possible,
  'sys/devices/system/cpu/offline': offline,
};
