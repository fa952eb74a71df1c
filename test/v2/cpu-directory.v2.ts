// The whole cpu directory of our tree bound over a cgroup2 container's own, next to its cpuinfo and
// stat: every client counts the same CPUs (the host suite's test/integration/cpu-directory.test.ts,
// on a real cgroup2 kernel, where the cpuset is cpuset.cpus.effective and the quota cpu.max).

import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allCounting, CPU_COUNTS, CPU_DIRECTORY, namedLines } from '../helpers/cpu-clients.js';
import { Cleanup, startDaemon } from '../helpers/processes.js';
import { inContainer, makeCgroup } from './guest.js';

const BINDS = ['proc/cpuinfo', 'proc/stat', 'sys/devices/system/cpu'];
const cleanup = new Cleanup();
let ours: string;
let oursCfs: string;

beforeAll(async () => {
  const dir = cleanup.tempDir();
  ours = path.join(dir, 'mnt');
  oursCfs = path.join(dir, 'mnt-cfs');
  await Promise.all([
    startDaemon(cleanup, ['-p', path.join(dir, 'pid'), ours], ours),
    startDaemon(cleanup, ['--enable-cfs', '-p', path.join(dir, 'pid-cfs'), oursCfs], oursCfs),
  ]);
});

afterAll(() => cleanup.run());

describe('a cgroup2 container with cpuset {1}', () => {
  it('counts 1 CPU in every client, and sees only cpu1 in its cpu directory', () => {
    const cgroup = makeCgroup(cleanup, { 'cpuset.cpus': '1' });
    expect(namedLines(inContainer(cgroup, ours, BINDS, CPU_COUNTS))).toEqual(allCounting('1', '1'));
    const seen = namedLines(inContainer(cgroup, ours, BINDS, CPU_DIRECTORY));
    expect(seen).toMatchObject({
      cpus: 'cpu1 ',
      present: '1',
      possible: '1',
      offline: '',
      'cpu1/online': '1',
      'cpu1/topology/core_cpus_list': '1',
    });
  });
});

describe('a cgroup2 container with cpuset {0,1}, cpu.max 0.5 CPU and --enable-cfs', () => {
  it('counts 1 CPU in every client but nproc (the affinity mask), and sees only cpu0', () => {
    const cgroup = makeCgroup(cleanup, { 'cpuset.cpus': '0-1', 'cpu.max': '50000 100000' });
    const found = namedLines(inContainer(cgroup, oursCfs, BINDS, CPU_COUNTS));
    expect(found).toEqual({ ...allCounting('1', '0'), 'nproc --all': '2', nproc: '2' });
    const seen = namedLines(inContainer(cgroup, oursCfs, BINDS, CPU_DIRECTORY));
    expect(seen).toMatchObject({
      cpus: 'cpu0 ',
      present: '0',
      possible: '0',
      offline: '',
      'cpu0/online': '1',
      'cpu0/topology/package_cpus_list': '0',
    });
  });
});
