import type { VisibleCpus } from './cpuset.js';

/**
 * /sys/devices/system/cpu/online for a container (lxcfs's rules): with the CFS view the renumbered CPUs
 * `0-(count-1)` (`0` for a single CPU), otherwise its cpuset as the kernel wrote it. This is what glibc's
 * get_nprocs (getconf _NPROCESSORS_ONLN, Python's os.cpu_count) counts.
 */
export function renderOnline(cpus: VisibleCpus): string {
  if (!cpus.cfsView) return `${cpus.cpusetText}\n`;
  return cpus.count > 1 ? `0-${cpus.count - 1}\n` : '0\n';
}
