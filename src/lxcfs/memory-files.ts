// The memory files: /proc/meminfo and /proc/swaps, from the container's memory cgroup.

import type { Host } from '../host/host.js';
import type { Caller } from '../host/caller.js';
import type { MemoryFacts } from '../host/memory-facts.js';
import { fail, ok, type Result } from '../host/result.js';
import { meminfoValue } from '../views/format.js';
import { renderMeminfo } from '../views/meminfo.js';
import { renderSwaps } from '../views/swaps.js';
import type { ServedFile, ViewOptions } from './served-file.js';

/** Whether any swap can be shown: every swap line is clamped to the host's SwapTotal. */
function swapShown(options: ViewOptions, hostMeminfo: string): boolean {
  return !options.disableSwap && meminfoValue(hostMeminfo, 'SwapTotal') !== 0;
}

/** The memory facts of the container; swap files are read only when swap is shown. */
function memoryOf(host: Host, options: ViewOptions, container: Caller, hostMeminfo: string): Result<MemoryFacts> {
  return host.memoryFacts(container.cgroupPid, swapShown(options, hostMeminfo));
}

export const meminfo: ServedFile = {
  shows: "the container's memory limit and usage, its memory.stat counters, its swap",
  bind:
    ({ host, options }) =>
    (container, hostText) => {
      const hostMeminfo = hostText();
      if (hostMeminfo === undefined) return fail('host /proc/meminfo is unreadable');
      const memory = memoryOf(host, options, container, hostMeminfo);
      return memory.ok ? ok(renderMeminfo(hostMeminfo, memory.value, options)) : memory;
    },
};

export const swaps: ServedFile = {
  shows: "one line for the container's swap (its swap limit and usage), or the header alone without swap",
  recordwise: true,
  bind:
    ({ host, options }) =>
    (container) => {
      const hostMeminfo = host.readProcFile('meminfo');
      if (hostMeminfo === undefined) return fail('host /proc/meminfo is unreadable');
      if (!swapShown(options, hostMeminfo)) {
        // The header alone, whatever the cgroup's numbers; its memory cgroup is still looked up, because
        // a caller without one gets the host's file (lxcfs's rule).
        const cgroup = host.cgroupOf(container.cgroupPid, 'memory');
        return cgroup.ok ? ok(renderSwaps(hostMeminfo, undefined, options)) : cgroup;
      }
      const memory = memoryOf(host, options, container, hostMeminfo);
      return memory.ok ? ok(renderSwaps(hostMeminfo, memory.value, options)) : memory;
    },
};
