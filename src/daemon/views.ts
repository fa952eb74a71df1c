// Connects the pure views to host facts: for a request pid, find whose cgroups apply and render.
// A view that cannot be computed (vanished caller, missing controller, removed cgroup) answers
// undefined, and the file falls back to the host's content, as in lxcfs; the reason is logged at debug.

import type { Logger } from 'pino';
import type { Caller as RequestCaller } from '../fuse/filesystem.js';
import { Host } from '../host/host.js';
import type { MemoryFacts } from '../host/memory-facts.js';
import type { Result } from '../host/result.js';
import { renderMeminfo } from '../views/meminfo.js';
import { renderSwaps } from '../views/swaps.js';
import { createCpuViews, type CpuViewOptions } from './cpu-views.js';
import { createActivityViews, type ActivityViewOptions } from './activity-views.js';

/** The host's own version of the file as text, read only if asked for (several views never need it);
 * undefined when it cannot be read. */
export type HostText = () => string | undefined;

/** Renders a file for a caller; undefined means "serve the host file". */
export type View = (caller: RequestCaller, hostText: HostText) => Buffer | undefined;

export interface ViewOptions extends CpuViewOptions, ActivityViewOptions {
  procRoot: string;
  cgroupRoot: string;
  disableSwap: boolean;
  disableZswap: boolean;
}

export function createViews(options: ViewOptions, log: Logger): Record<string, View> {
  const host = new Host({ procRoot: options.procRoot, cgroupRoot: options.cgroupRoot });
  if (host.layout.problem) log.warn({ problem: host.layout.problem }, 'cgroup layout: views will show host values');
  const debug = log.isLevelEnabled('debug');

  function fallback(file: string, caller: RequestCaller, error: string): undefined {
    if (debug) log.debug({ file, pid: caller.pid, reason: error }, 'serving the host file');
    return undefined;
  }

  /** Whether any swap can be shown: every swap line is clamped to the host's SwapTotal. */
  function swapShown(hostMeminfo: string): boolean {
    return !options.disableSwap && !/^SwapTotal:\s+0 kB$/m.test(hostMeminfo);
  }

  /** The memory facts of whoever the caller's container is; swap files are read only when swap is shown. */
  function memoryOf(caller: RequestCaller, hostMeminfo: string): Result<MemoryFacts> {
    const who = host.callers.resolve(caller.pid);
    return who.ok ? host.memoryFacts(who.value.cgroupPid, swapShown(hostMeminfo)) : who;
  }

  return {
    'proc/meminfo': (caller, hostText) => {
      const hostMeminfo = hostText();
      if (hostMeminfo === undefined) return fallback('meminfo', caller, 'host /proc/meminfo is unreadable');
      const memory = memoryOf(caller, hostMeminfo);
      if (!memory.ok) return fallback('meminfo', caller, memory.error);
      return Buffer.from(renderMeminfo(hostMeminfo, memory.value, options));
    },
    'proc/swaps': (caller) => {
      const hostMeminfo = host.readProcFile('meminfo');
      if (hostMeminfo === undefined) return fallback('swaps', caller, 'host /proc/meminfo is unreadable');
      if (!swapShown(hostMeminfo)) {
        // The header alone, whatever the cgroup's numbers; its memory cgroup is still looked up, because
        // a caller without one gets the host's file (lxcfs's rule).
        const who = host.callers.resolve(caller.pid);
        const cgroup = who.ok ? host.cgroupOf(who.value.cgroupPid, 'memory') : who;
        return cgroup.ok ? Buffer.from(renderSwaps(hostMeminfo, undefined, options)) : fallback('swaps', caller, cgroup.error);
      }
      const memory = memoryOf(caller, hostMeminfo);
      if (!memory.ok) return fallback('swaps', caller, memory.error);
      return Buffer.from(renderSwaps(hostMeminfo, memory.value, options));
    },
    ...createCpuViews(host, options, fallback),
    ...createActivityViews(host, options, log),
  };
}
