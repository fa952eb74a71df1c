// Per-cgroup block I/O counters for /proc/diskstats, from what kernels account today:
// * cgroup v2: io.stat (`MAJ:MIN rbytes=.. wbytes=.. rios=.. wios=.. dbytes=.. dios=..`), recursive.
// * cgroup v1: blkio.throttle.io_serviced_recursive and io_service_bytes_recursive (blk-throttle's
//   bio counters), with the BFQ scheduler's blkio.bfq.* counters for devices blk-throttle did not count,
//   and the CFQ-era blkio.io_*_recursive files (Linux < 5.0) with their merge and time columns when
//   present. lxcfs reads only those CFQ files, so on current v1 kernels it always shows the host's file.
//
// Since Linux 6.10, blk-throttle counts a device's I/O only once some throttle rule has been configured
// on that device (in any cgroup): until then the v1 counters stay 0 and the device is not even listed.
// accountedDevices() tells which devices are counted; src/lxcfs/blkio-accounting.ts logs the others
// and, with --enable-blkio-accounting, switches counting on.

import { join } from 'node:path';
import fs from 'node:fs';
import type { CgroupLocation } from './cgroup-location.js';
import { readCgroupFile } from './cgroup-files.js';
import { readTextFile } from './files.js';
import { fail, ok, type Result } from './result.js';

/** The counters of one device, named after the /proc/diskstats columns they fill. Columns a source does
 * not account are 0. */
export interface DeviceIo {
  reads: number;
  readsMerged: number;
  readBytes: number;
  readMs: number;
  writes: number;
  writesMerged: number;
  writeBytes: number;
  writeMs: number;
  ioMs: number;
  discards: number;
  discardsMerged: number;
  discardBytes: number;
  discardMs: number;
}

/** Counters by `major:minor`. */
export type IoByDevice = Map<string, DeviceIo>;

export interface CgroupIo {
  devices: IoByDevice;
  /** Which files they came from, for debug logs. */
  source: string;
}

export function emptyDeviceIo(): DeviceIo {
  return {
    reads: 0, readsMerged: 0, readBytes: 0, readMs: 0,
    writes: 0, writesMerged: 0, writeBytes: 0, writeMs: 0, ioMs: 0,
    discards: 0, discardsMerged: 0, discardBytes: 0, discardMs: 0,
  };
}

export function hasIo(io: DeviceIo): boolean {
  return io.reads + io.writes + io.discards + io.readBytes + io.writeBytes + io.discardBytes + io.readsMerged + io.writesMerged > 0;
}

/** cgroup v2 io.stat. Unknown keys (cost.*, latency, ...) are ignored. */
export function parseIoStat(text: string): IoByDevice {
  const devices: IoByDevice = new Map();
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 2 || !/^\d+:\d+$/.test(fields[0]!)) continue;
    const io = emptyDeviceIo();
    for (const field of fields.slice(1)) {
      const eq = field.indexOf('=');
      const value = Number(field.slice(eq + 1));
      if (eq <= 0 || !Number.isFinite(value)) continue;
      switch (field.slice(0, eq)) {
        case 'rbytes': io.readBytes = value; break;
        case 'wbytes': io.writeBytes = value; break;
        case 'rios': io.reads = value; break;
        case 'wios': io.writes = value; break;
        case 'dbytes': io.discardBytes = value; break;
        case 'dios': io.discards = value; break;
      }
    }
    devices.set(fields[0]!, io);
  }
  return devices;
}

/** One v1 blkio "rwstat" file: `MAJ:MIN Op value` lines (Op: Read, Write, Sync, Async, Discard, Total),
 * ending with a lone `Total value`. */
export type Rwstat = Map<string, Map<string, number>>;

export function parseRwstat(text: string): Rwstat {
  const stat: Rwstat = new Map();
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 3 || !/^\d+:\d+$/.test(fields[0]!)) continue;
    const value = Number(fields[2]);
    if (!Number.isFinite(value)) continue;
    let ops = stat.get(fields[0]!);
    if (ops === undefined) stat.set(fields[0]!, (ops = new Map<string, number>()));
    ops.set(fields[1]!, value);
  }
  return stat;
}

const CFQ_FILES = [
  'blkio.io_serviced_recursive',
  'blkio.io_merged_recursive',
  'blkio.io_service_bytes_recursive',
  'blkio.io_wait_time_recursive',
  'blkio.io_service_time_recursive',
] as const;

/** lxcfs's mapping of the five CFQ files (times in ns become ms, each truncated). */
export function ioFromCfq(serviced: Rwstat, merged: Rwstat, bytes: Rwstat, waitTime: Rwstat, serviceTime: Rwstat): IoByDevice {
  const devices: IoByDevice = new Map();
  const get = (stat: Rwstat, device: string, op: string): number => stat.get(device)?.get(op) ?? 0;
  const ms = (device: string, op: string): number =>
    Math.floor(get(serviceTime, device, op) / 1e6) + Math.floor(get(waitTime, device, op) / 1e6);
  for (const device of serviced.keys()) {
    devices.set(device, {
      reads: get(serviced, device, 'Read'),
      readsMerged: get(merged, device, 'Read'),
      readBytes: get(bytes, device, 'Read'),
      readMs: ms(device, 'Read'),
      writes: get(serviced, device, 'Write'),
      writesMerged: get(merged, device, 'Write'),
      writeBytes: get(bytes, device, 'Write'),
      writeMs: ms(device, 'Write'),
      ioMs: Math.floor(get(serviceTime, device, 'Total') / 1e6),
      discards: get(serviced, device, 'Discard'),
      discardsMerged: get(merged, device, 'Discard'),
      discardBytes: get(bytes, device, 'Discard'),
      discardMs: ms(device, 'Discard'),
    });
  }
  return devices;
}

