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

/** Renders a file for a caller from the host file's content; undefined means "serve the host file". */
export type View = (caller: RequestCaller, hostContent: Buffer) => Buffer | undefined;

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

  /** The memory facts of whoever the caller's container is; swap files are read only when the host has
   * swap to show (every swap line is clamped to the host's SwapTotal). */
  function memoryOf(caller: RequestCaller, hostMeminfo: string): Result<MemoryFacts> {
    const who = host.callers.resolve(caller.pid);
    const swapShown = !options.disableSwap && !/^SwapTotal:\s+0 kB$/m.test(hostMeminfo);
    return who.ok ? host.memoryFacts(who.value.cgroupPid, swapShown) : who;
  }

  return {
    'proc/meminfo': (caller, hostContent) => {
      const hostMeminfo = hostContent.toString('latin1');
      const memory = memoryOf(caller, hostMeminfo);
      if (!memory.ok) return fallback('meminfo', caller, memory.error);
      return Buffer.from(renderMeminfo(hostMeminfo, memory.value, options));
    },
    'proc/swaps': (caller) => {
      const hostMeminfo = host.readProcFile('meminfo');
      if (hostMeminfo === undefined) return fallback('swaps', caller, 'host /proc/meminfo is unreadable');
      const memory = memoryOf(caller, hostMeminfo);
      if (!memory.ok) return fallback('swaps', caller, memory.error);
      return Buffer.from(renderSwaps(hostMeminfo, memory.value, options));
    },
    ...createCpuViews(host, options, log, fallback),
    ...createActivityViews(host, options, log),
  };
}
