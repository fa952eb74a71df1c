// Views of what a container is doing: /proc/loadavg (with -l), /proc/diskstats, /proc/pressure/* and
// /proc/slabinfo. Spread into createViews (views.ts); same rules: undefined means "serve the host file",
// with the reason logged at debug level. slabinfo never falls back to the host's file (see lxcfs-tree).

import type { Logger } from 'pino';
import type { Caller as RequestCaller } from '../fuse/filesystem.js';
import { findHierarchy } from '../host/cgroup-layout.js';
import { cgroupOfProcessIn, isHierarchyTop } from '../host/cgroup-location.js';
import type { Host } from '../host/host.js';
import { readBlkioV1, readIoV2 } from '../host/io.js';
import { PRESSURE_RESOURCES, readCgroupPressure } from '../host/pressure.js';
import { fail, type Result } from '../host/result.js';
import { readKmemSlabinfo } from '../host/slabinfo.js';
import { loadavgHierarchy } from '../host/tasks.js';
import { renderDiskstats } from '../views/diskstats.js';
import { renderLoadavg } from '../views/loadavg.js';
import { renderPressure } from '../views/pressure.js';
import { renderSlabinfo } from '../views/slabinfo.js';
import { allocateLoadavgTable, readLoadavg } from './loadavg-sampler.js';
import { SharedTable, type SharedTableMemory } from './shared-table.js';
import type { View } from './views.js';

export interface ActivityViewOptions {
  /** lxcfs -l: per-container /proc/loadavg; without it the host's file is served. */
  enableLoadavg?: boolean;
  /** The loadavg table the main thread's sampler updates. Absent (lxcfs-ts show): a private, never
   * sampled one, so the view shows what a first read shows. */
  loadavgTable?: SharedTableMemory;
}

export function createActivityViews(host: Host, options: ActivityViewOptions, log: Logger): Record<string, View> {
  const debug = log.isLevelEnabled('debug');
  const procRoot = host.roots.procRoot;

  function fallback(file: string, caller: RequestCaller, error: string): undefined {
    if (debug) log.debug({ file, pid: caller.pid, reason: error }, 'serving the host file');
    return undefined;
  }

  /** The pid whose cgroups describe the caller's container. */
  function cgroupPidOf(caller: RequestCaller): Result<number> {
    const who = host.callers.resolve(caller.pid);
    return who.ok ? { ok: true, value: who.value.cgroupPid } : who;
  }

  const views: Record<string, View> = {
    'proc/diskstats': (caller, hostText) => {
      const pid = cgroupPidOf(caller);
      if (!pid.ok) return fallback('diskstats', caller, pid.error);
      const hierarchy = findHierarchy(host.layout, 'blkio') ?? findHierarchy(host.layout, 'io');
      if (hierarchy === undefined) return fallback('diskstats', caller, 'no blkio (v1) or io (v2) controller is mounted');
      const cgroup = cgroupOfProcessIn(hierarchy, procRoot, pid.value);
      if (!cgroup.ok) return fallback('diskstats', caller, cgroup.error);
      // The top of the hierarchy is the whole host: the kernel's own file is its complete account.
      if (isHierarchyTop(cgroup.value)) return fallback('diskstats', caller, `cgroup ${cgroup.value.path} is the top of the hierarchy`);
      const io = hierarchy.version === 1 ? readBlkioV1(cgroup.value) : readIoV2(cgroup.value);
      if (!io.ok) return fallback('diskstats', caller, io.error);
      const text = hostText();
      if (text === undefined) return fallback('diskstats', caller, 'host /proc/diskstats is unreadable');
      return Buffer.from(renderDiskstats(text, io.value.devices), 'latin1');
    },

    'proc/slabinfo': (caller, hostText) => {
      const pid = cgroupPidOf(caller);
      const own = pid.ok ? readKmemSlabinfo(host, pid.value) : pid;
      if (!own.ok && debug) log.debug({ file: 'slabinfo', pid: caller.pid, reason: own.error }, 'serving the slabinfo header only');
      const text = hostText();
      return text === undefined ? undefined : Buffer.from(renderSlabinfo(text, own.ok ? own.value : undefined), 'latin1');
    },
  };

  for (const resource of PRESSURE_RESOURCES) {
    views[`proc/pressure/${resource}`] = (caller) => {
      const pid = cgroupPidOf(caller);
      if (!pid.ok) return fallback(`pressure/${resource}`, caller, pid.error);
      const text = readCgroupPressure(host.layout, procRoot, pid.value, resource);
      if (!text.ok) return fallback(`pressure/${resource}`, caller, text.error);
      const rendered = renderPressure(text.value);
      if (rendered === undefined) return fallback(`pressure/${resource}`, caller, `unexpected ${resource}.pressure content ${JSON.stringify(text.value)}`);
      return Buffer.from(rendered, 'latin1');
    };
  }

  if (options.enableLoadavg) {
    const table = new SharedTable(options.loadavgTable ?? allocateLoadavgTable(16));
    const hierarchy = loadavgHierarchy(host.layout);
    views['proc/loadavg'] = (caller) => {
      const who = host.callers.resolve(caller.pid);
      if (!who.ok) return fallback('loadavg', caller, who.error);
      const pid = who.value.cgroupPid;
      const cgroup = hierarchy === undefined ? fail('no cpu (v1) or cgroup2 hierarchy is mounted') : cgroupOfProcessIn(hierarchy, procRoot, pid);
      if (!cgroup.ok) return fallback('loadavg', caller, cgroup.error);
      const values = readLoadavg(table, cgroup.value.directory, pid, Date.now(), who.value.pidNamespace);
      return Buffer.from(renderLoadavg(values), 'latin1');
    };
  }
  return views;
}
