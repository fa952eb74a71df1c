// Per-cgroup I/O: io.stat and the v1 blkio files parsed, mapped to /proc/diskstats columns.

import { afterEach, describe, expect, it } from 'vitest';
import { accountedDevices, emptyDeviceIo, ioFromCfq, listDisks, parseIoStat, parseRwstat, readBlkioV1, readIoV2 } from '../../../src/host/io.js';
import type { CgroupLocation } from '../../../src/host/cgroup-location.js';
import { renderDiskstats } from '../../../src/views/diskstats.js';
import { HOST_DISKSTATS, rwstat } from '../../fixtures/activity.js';
import { HostTree } from '../../fixtures/host-tree.js';

/** io.stat of a container on a 6.x kernel: vda with reads, writes and discards; a loop device. */
const IO_STAT = `254:0 rbytes=1048576 wbytes=67108864 rios=256 wios=128 dbytes=4096 dios=1
7:1 rbytes=0 wbytes=67108864 rios=0 wios=128 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=0 cost.wait=0 cost.indebt=0 cost.indelay=0
7:0 rbytes=0 wbytes=0 rios=0 wios=0 dbytes=0 dios=0
`;

let tree: HostTree | undefined;
afterEach(() => tree?.remove());

function cgroupAt(dir: string, path = '/c'): CgroupLocation {
  return { hierarchy: { version: 1, controllers: ['blkio'], mountPoint: '/unused', mountRoot: '/' }, path, directory: dir };
}

describe('parsing', () => {
  it('reads io.stat, ignoring keys it does not map', () => {
    const devices = parseIoStat(IO_STAT);
    expect(devices.get('254:0')).toEqual({ ...emptyDeviceIo(), readBytes: 1048576, writeBytes: 67108864, reads: 256, writes: 128, discardBytes: 4096, discards: 1 });
    expect(devices.get('7:1')).toMatchObject({ writes: 128, writeBytes: 67108864, reads: 0 });
    expect([...devices.keys()]).toEqual(['254:0', '7:1', '7:0']);
  });

  it('reads v1 rwstat files', () => {
    const stat = parseRwstat(rwstat({ '7:1': { Write: 128 }, '254:0': { Read: 3, Discard: 2 } }));
    expect(stat.get('7:1')?.get('Write')).toBe(128);
    expect(stat.get('254:0')?.get('Discard')).toBe(2);
    expect(stat.has('Total')).toBe(false);
    expect(parseRwstat('Total 0\n').size).toBe(0);
  });

  it('maps the five CFQ files as lxcfs does (times in ns, truncated to ms and added)', () => {
    const serviced = parseRwstat(rwstat({ '8:0': { Read: 10, Write: 20, Discard: 1 } }));
    const merged = parseRwstat(rwstat({ '8:0': { Read: 2, Write: 3 } }));
    const bytes = parseRwstat(rwstat({ '8:0': { Read: 40960, Write: 81920, Discard: 4096 } }));
    const wait = parseRwstat(rwstat({ '8:0': { Read: 1_999_999, Write: 5_000_000 } }));
    const service = parseRwstat(rwstat({ '8:0': { Read: 3_500_000, Write: 7_000_000 } }));
    expect(ioFromCfq(serviced, merged, bytes, wait, service).get('8:0')).toEqual({
      reads: 10, readsMerged: 2, readBytes: 40960, readMs: 1 + 3,
      writes: 20, writesMerged: 3, writeBytes: 81920, writeMs: 5 + 7, ioMs: 10,
      discards: 1, discardsMerged: 0, discardBytes: 4096, discardMs: 0,
    });
  });
});

