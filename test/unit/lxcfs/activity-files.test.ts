// The activity views wired to a fixture host: who is reading → which cgroup → rendered file, and when
// the host's file (or, for slabinfo, only its header) is served instead.

import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { bindFiles, type Views } from '../../../src/lxcfs/bind.js';
import { allocateCpuState } from '../../../src/lxcfs/cpu-state.js';
import type { ServedPath } from '../../../src/lxcfs/paths.js';
import { SERVED } from '../../../src/lxcfs/registry.js';
import { Host } from '../../../src/host/host.js';
import { SLABINFO_HEADER } from '../../../src/views/slabinfo.js';
import { HOST_DISKSTATS, populate, rwstat } from '../../fixtures/activity.js';
import { hybridHost, unifiedHost, HostTree } from '../../fixtures/host-tree.js';
import { HOST_PID_NAMESPACE, hybridProcCgroup, LEGACY_MOUNTINFO, unifiedProcCgroup } from '../../fixtures/proc-text.js';

const silent = pino({ level: 'silent' });
const CONTAINER_NS = 4026532700;
const HOST_PRESSURE = 'some avg10=12.00 avg60=10.00 avg300=8.00 total=999999999\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n';
const CGROUP_PRESSURE = 'some avg10=0.50 avg60=0.20 avg300=0.05 total=123456\nfull avg10=0.25 avg60=0.10 avg300=0.02 total=65432\n';
const HOST_SLABINFO = `${SLABINFO_HEADER}kmalloc-64          12345  12800     64   64    1 : tunables    0    0    0 : slabdata    200    200      0\n`;

let tree: HostTree;
afterEach(() => tree.remove());

/** The files bound over `host`, as one reader thread has them. */
function activityViews(host: Host, options: { enableLoadavg?: boolean } = {}): Views {
  const { procRoot, cgroupRoot } = host.roots;
  const base = { procRoot, cgroupRoot, disableSwap: false, disableZswap: false, enableCfs: false, cpuState: allocateCpuState(4) };
  return bindFiles({ ...base, ...options }, silent, host);
}

/** What a reader gets: the file's view, or else its fallback made from `host`; undefined means the host's file. */
function text(views: Views, file: ServedPath, pid: number, host: string): string | undefined {
  const content = views[file]?.({ pid, uid: 0, gid: 0 }, () => host);
  if (content !== undefined) return content.toString('latin1');
  return SERVED[file].fallback?.from(Buffer.from(host, 'latin1')).toString('latin1');
}

/** A container (init 3000, a child 3001) in /c1 of every hierarchy, including the cgroup2 one; a host
 * process (400) in the roots. */
function hybridContainer(): Host {
  tree = hybridHost();
  const paths = { '': '/c1', blkio: '/c1', memory: '/c1', cpu: '/c1' };
  tree
    .addProcess({ pid: 3000, pidNamespace: CONTAINER_NS, nsPids: [3000, 1], cgroup: hybridProcCgroup(paths) })
    .addProcess({ pid: 3001, pidNamespace: CONTAINER_NS, nsPids: [3001, 2], ppid: 3000, cgroup: hybridProcCgroup(paths) })
    .addProcess({ pid: 400, pidNamespace: HOST_PID_NAMESPACE, cgroup: hybridProcCgroup() });
  tree.cgroup('unified', '/c1', { 'cpu.pressure': CGROUP_PRESSURE, 'io.pressure': CGROUP_PRESSURE, 'memory.pressure': CGROUP_PRESSURE });
  tree.cgroup('blkio', '/c1', {
    'blkio.throttle.io_serviced_recursive': rwstat({ '7:1': { Write: 128 } }),
    'blkio.throttle.io_service_bytes_recursive': rwstat({ '7:1': { Write: 67108864 } }),
  });
  tree.cgroup('memory', '/c1', { 'memory.kmem.slabinfo': '' });
  populate(tree, 'cpu', '/c1', 1, [{ tid: 3000, state: 'S' }, { tid: 3001, state: 'R' }]);
  return new Host(tree.roots);
}

