// Detection of disks whose I/O v1 cgroups do not count (Linux >= 6.10), and the opt-in no-op rules.

import fs from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ACCOUNTING_CGROUP, BlkioAccounting, NO_OP_READ_BPS } from '../../../src/lxcfs/blkio-accounting.js';
import { detectCgroupLayout } from '../../../src/host/cgroup-layout.js';
import { rwstat } from '../../fixtures/activity.js';
import { hybridHost, unifiedHost, type HostTree } from '../../fixtures/host-tree.js';

let tree: HostTree;
afterEach(() => tree.remove());

function recordingLog(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { log, lines };
}

function hostWithDisks(): HostTree {
  tree = hybridHost();
  tree.write('sys/block/vda/dev', '254:0\n').write('sys/block/vda/size', '41943040\n');
  tree.write('sys/block/loop0/dev', '7:0\n').write('sys/block/loop0/size', '0\n'); // unbound: skipped
  tree.write('sys/block/loop1/dev', '7:1\n').write('sys/block/loop1/size', '131072\n');
  // blk-throttle lists (and counts) only loop1
  tree.cgroup('blkio', '/', { 'blkio.throttle.io_serviced_recursive': rwstat({ '7:1': { Write: 1 } }) });
  return tree;
}

describe('BlkioAccounting', () => {
  it('without the flag: reports the unaccounted disks once and changes nothing', () => {
    const { log, lines } = recordingLog();
    const accounting = new BlkioAccounting({ layout: detectCgroupLayout(hostWithDisks().roots), enable: false, log, sysRoot: `${tree.root}/sys` });
    expect(accounting.scan()).toEqual({ accounted: ['loop1'], unaccounted: ['vda'], ruled: [] });
    accounting.scan();
    const warnings = lines.filter((line) => line.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ devices: ['vda (254:0)'] });
    expect(String(warnings[0]!.msg)).toContain('--enable-blkio-accounting');
    expect(fs.existsSync(`${tree.roots.cgroupRoot}/blkio/${ACCOUNTING_CGROUP}`)).toBe(false);
    accounting.stop();
  });

  it('with the flag: sets the no-op rule on each disk with media in its own cgroup, and removes that cgroup at stop', () => {
    const { log } = recordingLog();
    const accounting = new BlkioAccounting({ layout: detectCgroupLayout(hostWithDisks().roots), enable: true, log, sysRoot: `${tree.root}/sys` });
    const scan = accounting.scan();
    expect(scan.ruled.sort()).toEqual(['loop1', 'vda']);
    const ruleFile = `${tree.roots.cgroupRoot}/blkio/${ACCOUNTING_CGROUP}/blkio.throttle.read_bps_device`;
    // A regular file keeps only the last write; the kernel's keeps one line per device.
    expect(fs.readFileSync(ruleFile, 'utf8')).toMatch(new RegExp(`^(254:0|7:1) ${NO_OP_READ_BPS}$`));
    fs.rmSync(ruleFile); // what rmdir does to a real cgroup's rules
    accounting.stop();
    expect(fs.existsSync(`${tree.roots.cgroupRoot}/blkio/${ACCOUNTING_CGROUP}`)).toBe(false);
  });

  it('does nothing on a cgroup2 host (io.stat counts without rules)', () => {
    tree = unifiedHost();
    const { log, lines } = recordingLog();
    const accounting = new BlkioAccounting({ layout: detectCgroupLayout(tree.roots), enable: true, log, sysRoot: `${tree.root}/sys` });
    accounting.start();
    accounting.stop();
    expect(lines.map((line) => line.msg)).toEqual([expect.stringContaining('cgroup v2 io.stat counts I/O without throttle rules')]);
  });
});
