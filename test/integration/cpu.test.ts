// CPU views on the real kernel (cgroup v1 here, 2 CPUs): simulated containers in fresh pid and mount
// namespaces with our cpuinfo, stat, uptime and online bind-mounted over theirs, real clients, and
// Debian's lxcfs 5.0.3 side by side on the same cgroups, with and without --enable-cfs.

import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exemptFields } from '../compat/differences.js';
import { createCgroups, type TestCgroup } from '../helpers/cgroups.js';
import { startLxcfs, type LxcfsPeer } from '../helpers/lxcfs-peer.js';
import { Cleanup, run, startDaemon } from '../helpers/processes.js';

const FILES = ['proc/cpuinfo', 'proc/stat', 'proc/uptime', 'sys/devices/system/cpu/online'];
const CONTROLLERS = ['cpuset', 'cpu', 'cpuacct'];
const cleanup = new Cleanup();
/** Our daemon without and with --enable-cfs, and Debian's lxcfs likewise. */
let ours: string;
let oursCfs: string;
let lxcfs: LxcfsPeer;
let lxcfsCfs: LxcfsPeer;

beforeAll(async () => {
  expect(os.cpus().length, 'these tests expect a 2-CPU host').toBe(2);
  const dir = cleanup.tempDir();
  ours = path.join(dir, 'mnt');
  oursCfs = path.join(dir, 'mnt-cfs');
  [lxcfs, lxcfsCfs] = await Promise.all([
    startLxcfs(cleanup),
    startLxcfs(cleanup, ['--enable-cfs']),
    startDaemon(cleanup, ['-p', path.join(dir, 'pid'), ours], ours),
    startDaemon(cleanup, ['--enable-cfs', '-p', path.join(dir, 'pid-cfs'), oursCfs], oursCfs),
  ]);
}, 60_000);

afterAll(() => cleanup.run());

/** A container's cgroups: one name in cpuset, cpu and cpuacct, with `cpus` and a quota in CPUs. Its
 * CPU weight is the maximum, so that what else runs on the host hardly delays its busy loops. */
function containerCgroups(cpus: string, quota?: number): TestCgroup[] {
  const cgroups = createCgroups(cleanup, CONTROLLERS, 'lxcfs-ts-cpu');
  cgroups[0]!.write('cpuset.cpus', cpus);
  cgroups[1]!.write('cpu.shares', 262144);
  if (quota !== undefined) cgroups[1]!.write('cpu.cfs_quota_us', Math.round(quota * 100000));
  return cgroups;
}

/** Runs `script` as pid 1 of a fresh pid + mount namespace in `cgroups`, with the CPU files of the
 * lxcfs mount `mnt` bound over its own (what `docker run -v /var/lib/lxcfs/proc/stat:/proc/stat` does). */