describe('pressure', () => {
  it('a container reads its cgroup2 cgroup\'s files on a hybrid host; a host process in the root gets the host file', () => {
    const views = activityViews(hybridContainer());
    for (const resource of ['cpu', 'io', 'memory'] as const) {
      expect(text(views, `proc/pressure/${resource}`, 3001, HOST_PRESSURE)).toBe(CGROUP_PRESSURE);
      expect(text(views, `proc/pressure/${resource}`, 400, HOST_PRESSURE)).toBeUndefined();
    }
  });

  it('on a hybrid host, ignores a cgroup2 cgroup at another path than the v1 one (Docker\'s cgroupfs driver: shared by all containers)', () => {
    tree = hybridHost();
    const paths = { '': '/system.slice/docker.service', cpu: '/docker/abc', blkio: '/docker/abc', memory: '/docker/abc' };
    tree.addProcess({ pid: 3000, pidNamespace: CONTAINER_NS, nsPids: [3000, 1], cgroup: hybridProcCgroup(paths) });
    tree.cgroup('unified', '/system.slice/docker.service', { 'cpu.pressure': CGROUP_PRESSURE });
    expect(text(activityViews(new Host(tree.roots)), 'proc/pressure/cpu', 3000, HOST_PRESSURE)).toBeUndefined();
  });

  it('falls back to the host file for a removed cgroup, odd content, or a host without cgroup2', () => {
    const views = activityViews(hybridContainer());
    tree.write('sys/fs/cgroup/unified/c1/io.pressure', 'garbage\n');
    expect(text(views, 'proc/pressure/io', 3001, HOST_PRESSURE)).toBeUndefined();
    tree.remove();
    tree = HostTree.create();
    tree.addDaemon({ pid: 100, pidNamespace: HOST_PID_NAMESPACE, cgroup: '4:memory:/\n' }, LEGACY_MOUNTINFO);
    tree.addProcess({ pid: 3000, pidNamespace: HOST_PID_NAMESPACE, cgroup: '4:memory:/c1\n' });
    expect(text(activityViews(new Host(tree.roots)), 'proc/pressure/cpu', 3000, HOST_PRESSURE)).toBeUndefined();
  });

  it('reads the container\'s own cgroup on a cgroup2 host (init.scope stripped)', () => {
    tree = unifiedHost();
    tree.addProcess({ pid: 3000, pidNamespace: CONTAINER_NS, nsPids: [3000, 1], cgroup: unifiedProcCgroup('/lxc.payload/c1/init.scope') });
    tree.cgroup('', '/lxc.payload/c1', { 'memory.pressure': CGROUP_PRESSURE });
    expect(text(activityViews(new Host(tree.roots)), 'proc/pressure/memory', 3000, HOST_PRESSURE)).toBe(CGROUP_PRESSURE);
  });
});

describe('diskstats', () => {
  it('a container sees the devices it wrote to; a host process in the root cgroup sees the host file', () => {
    const views = activityViews(hybridContainer());
    expect(text(views, 'proc/diskstats', 3001, HOST_DISKSTATS)).toBe('   7       1 loop1 0 0 0 0 128 0 131072 0 0 0 0 0 0 0 0 0 0\n');
    expect(text(views, 'proc/diskstats', 400, HOST_DISKSTATS)).toBeUndefined();
  });

  it('a container without I/O sees no device lines', () => {
    const views = activityViews(hybridContainer());
    tree.write('sys/fs/cgroup/blkio/c1/blkio.throttle.io_serviced_recursive', 'Total 0\n');
    tree.write('sys/fs/cgroup/blkio/c1/blkio.throttle.io_service_bytes_recursive', 'Total 0\n');
    expect(text(views, 'proc/diskstats', 3001, HOST_DISKSTATS)).toBe('');
  });
});

describe('slabinfo', () => {
  it('never shows host slab lines: the header when the cgroup\'s file is empty or missing, the cgroup\'s file when it has content', () => {
    const views = activityViews(hybridContainer());
    expect(text(views, 'proc/slabinfo', 3001, HOST_SLABINFO)).toBe(SLABINFO_HEADER);
    expect(text(views, 'proc/slabinfo', 400, HOST_SLABINFO)).toBe(SLABINFO_HEADER);
    expect(text(views, 'proc/slabinfo', 99999, HOST_SLABINFO)).toBe(SLABINFO_HEADER); // no such process
    const own = `${SLABINFO_HEADER}dentry 10 21 192 21 1 : tunables 0 0 0 : slabdata 1 1 0\n`;
    tree.write('sys/fs/cgroup/memory/c1/memory.kmem.slabinfo', own);
    expect(text(views, 'proc/slabinfo', 3001, HOST_SLABINFO)).toBe(own);
  });
});

describe('loadavg', () => {
  it('is only virtualized with -l', () => {
    expect(activityViews(hybridContainer())['proc/loadavg']).toBeUndefined();
  });

  it('shows a new cgroup as 0.00 0.00 0.00 0/1 <pid of its init>, keyed by the container\'s cpu cgroup', () => {
    const views = activityViews(hybridContainer(), { enableLoadavg: true });
    expect(text(views, 'proc/loadavg', 3001, '9.99 9.99 9.99 1/100 1\n')).toBe('0.00 0.00 0.00 0/1 3000\n');
    expect(text(views, 'proc/loadavg', 400, '')).toBe('0.00 0.00 0.00 0/1 400\n');
  });
});