/** Requests and bytes per device from a serviced/service_bytes pair (blk-throttle or BFQ). */
export function ioFromCounts(serviced: Rwstat, bytes: Rwstat): IoByDevice {
  const devices: IoByDevice = new Map();
  for (const device of new Set([...serviced.keys(), ...bytes.keys()])) {
    const ios = serviced.get(device);
    const sizes = bytes.get(device);
    const io = emptyDeviceIo();
    io.reads = ios?.get('Read') ?? 0;
    io.writes = ios?.get('Write') ?? 0;
    io.discards = ios?.get('Discard') ?? 0;
    io.readBytes = sizes?.get('Read') ?? 0;
    io.writeBytes = sizes?.get('Write') ?? 0;
    io.discardBytes = sizes?.get('Discard') ?? 0;
    devices.set(device, io);
  }
  return devices;
}

/**
 * The v1 counters of a blkio cgroup and its descendants: the CFQ files when all five exist (lxcfs's
 * source), else blk-throttle's, with BFQ's for devices blk-throttle shows no I/O on. Fails when none of
 * these files can be read (host values apply).
 */
export function readBlkioV1(cgroup: CgroupLocation): Result<CgroupIo> {
  // CFQ left the kernel in 5.0: one missing file settles it.
  const cfq: string[] = [];
  for (const name of CFQ_FILES) {
    const text = readCgroupFile(cgroup, name, true);
    if (text === undefined) break;
    cfq.push(text);
  }
  if (cfq.length === CFQ_FILES.length) {
    const [serviced, merged, bytes, waitTime, serviceTime] = cfq.map((text) => parseRwstat(text)) as [Rwstat, Rwstat, Rwstat, Rwstat, Rwstat];
    return ok({ devices: ioFromCfq(serviced, merged, bytes, waitTime, serviceTime), source: 'blkio.io_*_recursive (CFQ)' });
  }
  const pair = (prefix: string): IoByDevice | undefined => {
    const serviced = readCgroupFile(cgroup, `${prefix}.io_serviced_recursive`, true);
    const bytes = serviced === undefined ? undefined : readCgroupFile(cgroup, `${prefix}.io_service_bytes_recursive`, true);
    return serviced === undefined || bytes === undefined ? undefined : ioFromCounts(parseRwstat(serviced), parseRwstat(bytes));
  };
  const throttle = pair('blkio.throttle');
  const bfq = pair('blkio.bfq');
  if (throttle === undefined && bfq === undefined) {
    return fail(`cannot read the blkio counters of cgroup ${cgroup.path} (${cgroup.directory}): the cgroup was removed, or the kernel has neither blk-throttle nor BFQ`);
  }
  const devices: IoByDevice = new Map(throttle ?? []);
  for (const [device, io] of bfq ?? []) {
    const counted = devices.get(device);
    if (counted === undefined || !hasIo(counted)) devices.set(device, io);
  }
  return ok({ devices, source: bfq === undefined ? 'blkio.throttle.*_recursive' : 'blkio.throttle.*_recursive + blkio.bfq.*_recursive' });
}

/** The v2 counters (io.stat is recursive); fails where the io controller is not enabled. */
export function readIoV2(cgroup: CgroupLocation): Result<CgroupIo> {
  const text = readCgroupFile(cgroup, 'io.stat');
  if (text === undefined) {
    return fail(`cannot read io.stat of cgroup ${cgroup.path} (${cgroup.directory}): the cgroup was removed, or the io controller is not enabled for it`);
  }
  return ok({ devices: parseIoStat(text), source: 'io.stat' });
}

/** A whole disk (not a partition) of /sys/block. */
export interface Disk {
  name: string;
  /** `major:minor` */
  device: string;
  /** Size in 512-byte sectors; 0 for an unbound loop device or an empty drive. */
  sectors: number;
}

export function listDisks(sysRoot = '/sys'): Disk[] {
  let names: string[];
  try {
    names = fs.readdirSync(join(sysRoot, 'block'));
  } catch {
    return [];
  }
  const disks: Disk[] = [];
  for (const name of names) {
    const device = readTextFile(join(sysRoot, 'block', name, 'dev'))?.trim();
    if (device === undefined || !/^\d+:\d+$/.test(device)) continue;
    const sectors = Number(readTextFile(join(sysRoot, 'block', name, 'size'))?.trim() ?? 0);
    disks.push({ name, device, sectors: Number.isFinite(sectors) ? sectors : 0 });
  }
  return disks;
}

/**
 * Devices blk-throttle counts: those listed in the v1 root's blkio.throttle.io_serviced_recursive. Since
 * Linux 6.10 a device is listed (and counted) only once a throttle rule was configured on it; before,
 * every device is. Undefined when the file cannot be read (no v1 blkio, no blk-throttle).
 */
export function accountedDevices(blkioRootDirectory: string): Set<string> | undefined {
  const text = readTextFile(join(blkioRootDirectory, 'blkio.throttle.io_serviced_recursive'));
  return text === undefined ? undefined : new Set(parseRwstat(text).keys());
}
