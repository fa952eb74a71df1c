// The whole /sys/devices/system/cpu of our tree bound over a simulated container's own (as the README's
// recipe does), next to its cpuinfo and stat: every client that counts CPUs, whatever file it reads,
// sees the same number, and the directory names only the CPUs the container sees (cgroup v1, 2 CPUs).

import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCgroups, type TestCgroup } from '../helpers/cgroups.js';
import { Cleanup, run, startDaemon } from '../helpers/processes.js';

const BINDS = ['proc/cpuinfo', 'proc/stat', 'sys/devices/system/cpu'];
const cleanup = new Cleanup();
let ours: string;
let oursCfs: string;

beforeAll(async () => {
  expect(os.cpus().length, 'these tests expect a 2-CPU host').toBe(2);
  const dir = cleanup.tempDir();
  ours = path.join(dir, 'mnt');
  oursCfs = path.join(dir, 'mnt-cfs');
  await Promise.all([
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
    ['-c', `${join} && exec unshare --pid --fork --mount --mount-proc --propagation private sh -c "$1"`, 'sh', `${binds} || exit 1\n${script}`],
    { timeout: 60_000 },
  );
  if (result.status !== 0) throw new Error(`container script failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** Every client's CPU count, one `name: count` line each. */
const COUNTS = `echo "getconf CONF: $(getconf _NPROCESSORS_CONF)"
echo "getconf ONLN: $(getconf _NPROCESSORS_ONLN)"
echo "nproc --all: $(nproc --all)"
echo "nproc: $(nproc)"
echo "lscpu CPU(s): $(lscpu | sed -n 's/^CPU(s): *//p')"
echo "lscpu on-line: $(lscpu | sed -n 's/^On-line CPU(s) list: *//p')"
echo "python3: $(python3 -c 'import os; print(os.cpu_count())')"
echo "node: $(node -e 'console.log(require("os").cpus().length)')"
echo "cpuinfo: $(grep -c ^processor /proc/cpuinfo)"
echo "stat: $(grep -c '^cpu[0-9]' /proc/stat)"`;

function counts(out: string): Record<string, string> {
  return Object.fromEntries(out.trim().split('\n').map((line) => line.split(': ') as [string, string]));
}

/** What the container sees in its cpu directory: the listing's cpuN names and the files that name CPUs. */
const DIRECTORY = `cd /sys/devices/system/cpu
echo "cpus: $(ls -d cpu[0-9]* | tr '\\n' ' ')"
for f in online present possible offline; do echo "$f: $(cat $f)"; done
for c in cpu[0-9]*; do
  echo "$c/online: $(cat $c/online)"
  for f in thread_siblings_list core_cpus_list package_cpus_list core_siblings_list thread_siblings package_cpus; do
    echo "$c/topology/$f: $(cat $c/topology/$f)"
  done
done
echo "cpu0/online writable: $(test -w cpu0/online && echo yes || echo no)"`;

describe('a container with cpuset {1}', () => {
  it('counts 1 CPU in every client', () => {
    const found = counts(inContainer(containerCgroups('1'), ours, COUNTS));
    expect(found).toEqual({
      'getconf CONF': '1',
      'getconf ONLN': '1',
      'nproc --all': '1',
      nproc: '1',
      'lscpu CPU(s)': '1',
      'lscpu on-line': '1',
      python3: '1',
      node: '1',
      cpuinfo: '1',
      stat: '1',
    });
  });

  it('sees CPU 1 only in the cpu directory, under the number online shows, its topology cut to itself', () => {
    const seen = counts(inContainer(containerCgroups('1'), ours, DIRECTORY));
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
});

describe('a container with cpuset {0,1}, a quota of 0.5 and --enable-cfs', () => {
  it('counts 1 CPU in every client', () => {
    const found = counts(inContainer(containerCgroups('0-1', 0.5), oursCfs, COUNTS));
    // nproc counts the affinity mask, which no file can change: the cpuset's 2 CPUs. And nproc --all
    // (gnulib) never answers less than that when the files say 1 or 2, so it too shows 2.
    expect(found).toEqual({
      'getconf CONF': '1',
      'getconf ONLN': '1',
      'nproc --all': '2',
      nproc: '2',
      'lscpu CPU(s)': '1',
      'lscpu on-line': '0',
      python3: '1',
      node: '1',
      cpuinfo: '1',
      stat: '1',
    });
  });

  it('sees cpu0 only, online, its topology masks naming cpu0 alone', () => {
    const seen = counts(inContainer(containerCgroups('0-1', 0.5), oursCfs, DIRECTORY));
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
    const host = run('sh', ['-c', `ls -d ${ours}/sys/devices/system/cpu/cpu[0-9]* | xargs -n1 basename | tr '\\n' ' '`]).stdout;
    expect(host).toBe('cpu0 cpu1 ');
  });
});