function inContainer(cgroups: readonly TestCgroup[], mnt: string, script: string): string {
  const binds = FILES.map((file) => `mount --bind ${mnt}/${file} /${file}`).join(' && ');
  const join = cgroups.map((cgroup) => `echo $$ > ${cgroup.dir}/cgroup.procs`).join(' && ');
  const result = run(
    'sh',
    ['-c', `${join} && exec unshare --pid --fork --mount --mount-proc --propagation private sh -c "$1"`, 'sh', `${binds} || exit 1\n${script}`],
    { timeout: 60_000 },
  );
  if (result.status !== 0) throw new Error(`container script failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** A shell loop that keeps one CPU busy until killed (`kill $!`). */
const SPIN = `sh -c 'while :; do :; done' &`;

const CLIENTS = `grep -c '^processor' /proc/cpuinfo; grep '^processor' /proc/cpuinfo; cat /sys/devices/system/cpu/online;
getconf _NPROCESSORS_ONLN; python3 -c 'import os; print(os.cpu_count())'; node -e 'console.log(require("os").cpus().length)';
grep '^cpu' /proc/stat | cut -d' ' -f1 | tr '\\n' ' '; echo`;

/** The cpu lines of a /proc/stat as label → numbers. */
function cpuLines(stat: string): Map<string, number[]> {
  return new Map(stat.split('\n').filter((l) => l.startsWith('cpu')).map((l) => [l.split(/\s+/)[0]!, l.split(/\s+/).slice(1).map(Number)]));
}

/** busy / (busy + idle) over the interval between two /proc/stat texts, from their aggregate lines. */
function busyShare(before: string, after: string): number {
  const [a, b] = [cpuLines(before).get('cpu')!, cpuLines(after).get('cpu')!];
  const busy = [0, 1, 2, 4, 5, 6, 7].reduce((sum, column) => sum + b[column]! - a[column]!, 0);
  return busy / (busy + b[3]! - a[3]!);
}

/** Every difference between two /proc/stat texts beyond `tolerance` ticks per field (reads are a few ms
 * apart); the non-cpu lines must have the same keys and btime. */
function statDifferences(ours: string, theirs: string, tolerance: number): string[] {
  const problems: string[] = [];
  const [a, b] = [cpuLines(ours), cpuLines(theirs)];
  if ([...a.keys()].join() !== [...b.keys()].join()) problems.push(`cpu lines: ${[...a.keys()].join(',')} vs ${[...b.keys()].join(',')}`);
  for (const [label, values] of a) {
    values.forEach((value, column) => {
      const other = b.get(label)?.[column];
      if (other === undefined || Math.abs(value - other) > tolerance) problems.push(`${label} column ${column}: ours ${value} lxcfs ${other}`);
    });
  }
  const rest = (text: string) => text.split('\n').filter((l) => l && !l.startsWith('cpu')).map((l) => (l.startsWith('btime') ? l : l.split(' ')[0]));
  if (rest(ours).join() !== rest(theirs).join()) problems.push(`other lines: ${rest(ours).join(',')} vs ${rest(theirs).join(',')}`);
  return problems;
}

/** A difference the test just saw must be in the one table of differences. */
function expectListed(file: string, fields: string): void {
  for (const field of fields.split(', ')) expect(exemptFields(file, 'v1').has(field), `${file} ${field} is in test/compat/differences.ts`).toBe(true);
}

describe('a container with cpuset {1}', () => {
  it('is one CPU for cpuinfo (numbered 0), online, getconf, python, node and /proc/stat', () => {
    const out = inContainer(containerCgroups('1'), ours, CLIENTS).trim().split('\n');
    expect(out).toEqual(['1', 'processor\t: 0', '1', '1', '1', '1', 'cpu cpu1']);
  });

  it('matches Debian lxcfs: cpuinfo and online exactly, stat and uptime within the drift between two reads', () => {
    const L = lxcfs.mountPoint;
    const out = inContainer(
      containerCgroups('1'),
      ours,
      `sleep 0.5; for f in ${FILES.join(' ')}; do cat /$f; echo ---; cat ${L}/$f; echo ---; done`,
    ).split('---\n');
    const [cpuinfo, theirCpuinfo, stat, theirStat, uptime, theirUptime, online, theirOnline] = out;
    expect(cpuinfo).toBe(theirCpuinfo);
    expect(cpuinfo!.match(/^processor.*$/gm)).toEqual(['processor\t: 0']);
    expect(cpuinfo).toMatch(/^core id\t\t: 1$/m);
    expect(online).toBe('1\n');
    expect(online).toBe(theirOnline);
    expect([...cpuLines(stat!).keys()]).toEqual(['cpu', 'cpu1']);
    expect(statDifferences(stat!, theirStat!, 5)).toEqual([]);
    const [age, idle] = uptime!.split(' ').map(Number);
    const [theirAge, theirIdle] = theirUptime!.split(' ').map(Number);
    expect(Math.abs(age! - theirAge!)).toBeLessThan(0.1);
    expect(Math.abs(idle! - theirIdle!)).toBeLessThan(0.1);
  });

  it('has an uptime that starts at its init; idle grows while it sleeps, not while it keeps its CPU busy', () => {
    const out = inContainer(
      containerCgroups('1'),
      ours,
      `sleep 2; cat /proc/uptime; sleep 3; cat /proc/uptime; ${SPIN} sleep 3; cat /proc/uptime; kill $!`,
    );
    const [start, slept, spun] = out.trim().split('\n').map((line) => line.split(' ').map(Number) as [number, number]);
    expect(start![0]).toBeGreaterThan(1.5);
    expect(start![0]).toBeLessThan(2.5);
    expect((slept![1] - start![1]) / (slept![0] - start![0])).toBeGreaterThan(0.8);
    expect((spun![1] - slept![1]) / (spun![0] - slept![0])).toBeLessThan(0.2);
  });

  it('is ≈ 50 % busy on /proc/stat while it spins under a quota of 0.5 CPU, as lxcfs shows it', () => {
    const out = inContainer(
      containerCgroups('1', 0.5),
      ours,
      `${SPIN} sleep 0.5; cat /proc/stat; echo ---; cat ${lxcfs.mountPoint}/proc/stat; echo ---; sleep 3; cat /proc/stat; echo ---; cat ${lxcfs.mountPoint}/proc/stat; kill $!`,
    ).split('---\n');
    expect(busyShare(out[0]!, out[2]!)).toBeGreaterThan(0.4);
    expect(busyShare(out[0]!, out[2]!)).toBeLessThan(0.6);
    expect(busyShare(out[1]!, out[3]!)).toBeCloseTo(busyShare(out[0]!, out[2]!), 1);
  });
});

describe('--enable-cfs', () => {
  it('shows 1 CPU everywhere for a quota of 0.5 on 2 CPUs, like lxcfs', () => {
    const cgroups = containerCgroups('0-1', 0.5);
    expect(inContainer(cgroups, oursCfs, CLIENTS).trim().split('\n')).toEqual(['1', 'processor\t: 0', '0', '1', '1', '1', 'cpu cpu0']);
    const L = lxcfsCfs.mountPoint;
    const out = inContainer(cgroups, oursCfs, `for f in proc/cpuinfo sys/devices/system/cpu/online; do cat /$f; echo ---; cat ${L}/$f; echo ---; done; grep ^cpu ${L}/proc/stat | cut -d' ' -f1 | tr '\\n' ' '`).split('---\n');
    expect(out[0]).toBe(out[1]);
    expect(out[2]).toBe(out[3]);
    expect(out[4]).toBe('cpu cpu0 ');
  });

  it('shows 2 CPUs for a quota of 1.5, like lxcfs', () => {
    const L = lxcfsCfs.mountPoint;
    const out = inContainer(containerCgroups('0-1', 1.5), oursCfs, `${CLIENTS}; cat ${L}/sys/devices/system/cpu/online; grep -c ^processor ${L}/proc/cpuinfo`);
    expect(out.trim().split('\n')).toEqual(['2', 'processor\t: 0', 'processor\t: 1', '0-1', '2', '2', '2', 'cpu cpu0 cpu1 ', '0-1', '2']);
  });

  it('applies a parent\'s quota to the container (lxcfs 5.0.3 reads the container\'s cgroup alone)', () => {
    const parents = containerCgroups('0-1');
    parents[1]!.write('cpu.cfs_quota_us', 50000);
    const container = parents.map((parent) => parent.child('container'));
    const out = inContainer(container, oursCfs, `cat /sys/devices/system/cpu/online ${lxcfsCfs.mountPoint}/sys/devices/system/cpu/online`);
    expect(out).toBe('0\n0-1\n');
    expectListed('online', 'CPU count (--enable-cfs)');
  });

  it('ignores a smaller quota on a sub-cgroup inside the container: the container\'s view applies to all its processes', () => {
    const container = containerCgroups('0-1', 1.5);
    const sub = container[1]!.child('sub');
    sub.write('cpu.cfs_quota_us', 50000);
    const out = inContainer(container, oursCfs, `sh -c 'echo $$ > ${sub.dir}/cgroup.procs; cat /sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo'`);
    expect(out).toBe('0-1\n2\n');
  });

  it('reads the quota at the cpu cgroup, also when it is not at the cpuset cgroup\'s path (lxcfs 5.0.3 reads that path)', () => {
    const [cpuset, , cpuacct] = containerCgroups('0-1');
    const [cpu] = createCgroups(cleanup, ['cpu'], 'lxcfs-ts-cpu-other');
    cpu!.write('cpu.cfs_quota_us', 50000);
    const out = inContainer([cpuset!, cpu!, cpuacct!], oursCfs, `cat /sys/devices/system/cpu/online ${lxcfsCfs.mountPoint}/sys/devices/system/cpu/online; grep -c ^processor /proc/cpuinfo`);
    expect(out).toBe('0\n0-1\n1\n');
    expectListed('cpuinfo', 'CPU count (--enable-cfs)');
  });

  it('caps the stat lines at the CPU count without a cpuacct cgroup at the cpuset path (lxcfs 5.0.3 shows every cpuset CPU)', () => {
    const [cpuset, cpu] = createCgroups(cleanup, ['cpuset', 'cpu'], 'lxcfs-ts-cpu-noacct');
    cpu!.write('cpu.cfs_quota_us', 50000);
    const L = lxcfsCfs.mountPoint;
    const out = inContainer([cpuset!, cpu!], oursCfs, `for f in /proc/stat ${L}/proc/stat; do grep ^cpu $f | cut -d' ' -f1 | tr '\\n' ' '; echo; done; cat ${L}/sys/devices/system/cpu/online`);
    expect(out).toBe('cpu cpu0 \ncpu cpu0 cpu1 \n0\n');
    expectListed('stat', 'cpu lines (--enable-cfs)');
    expectListed('stat', 'user, system, idle');
  });

  it('starts /proc/stat at zero and shows ≈ 50 % busy of the one CPU while the container spins under a quota of 0.5', () => {
    const L = lxcfsCfs.mountPoint;
    const out = inContainer(
      containerCgroups('0-1', 0.5),
      oursCfs,
      `cat /proc/stat; echo ---; cat ${L}/proc/stat; echo ---; ${SPIN} sleep 3; cat /proc/stat; echo ---; cat ${L}/proc/stat; kill $!`,
    ).split('---\n');
    const [first, theirFirst, second, theirSecond] = out as [string, string, string, string];
    expect(cpuLines(first).get('cpu')!.slice(0, 3)).toEqual([0, 0, 0]);
    expect([...cpuLines(second).keys()]).toEqual(['cpu', 'cpu0']);
    const share = busyShare(first, second);
    expect(share).toBeGreaterThan(0.4);
    expect(share).toBeLessThan(0.6);
    // lxcfs moves the same CPU time onto cpu0, but cuts idle to match the fractional quota.
    const busy = (text: string) => cpuLines(text).get('cpu')![0]! + cpuLines(text).get('cpu')![2]!;
    expect(Math.abs(busy(second) - busy(first) - (busy(theirSecond) - busy(theirFirst)))).toBeLessThan(15);
    expect(busyShare(theirFirst, theirSecond)).toBeGreaterThan(0.8);
    expectListed('stat', 'idle (--enable-cfs)');
  });

  it('never lets a counter go back over 200 reads served by both reader threads', () => {
    const out = inContainer(
      containerCgroups('0-1', 1.5),
      oursCfs,
      `${SPIN} i=0; while [ $i -lt 200 ]; do head -3 /proc/stat | tr '\\n' ';'; echo; i=$((i+1)); done; kill $!`,
    );
    const reads = out.trim().split('\n').map((line) => line.split(';').filter(Boolean).map((l) => l.split(/\s+/).slice(1).map(Number)));
    expect(reads).toHaveLength(200);
    const backwards: string[] = [];
    for (let i = 1; i < reads.length; i++) {
      reads[i]!.forEach((values, line) =>
        values.forEach((value, column) => {
          if (value < reads[i - 1]![line]![column]!) backwards.push(`read ${i} line ${line} column ${column}: ${reads[i - 1]![line]![column]} → ${value}`);
        }),
      );
    }
    expect(backwards).toEqual([]);
    expect(reads[199]![0]![0]! + reads[199]![0]![2]!).toBeGreaterThan(0);
  });
});

describe('host processes', () => {
  it('see the host\'s CPUs, and the numbers lxcfs shows them', () => {
    const [stat, theirStat] = [run('cat', [path.join(ours, 'proc/stat')]).stdout, run('cat', [path.join(lxcfs.mountPoint, 'proc/stat')]).stdout];
    expect([...cpuLines(stat).keys()]).toEqual(['cpu', 'cpu0', 'cpu1']);
    // The whole host is busy (the tests themselves): allow for more drift between the two reads.
    expect(statDifferences(stat, theirStat, 30)).toEqual([]);
    expect(run('cat', [path.join(oursCfs, 'sys/devices/system/cpu/online')]).stdout).toBe('0-1\n');
  });
});
