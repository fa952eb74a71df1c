// Which of the daemon's files a pod gets. The one place the webhook learns what the daemon serves.

import { SERVED_FILES } from '../lxcfs/paths.js';

/** The /proc files runc accepts as bind-mount destinations (its checkProcMount allow-list). Any other
 * target under /proc (since runc 1.4: /proc/pressure/*, /proc/vmstat) makes it refuse to start the
 * container, so a file we serve there is only injected once runc lists it. */
const RUNC_PROC_BIND_TARGETS = new Set([
  'proc/cpuinfo',
  'proc/diskstats',
  'proc/loadavg',
  'proc/meminfo',
  'proc/slabinfo',
  'proc/stat',
  'proc/swaps',
  'proc/uptime',
]);

/** Paths relative to the mountpoint (and to the container's root), in the daemon's order. */
export const INJECTED_FILES: readonly string[] = SERVED_FILES.filter(
  (file) => !file.startsWith('proc/') || RUNC_PROC_BIND_TARGETS.has(file),
);
