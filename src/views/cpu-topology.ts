// /sys/devices/system/cpu as a container sees it: its visible CPUs under the numbers `online` shows, and
// the CPU masks and lists of topology/, cache/ and cpufreq/ files rewritten into those numbers.

import { formatCpuList, parseCpuList, type VisibleCpus } from './cpuset.js';

/** The container's CPUs, each shown number with the host CPU it stands for: the first `count` CPUs of
 * its cpuset, renumbered from 0 with the CFS view (the numbering of `online` and `/proc/stat`). */
export function shownCpus(cpus: VisibleCpus): Map<number, number> {
  const shown = new Map<number, number>();
  cpus.cpuset.slice(0, cpus.count).forEach((hostCpu, index) => shown.set(cpus.cfsView ? index : hostCpu, hostCpu));
  return shown;
}

/** Files that hold a CPU bitmap (`%*pb`: 32-bit hex words, most significant first, comma-separated). */
const MASK_FILES = new Set([
  'book_siblings',
  'cluster_cpus',
  'core_cpus',
  'core_siblings',
  'die_cpus',
  'drawer_siblings',
  'package_cpus',
  'shared_cpu_map',
  'thread_siblings',
]);

/** cpufreq's lists: CPU numbers separated by spaces. */
const SPACED_LIST_FILES = new Set(['affected_cpus', 'related_cpus', 'freqdomain_cpus']);

/** The CPUs of a bitmap such as `00000000,00000005`. */
function parseCpuMask(text: string): number[] {
  const cpus: number[] = [];
  const words = text.trim().split(',').reverse();
  words.forEach((word, index) => {
    const value = parseInt(word, 16);
    for (let bit = 0; bit < 32; bit++) if (Number.isFinite(value) && (value >>> bit) & 1) cpus.push(index * 32 + bit);
  });
  return cpus;
}

/** A bitmap of `cpus` with the same words, each as wide as in `like` (the kernel sizes them by nr_cpu_ids). */
function formatCpuMask(cpus: readonly number[], like: string): string {
  const widths = like
    .trim()
    .split(',')
    .reverse()
    .map((word) => word.length);
  const words = widths.map((width, index) => {
    let value = 0;
    for (const cpu of cpus)
      if (cpu >= index * 32 && cpu < index * 32 + 32) value = (value | (1 << (cpu - index * 32))) >>> 0;
    return value.toString(16).padStart(width, '0');
  });
  return words.reverse().join(',');
}

/** Whether rewriteCpuFile changes a file of this name: a CPU list, mask or spaced list. */
export function isCpuSetFile(name: string): boolean {
  return name.endsWith('_list') || MASK_FILES.has(name) || SPACED_LIST_FILES.has(name);
}

/**
 * A file below the cpu directory with its CPU numbers mapped from the host's to the container's
 * (`toShown`: host CPU → shown number), CPUs the container cannot see dropped; undefined for a file
 * that names no CPUs (served as the host has it).
 */
export function rewriteCpuFile(name: string, text: string, toShown: ReadonlyMap<number, number>): string | undefined {
  const mapped = (hostCpus: readonly number[]): number[] =>
    hostCpus.flatMap((cpu) => (toShown.has(cpu) ? [toShown.get(cpu)!] : [])).sort((a, b) => a - b);
  if (name.endsWith('_list')) return `${formatCpuList(mapped(parseCpuList(text)))}\n`;
  if (MASK_FILES.has(name)) return `${formatCpuMask(mapped(parseCpuMask(text)), text)}\n`;
  if (SPACED_LIST_FILES.has(name)) {
    const hostCpus = text.trim().split(/\s+/).filter(Boolean).map(Number);
    return `${mapped(hostCpus).join(' ')}\n`;
  }
  return undefined;
}
