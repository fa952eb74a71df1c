// The whole /sys/devices/system/cpu of our tree bound over a simulated container's own (as the README's
// recipe does), next to its cpuinfo and stat: every client that counts CPUs, whatever file it reads,
// sees the same number, and the directory names only the CPUs the container sees (cgroup v1, 2 CPUs).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exemptFields } from '../compat/differences.js';
import { createCgroups, type TestCgroup } from '../helpers/cgroups.js';
import { startLxcfs, type LxcfsPeer } from '../helpers/lxcfs-peer.js';
import { allCounting, CPU_COUNTS, CPU_DIRECTORY, namedLines } from '../helpers/cpu-clients.js';
import { Cleanup, type Daemon, openFileTargets, run, servingPid, startDaemon } from '../helpers/processes.js';

const BINDS = ['proc/cpuinfo', 'proc/stat', 'sys/devices/system/cpu'];
const cleanup = new Cleanup();
let ours: string;
let oursDaemon: Daemon;
let oursCfs: string;
let lxcfs: LxcfsPeer;

beforeAll(async () => {
  expect(os.cpus().length, 'these tests expect a 2-CPU host').toBe(2);
  const dir = cleanup.tempDir();
  ours = path.join(dir, 'mnt');
  oursCfs = path.join(dir, 'mnt-cfs');
  [lxcfs, oursDaemon] = await Promise.all([
    startLxcfs(cleanup),
    startDaemon(cleanup, ['-p', path.join(dir, 'pid'), ours], ours),
    startDaemon(cleanup, ['--enable-cfs', '-p', path.join(dir, 'pid-cfs'), oursCfs], oursCfs),
  ]);
}, 60_000);

afterAll(() => cleanup.run());

function containerCgroups(cpus: string, quota?: number): TestCgroup[] {
  const cgroups = createCgroups(cleanup, ['cpuset', 'cpu', 'cpuacct'], 'lxcfs-ts-cpudir');
  cgroups[0]!.write('cpuset.cpus', cpus);
  if (quota !== undefined) cgroups[1]!.write('cpu.cfs_quota_us', Math.round(quota * 100000));
  return cgroups;
}

/** Runs `script` as pid 1 of a fresh pid + mount namespace in `cgroups`, with the files and the cpu
 * directory of the mount `mnt` bound over its own. */
function inContainer(cgroups: readonly TestCgroup[], mnt: string, script: string): string {
  const binds = BINDS.map((file) => `mount --bind ${mnt}/${file} /${file}`).join(' && ');
  const join = cgroups.map((cgroup) => `echo $$ > ${cgroup.dir}/cgroup.procs`).join(' && ');
  const result = run(
    'sh',
    [
      '-c',
      `${join} && exec unshare --pid --fork --mount --mount-proc --propagation private sh -c "$1"`,
      'sh',
      `${binds} || exit 1\n${script}`,
    ],
    { timeout: 60_000 },
  );
  if (result.status !== 0) throw new Error(`container script failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

describe('a container with cpuset {1}', () => {
  it('counts 1 CPU in every client', () => {
    expect(namedLines(inContainer(containerCgroups('1'), ours, CPU_COUNTS))).toEqual(allCounting('1', '1'));
  });

  it('sees CPU 1 only in the cpu directory, under the number online shows, its topology cut to itself', () => {
    const seen = namedLines(inContainer(containerCgroups('1'), ours, CPU_DIRECTORY));
    expect(seen).toMatchObject({
      cpus: 'cpu1 ',
      online: '1',
      present: '1',
      possible: '1',
      offline: '',
      'cpu1/online': '1',
      'cpu1/topology/thread_siblings_list': '1',
      'cpu1/topology/core_cpus_list': '1',
      'cpu1/topology/package_cpus_list': '1',
      'cpu1/topology/core_siblings_list': '1',
      'cpu1/topology/thread_siblings': '2',
      'cpu1/topology/package_cpus': '2',
      'cpu0/online writable': 'no',
    });
    expect(seen).not.toHaveProperty('cpu0/online');
  });

  it("differs from Debian's lxcfs, which shows the host's CPUs there, as test/compat/differences.ts says", () => {
    const theirs = namedLines(inContainer(containerCgroups('1'), lxcfs.mountPoint, CPU_DIRECTORY));
    expect(theirs).toMatchObject({ cpus: 'cpu0 cpu1 ', online: '1', present: '0-1', possible: '0-1' });
    for (const field of ['present', 'possible', 'offline', 'cpuN entries', 'cpuN/online', 'topology masks and lists']) {
      expect(exemptFields('sys/devices/system/cpu', 'v1').has(field), field).toBe(true);
    }
  });
});

describe('a container with cpuset {0,1}, a quota of 0.5 and --enable-cfs', () => {
  it('counts 1 CPU in every client', () => {
    // nproc counts the affinity mask, which no file can change: the cpuset's 2 CPUs. And nproc --all
    // (gnulib) never answers less than that when the files say 1 or 2, so it too shows 2.
    const found = namedLines(inContainer(containerCgroups('0-1', 0.5), oursCfs, CPU_COUNTS));
    expect(found).toEqual({ ...allCounting('1', '0'), 'nproc --all': '2', nproc: '2' });
  });

  it('sees cpu0 only, online, its topology masks naming cpu0 alone', () => {
    const seen = namedLines(inContainer(containerCgroups('0-1', 0.5), oursCfs, CPU_DIRECTORY));
    expect(seen).toMatchObject({
      cpus: 'cpu0 ',
      online: '0',
      present: '0',
      possible: '0',
      offline: '',
      'cpu0/online': '1',
      'cpu0/topology/thread_siblings_list': '0',
      'cpu0/topology/package_cpus_list': '0',
      'cpu0/topology/thread_siblings': '1',
      'cpu0/topology/package_cpus': '1',
    });
    expect(seen).not.toHaveProperty('cpu1/online');
  });
});

describe('two containers at once on one mount', () => {
  it('each sees its own cpu directory, also right after the other walked it', () => {
    const [first, second] = [containerCgroups('0'), containerCgroups('1')];
    const listing = `ls -d /sys/devices/system/cpu/cpu[0-9]* | tr '\\n' ' '; cat /sys/devices/system/cpu/cpu*/topology/core_cpus_list | tr '\\n' ' '`;
    for (let round = 0; round < 3; round++) {
      expect(inContainer(first, ours, listing)).toBe('/sys/devices/system/cpu/cpu0 0 ');
      expect(inContainer(second, ours, listing)).toBe('/sys/devices/system/cpu/cpu1 1 ');
    }
    const host = run('sh', [
      '-c',
      `ls -d ${ours}/sys/devices/system/cpu/cpu[0-9]* | xargs -n1 basename | tr '\\n' ' '`,
    ]).stdout;
    expect(host).toBe('cpu0 cpu1 ');
  });
});

describe('host files of the cpu directory', () => {
  it('are read through descriptors the serving process keeps open, as the served files are', async () => {
    const file = '/sys/devices/system/cpu/kernel_max';
    const expected = fs.readFileSync(file, 'latin1');
    for (let i = 0; i < 3; i++) expect(run('cat', [path.join(ours, file)]).stdout).toBe(expected);
    expect(openFileTargets(await servingPid(oursDaemon))).toContain(file);
  });
});
