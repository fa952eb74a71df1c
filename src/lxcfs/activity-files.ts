// What a container is doing: /proc/loadavg (with -l), /proc/diskstats, /proc/pressure/* and /proc/slabinfo.

import { findHierarchy } from '../host/cgroup-layout.js';
import { cgroupOfProcessIn, isHierarchyTop } from '../host/cgroup-location.js';
import { readBlkioV1, readIoV2 } from '../host/io.js';
import { readCgroupPressure, type PressureResource } from '../host/pressure.js';
import { fail, ok } from '../host/result.js';
import { readKmemSlabinfo } from '../host/slabinfo.js';
import { loadavgHierarchy } from '../host/tasks.js';
import { renderDiskstats } from '../views/diskstats.js';
import { renderLoadavg } from '../views/loadavg.js';
import { renderPressure } from '../views/pressure.js';
import { renderSlabinfo, slabinfoHeader } from '../views/slabinfo.js';
import { allocateLoadavgTable, readLoadavg } from './loadavg-sampler.js';
import type { ServedFile } from './served-file.js';
import { SharedTable } from './shared-table.js';

export const diskstats: ServedFile = {
  shows: "the container's own reads, writes and discards per device (v1: blkio throttle counters, v2: io.stat); the host's lines at the top of the hierarchy",
  recordwise: true,
  bind: ({ host }) => (container, hostText) => {
    const hierarchy = findHierarchy(host.layout, 'blkio') ?? findHierarchy(host.layout, 'io');
    if (hierarchy === undefined) return fail('no blkio (v1) or io (v2) controller is mounted');
    const cgroup = cgroupOfProcessIn(hierarchy, host.roots.procRoot, container.cgroupPid);
    if (!cgroup.ok) return cgroup;
    // The top of the hierarchy is the whole host: the kernel's own file is its complete account.
    if (isHierarchyTop(cgroup.value)) return fail(`cgroup ${cgroup.value.path} is the top of the hierarchy`);
    const io = hierarchy.version === 1 ? readBlkioV1(cgroup.value) : readIoV2(cgroup.value);
    if (!io.ok) return io;
    const text = hostText();
    if (text === undefined) return fail('host /proc/diskstats is unreadable');
    return ok(renderDiskstats(text, io.value.devices));
  },
};

/** The host's file is root-only (0400), ours is 0444: never the host's slab lines, whatever the mode,
 * only the cgroup's own (v1 kmem) or the header. */
export const slabinfo: ServedFile = {
  shows: "v1: the memory cgroup's memory.kmem.slabinfo; never the host's slab lines",
  recordwise: true,
  bind: ({ host }) => (container, hostText) => {
    const own = readKmemSlabinfo(host, container.cgroupPid);
    if (!own.ok) return own;
    const text = hostText();
    return text === undefined ? fail('host /proc/slabinfo is unreadable') : ok(renderSlabinfo(text, own.value));
  },
  fallback: {
    shows: "the host's header lines only",
    from: (host) => Buffer.from(slabinfoHeader(host.toString('latin1')), 'latin1'),
  },
};

export function pressure(resource: PressureResource): ServedFile {
  return {
    shows: `the ${resource}.pressure of the container's cgroup2 cgroup`,
    bind: ({ host }) => (container) => {
      const text = readCgroupPressure(host.layout, host.roots.procRoot, container.cgroupPid, resource);
      if (!text.ok) return text;
      const rendered = renderPressure(text.value);
      return rendered === undefined ? fail(`unexpected ${resource}.pressure content ${JSON.stringify(text.value)}`) : ok(rendered);
    },
  };
}

export const loadavg: ServedFile = {
  shows: "with -l: load averages of the container's runnable and uninterruptible threads, sampled every 5 s; without -l the host's file",
  bind: ({ host, options, log }) => {
    if (!options.enableLoadavg) return undefined;
    const table = new SharedTable(options.loadavgTable ?? allocateLoadavgTable(16));
    const hierarchy = loadavgHierarchy(host.layout);
    let warnedFull = false;
    return (container) => {
      const pid = container.cgroupPid;
      const cgroup = hierarchy === undefined ? fail('no cpu (v1) or cgroup2 hierarchy is mounted') : cgroupOfProcessIn(hierarchy, host.roots.procRoot, pid);
      if (!cgroup.ok) return cgroup;
      const values = readLoadavg(table, cgroup.value.directory, pid, Date.now());
      if (values === undefined) {
        if (!warnedFull) log.warn({ cgroup: cgroup.value.path }, 'loadavg: cannot track one more cgroup (table full or path too long); such containers see the host loadavg');
        warnedFull = true;
        return fail('the loadavg table is full');
      }
      return ok(renderLoadavg(values));
    };
  },
};
