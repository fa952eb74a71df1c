// What a container is doing: /proc/loadavg (with -l), /proc/diskstats, /proc/pressure/* and /proc/slabinfo.

import type { PressureResource } from '../host/pressure.js';
import { fail, ok } from '../host/result.js';
import { renderDiskstats } from '../views/diskstats.js';
import { renderLoadavg } from '../views/loadavg.js';
import { renderPressure } from '../views/pressure.js';
import { renderSlabinfo, slabinfoHeader } from '../views/slabinfo.js';
import { allocateLoadavgTable, readLoadavg } from './loadavg-sampler.js';
import type { ServedFile } from './served-file.js';
import { SharedTable } from './shared-table.js';
import { encodeRendering } from './rendering.js';

export const diskstats: ServedFile = {
  shows:
    "the container's own reads, writes and discards per device (v1: blkio throttle counters, v2: io.stat); the host's lines at the top of the hierarchy",
  recordwise: true,
  bind:
    ({ host }) =>
    (container, hostText) => {
      const io = host.io(container.cgroupPid);
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
  bind:
    ({ host }) =>
    (container, hostText) => {
      const own = host.slabinfo(container.cgroupPid);
      if (!own.ok) return own;
      const text = hostText();
      return text === undefined ? fail('host /proc/slabinfo is unreadable') : ok(renderSlabinfo(text, own.value));
    },
  fallback: {
    shows: "the host's header lines only",
    from: (host) => encodeRendering(slabinfoHeader(host.toString('latin1'))),
  },
};

export function pressure(resource: PressureResource): ServedFile {
  return {
    shows: `the ${resource}.pressure of the container's cgroup2 cgroup`,
    bind:
      ({ host }) =>
      (container) => {
        const text = host.pressure(container.cgroupPid, resource);
        if (!text.ok) return text;
        const rendered = renderPressure(text.value);
        return rendered === undefined
          ? fail(`unexpected ${resource}.pressure content ${JSON.stringify(text.value)}`)
          : ok(rendered);
      },
  };
}

export const loadavg: ServedFile = {
  shows:
    "with -l: load averages of the container's runnable and uninterruptible threads, sampled every 5 s; without -l the host's file",
  bind: ({ host, options }) => {
    if (!options.enableLoadavg) return undefined;
    const table = new SharedTable(options.loadavgTable ?? allocateLoadavgTable(16));
    return (container) => {
      const cgroup = host.loadavgCgroupOf(container.cgroupPid);
      if (!cgroup.ok) return cgroup;
      const values = readLoadavg(
        table,
        cgroup.value.directory,
        container.cgroupPid,
        Date.now(),
        container.pidNamespace,
      );
      return ok(renderLoadavg(values));
    };
  },
};
