// /proc/diskstats for a container: one line per device the container did I/O on, with its own counters,
// in the host file's order, with the host file's major/minor/name and its number of columns.

import type { DeviceIo, IoByDevice } from '../host/io.js';
import { hasIo } from '../host/io.js';

const SECTOR_BYTES = 512;

/**
 * The 17 columns after the name on Linux ≥ 5.5 (fewer on older kernels): reads, reads merged, sectors
 * read, ms reading, writes, writes merged, sectors written, ms writing, in flight, ms doing I/O, weighted
 * ms, discards, discards merged, sectors discarded, ms discarding, flushes, ms flushing. What cgroups do
 * not account (in flight, weighted time, flushes; times and merges except on CFQ) is 0.
 */
export function diskstatsColumns(io: DeviceIo): number[] {
  return [
    io.reads, io.readsMerged, Math.floor(io.readBytes / SECTOR_BYTES), io.readMs,
    io.writes, io.writesMerged, Math.floor(io.writeBytes / SECTOR_BYTES), io.writeMs,
    0, io.ioMs, 0,
    io.discards, io.discardsMerged, Math.floor(io.discardBytes / SECTOR_BYTES), io.discardMs,
    0, 0,
  ];
}

/** The kernel's own line layout: `%4d %7d %s` then the counters. */
function diskstatsLine(major: string, minor: string, name: string, columns: readonly number[]): string {
  return `${major.padStart(4)} ${minor.padStart(7)} ${name} ${columns.join(' ')}`;
}

export function renderDiskstats(hostDiskstats: string, devices: IoByDevice): string {
  let out = '';
  for (const line of hostDiskstats.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 4) continue;
    const [major, minor, name] = fields as [string, string, string];
    const io = devices.get(`${major}:${minor}`);
    if (io === undefined || !hasIo(io)) continue;
    const width = fields.length - 3;
    const columns = diskstatsColumns(io);
    while (columns.length < width) columns.push(0);
    out += diskstatsLine(major, minor, name, columns.slice(0, width)) + '\n';
  }
  return out;
}
