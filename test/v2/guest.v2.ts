// The guest itself: what every other v2 test relies on. A real cgroup2 hierarchy with the controllers
// the views read, the kernel devices the tests make (loop, zram swap), and Debian's lxcfs serving from
// it as the reference of the differential tests.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Cleanup, run } from '../helpers/processes.js';
import { CGROUP_ROOT, cgroupOf, enableZramSwap, isCgroup2, makeCgroup, makeLoopDevice, meminfoValue, readCgroup, runIn } from './guest.js';
import { startLxcfs } from '../helpers/lxcfs-peer.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

describe('the guest kernel', () => {
  it('is Debian 12\'s 6.1 with cgroup2 at /sys/fs/cgroup and the controllers the views read', () => {
    expect(os.release()).toMatch(/^6\.1\.\d+-\d+-amd64$/);
    expect(isCgroup2()).toBe(true);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === CGROUP_ROOT);
    expect(mounts).toHaveLength(1);
    expect(mounts[0]).toMatch(/ - cgroup2 cgroup2 /);
    for (const file of ['cgroup.controllers', 'cgroup.subtree_control']) {
      expect(readCgroup(CGROUP_ROOT, file).split(' '), file).toEqual(expect.arrayContaining(['cpuset', 'cpu', 'io', 'memory', 'pids']));
    }
    expect(cgroupOf('self')).toBe('/');
    // Pressure files exist (CONFIG_PSI=y, on by default).
    expect(fs.readFileSync('/proc/pressure/memory', 'utf8')).toMatch(/^some avg10=/);
  });

  it('puts a process into a nested cgroup whose limits the kernel reports', () => {
    const parent = makeCgroup(cleanup, { 'memory.max': '500M', 'cpu.max': '50000 100000' });
    const child = makeCgroup(cleanup, { 'memory.max': '900M', 'cpuset.cpus': '1' }, parent);
    expect(readCgroup(parent, 'memory.max')).toBe(String(500 * 2 ** 20));
    expect(readCgroup(child, 'cpuset.cpus.effective')).toBe('1');
    const result = runIn(child, 'sh', ['-c', 'cat /proc/self/cgroup; nproc']);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe(`0::/${path.relative(CGROUP_ROOT, child)}\n1\n`);
  });

  it('has /dev/fuse, fusectl, loop devices and zram swap', () => {
    expect(fs.statSync('/dev/fuse').isCharacterDevice()).toBe(true);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).toMatch(/ \/sys\/fs\/fuse\/connections .* - fusectl /);
    const dir = cleanup.tempDir();
    const loop = makeLoopDevice(cleanup, dir, 16);
    expect(loop.majMin).toMatch(/^7:\d+$/);
    expect(run('dd', ['if=/dev/zero', `of=${loop.device}`, 'bs=64k', 'count=16', 'oflag=direct', 'status=none']).status).toBe(0);
    expect(fs.readFileSync('/proc/diskstats', 'utf8')).toMatch(new RegExp(`^\\s*7\\s+${loop.majMin.split(':')[1]} ${path.basename(loop.device)} `, 'm'));
    enableZramSwap(cleanup, 64);
    expect(fs.readFileSync('/proc/swaps', 'utf8')).toMatch(/^\/dev\/zram0\s+partition\s+65532\s/m);
  });
});

describe('Debian\'s lxcfs 5.0.3 in the guest (the reference)', () => {
  it('serves meminfo: the host\'s at the root, memory.max inside a cgroup', async () => {
    const lxcfs = await startLxcfs(cleanup);
    const meminfo = path.join(lxcfs.mountPoint, 'proc/meminfo');
    const hostTotal = meminfoValue(fs.readFileSync('/proc/meminfo', 'utf8'), 'MemTotal');
    expect(meminfoValue(run('cat', [meminfo]).stdout, 'MemTotal')).toBe(hostTotal);
    const cgroup = makeCgroup(cleanup, { 'memory.max': '256M' });
    const inside = runIn(cgroup, 'cat', [meminfo]);
    expect(inside.status, inside.stderr).toBe(0);
    expect(meminfoValue(inside.stdout, 'MemTotal')).toBe(256 * 1024);
  });
});