describe('reading a cgroup', () => {
  it('v1: blk-throttle counters, with BFQ\'s for devices blk-throttle did not count', () => {
    tree = HostTree.create();
    tree.cgroup('blkio', '/c', {
      'blkio.throttle.io_serviced_recursive': rwstat({ '7:1': { Write: 128 }, '8:0': {} }),
      'blkio.throttle.io_service_bytes_recursive': rwstat({ '7:1': { Write: 67108864 }, '8:0': {} }),
      'blkio.bfq.io_serviced_recursive': rwstat({ '8:0': { Read: 5 }, '7:1': { Write: 999 } }),
      'blkio.bfq.io_service_bytes_recursive': rwstat({ '8:0': { Read: 20480 }, '7:1': { Write: 999 } }),
    });
    const io = readBlkioV1(cgroupAt(`${tree.roots.cgroupRoot}/blkio/c`));
    expect(io.ok && io.value.source).toBe('blkio.throttle.*_recursive + blkio.bfq.*_recursive');
    if (!io.ok) return;
    expect(io.value.devices.get('7:1')).toMatchObject({ writes: 128, writeBytes: 67108864 });
    expect(io.value.devices.get('8:0')).toMatchObject({ reads: 5, readBytes: 20480 });
  });

  it('v1: prefers the CFQ files when all five exist, and fails (host file) without any counters', () => {
    tree = HostTree.create();
    const files = ['io_serviced', 'io_merged', 'io_service_bytes', 'io_wait_time', 'io_service_time'];
    tree.cgroup('blkio', '/cfq', Object.fromEntries(files.map((f) => [`blkio.${f}_recursive`, rwstat({ '8:0': { Read: 1 } })])));
    tree.cgroup('blkio', '/none');
    const cfq = readBlkioV1(cgroupAt(`${tree.roots.cgroupRoot}/blkio/cfq`));
    expect(cfq.ok && cfq.value.source).toBe('blkio.io_*_recursive (CFQ)');
    expect(readBlkioV1(cgroupAt(`${tree.roots.cgroupRoot}/blkio/none`)).ok).toBe(false);
  });

  it('v2: io.stat, and a failure where the io controller is not enabled', () => {
    tree = HostTree.create();
    tree.cgroup('', '/c', { 'io.stat': IO_STAT });
    tree.cgroup('', '/no-io');
    const io = readIoV2(cgroupAt(`${tree.roots.cgroupRoot}/c`));
    expect(io.ok && io.value.devices.get('254:0')?.writes).toBe(128);
    expect(readIoV2(cgroupAt(`${tree.roots.cgroupRoot}/no-io`)).ok).toBe(false);
  });
});

describe('renderDiskstats', () => {
  it('shows only devices with I/O, in the host\'s order and layout, sectors = bytes / 512, 17 columns after the name', () => {
    const text = renderDiskstats(HOST_DISKSTATS, parseIoStat(IO_STAT));
    expect(text).toBe(
      '   7       1 loop1 0 0 0 0 128 0 131072 0 0 0 0 0 0 0 0 0 0\n' +
        ' 254       0 vda 256 0 2048 0 128 0 131072 0 0 0 0 1 0 8 0 0 0\n',
    );
    for (const line of text.trim().split('\n')) expect(line.trim().split(/\s+/)).toHaveLength(20);
  });

  it('keeps the host\'s column count on older kernels (14 or 18 columns in all)', () => {
    const old = ' 254       0 vda 1 2 3 4 5 6 7 8 9 10 11\n';
    const discards = ' 254       0 vda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n';
    const devices = parseIoStat(IO_STAT);
    expect(renderDiskstats(old, devices)).toBe(' 254       0 vda 256 0 2048 0 128 0 131072 0 0 0 0\n');
    expect(renderDiskstats(discards, devices)).toBe(' 254       0 vda 256 0 2048 0 128 0 131072 0 0 0 0 1 0 8 0\n');
  });

  it('is empty for a container without I/O; partitions never get a line (cgroups count per disk)', () => {
    expect(renderDiskstats(HOST_DISKSTATS, new Map())).toBe('');
    expect(renderDiskstats(HOST_DISKSTATS, parseIoStat('7:0 rbytes=0 wbytes=0 rios=0 wios=0 dbytes=0 dios=0\n'))).toBe('');
    expect(renderDiskstats(HOST_DISKSTATS, parseIoStat(IO_STAT))).not.toContain('vda1');
  });
});

describe('accounting detection', () => {
  it('lists disks from /sys/block and the devices blk-throttle counts from the root\'s file', () => {
    tree = HostTree.create();
    tree.write('sys/block/vda/dev', '254:0\n').write('sys/block/vda/size', '41943040\n');
    tree.write('sys/block/loop0/dev', '7:0\n').write('sys/block/loop0/size', '0\n');
    expect(listDisks(`${tree.root}/sys`).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'loop0', device: '7:0', sectors: 0 },
      { name: 'vda', device: '254:0', sectors: 41943040 },
    ]);
    tree.cgroup('blkio', '/', { 'blkio.throttle.io_serviced_recursive': rwstat({ '7:1': { Write: 4 } }) });
    expect(accountedDevices(`${tree.roots.cgroupRoot}/blkio`)).toEqual(new Set(['7:1']));
    tree.write('sys/fs/cgroup/blkio/blkio.throttle.io_serviced_recursive', 'Total 0\n');
    expect(accountedDevices(`${tree.roots.cgroupRoot}/blkio`)).toEqual(new Set());
    expect(accountedDevices(`${tree.roots.cgroupRoot}/nothing`)).toBeUndefined();
  });
});
