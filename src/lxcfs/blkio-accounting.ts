// cgroup v1 block I/O accounting on Linux ≥ 6.10. blk-throttle (whose counters /proc/diskstats shows
// containers on v1) counts a device's I/O only once some throttle rule has been configured on it. This
// module, in the main thread:
// * always: logs once, per device, the disks whose I/O no container can see for that reason;
// * with --enable-blkio-accounting: switches counting on by setting a no-op rule (a read limit of
//   2^60 bytes/s, which no device reaches) on every disk, in a dedicated empty cgroup at the top of the
//   blkio hierarchy. Counting then covers every cgroup. The rule is set there rather than on the root
//   cgroup because a root rule applies to every cgroup below, sending every read of the host through
//   blk-throttle's checks under the device queue's lock; in an empty cgroup it throttles nothing. Our
//   cgroup and its rules are removed when the daemon stops (the kernel keeps counting until the device
//   goes away). Nothing is changed on the host without the flag.
// Disks that appear later (a loop device being attached) are picked up by a rescan: every 30 s with the
// flag (until then their I/O is not counted), every 10 minutes without it (only to log them).

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { findV1Hierarchy, type CgroupLayout } from '../host/cgroup-layout.js';
import { accountedDevices, listDisks, type Disk } from '../host/io.js';
import { readTextFile } from '../host/files.js';

export const ACCOUNTING_CGROUP = 'lxcfs-ts.blkio-accounting';
/** Bytes per second: 1 EiB/s. */
export const NO_OP_READ_BPS = '1152921504606846976';
const RESCAN_MS = 30_000;
const REPORT_RESCAN_MS = 600_000;

export interface BlkioAccountingOptions {
  layout: CgroupLayout;
  /** --enable-blkio-accounting */
  enable: boolean;
  log: Logger;
  sysRoot?: string;
  rescanMs?: number;
}

export interface AccountingScan {
  /** Disks (with media) whose I/O blk-throttle counts. */
  accounted: string[];
  /** Disks whose I/O it does not count. */
  unaccounted: string[];
  /** Disks we set a rule on in this scan. */
  ruled: string[];
}

export class BlkioAccounting {
  private readonly rootDirectory: string | undefined;
  private readonly reported = new Set<string>();
  private readonly refused = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private created = false;

  constructor(private readonly options: BlkioAccountingOptions) {
    this.rootDirectory = findV1Hierarchy(options.layout, 'blkio')?.mountPoint;
  }

  private get ruleDirectory(): string | undefined {
    return this.rootDirectory === undefined ? undefined : path.join(this.rootDirectory, ACCOUNTING_CGROUP);
  }

  /** Scans now, then every RESCAN_MS or REPORT_RESCAN_MS (see above). Does nothing without a v1 blkio
   * hierarchy (io.stat on v2 needs no rule). */
  start(): void {
    if (this.rootDirectory === undefined) {
      if (this.options.enable) this.options.log.info('--enable-blkio-accounting: there is no cgroup v1 blkio hierarchy; cgroup v2 io.stat counts I/O without throttle rules, nothing to do');
      return;
    }
    this.scan();
    const period = this.options.rescanMs ?? (this.options.enable ? RESCAN_MS : REPORT_RESCAN_MS);
    this.timer = setInterval(() => this.scan(), period);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    const directory = this.ruleDirectory;
    if (!this.created || directory === undefined) return;
    try {
      fs.rmdirSync(directory);
      this.options.log.info({ cgroup: directory }, 'removed the no-op blkio throttle rules');
    } catch (err) {
      this.options.log.warn({ cgroup: directory, err }, 'could not remove the cgroup holding the no-op blkio throttle rules');
    }
    this.created = false;
  }

  scan(): AccountingScan {
    const result: AccountingScan = { accounted: [], unaccounted: [], ruled: [] };
    if (this.rootDirectory === undefined) return result;
    const disks = listDisks(this.options.sysRoot).filter((disk) => disk.sectors > 0);
    if (this.options.enable) result.ruled = this.setRules(disks);
    const accounted = accountedDevices(this.rootDirectory);
    if (accounted === undefined) {
      this.reportOnce('no-throttle', () =>
        this.options.log.warn({ directory: this.rootDirectory }, 'blkio: no blkio.throttle.* files (kernel without blk-throttle): /proc/diskstats uses BFQ counters where present, else shows containers no I/O'),
      );
      return result;
    }
    for (const disk of disks) (accounted.has(disk.device) ? result.accounted : result.unaccounted).push(disk.name);
    const fresh = disks.filter((disk) => !accounted.has(disk.device) && !this.reported.has(disk.device));
    if (fresh.length > 0) {
      for (const disk of fresh) this.reported.add(disk.device);
      this.options.log.warn(
        { devices: fresh.map(describe) },
        this.options.enable
          ? 'blkio: could not switch on I/O accounting for these disks; /proc/diskstats shows containers no I/O on them'
          : 'blkio: the kernel does not count I/O per cgroup on these disks until a throttle rule exists on them (Linux >= 6.10), so /proc/diskstats shows containers no I/O there; --enable-blkio-accounting sets a no-op rule to switch counting on',
      );
    }
    return result;
  }

  /** Sets the no-op rule on every disk that has none in our cgroup; returns the disks newly ruled. */
  private setRules(disks: Disk[]): string[] {
    const directory = this.ruleDirectory!;
    try {
      fs.mkdirSync(directory);
      this.created = true;
      this.options.log.info({ cgroup: directory }, '--enable-blkio-accounting: setting a no-op read limit (1 EiB/s) on every disk in an empty cgroup');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        this.reportOnce('mkdir', () => this.options.log.error({ cgroup: directory, err }, '--enable-blkio-accounting: cannot create the cgroup for the no-op rules'));
        return [];
      }
      this.created = true; // left by a daemon that was killed: ours to reuse and remove
    }
    const file = path.join(directory, 'blkio.throttle.read_bps_device');
    const ruled = new Set(parseRwstatDevices(readTextFile(file) ?? ''));
    const added: string[] = [];
    for (const disk of disks) {
      if (ruled.has(disk.device) || this.refused.has(disk.device)) continue;
      try {
        fs.writeFileSync(file, `${disk.device} ${NO_OP_READ_BPS}`);
        added.push(disk.name);
      } catch (err) {
        this.refused.add(disk.device);
        this.options.log.debug({ device: describe(disk), err }, 'the kernel refused a throttle rule on this device');
      }
    }
    if (added.length > 0) this.options.log.info({ devices: added }, 'blkio I/O accounting switched on');
    return added;
  }

  private reportOnce(key: string, report: () => void): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    report();
  }
}

/** `MAJ:MIN value` lines of a throttle limit file. */
function parseRwstatDevices(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((device) => /^\d+:\d+$/.test(device));
}

function describe(disk: Disk): string {
  return `${disk.name} (${disk.device})`;
}
