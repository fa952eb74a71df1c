// CPU views on a real cgroup2 kernel: simulated containers (fresh pid and mount namespaces in their own
// cgroup) with our cpuinfo, stat, uptime and online bound over theirs. On cgroup2, /proc/stat and the
// uptime idle come from cpu.stat (lxcfs shows host numbers there). Durations in the guest mean little,
// so the assertions are ratios of what the guest kernel itself reports.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exemptFields } from '../compat/differences.js';
import { Cleanup, startDaemon } from '../helpers/processes.js';
import { inContainer as inGuestContainer, makeCgroup } from './guest.js';
import { startLxcfs, type LxcfsPeer } from '../helpers/lxcfs-peer.js';

const FILES = ['proc/cpuinfo', 'proc/stat', 'proc/uptime', 'sys/devices/system/cpu/online'];
const cleanup = new Cleanup();
let ours: string;
let oursCfs: string;
let lxcfs: LxcfsPeer;

beforeAll(async () => {
  const dir = cleanup.tempDir();
  ours = path.join(dir, 'mnt');
  oursCfs = path.join(dir, 'mnt-cfs');
  [lxcfs] = await Promise.all([
    startLxcfs(cleanup),
    startDaemon(cleanup, ['-p', path.join(dir, 'pid'), ours], ours),
    startDaemon(cleanup, ['--enable-cfs', '-p', path.join(dir, 'pid-cfs'), oursCfs], oursCfs),
  ]);
});

afterAll(() => cleanup.run());

/** A container with the CPU files of `mnt` bound over its own. */
function inContainer(cgroup: string, mnt: string, script: string): string {
  return inGuestContainer(cgroup, mnt, FILES, script);
}

const SPIN = `sh -c 'while :; do :; done' &`;
const CPU_LABELS = `grep '^cpu' /proc/stat | cut -d' ' -f1 | tr '\\n' ' '; echo`;

function aggregate(stat: string): number[] {
  return stat.split('\n')[0]!.split(/\s+/).slice(1).map(Number);
}

/** utime + stime of a process, in USER_HZ ticks. */
function cpuTicks(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/** busy / (busy + idle) between two /proc/stat texts. */
function busyShare(before: string, after: string): number {
  const [a, b] = [aggregate(before), aggregate(after)];
  const busy = [0, 1, 2].reduce((sum, column) => sum + b[column]! - a[column]!, 0);
  return busy / (busy + b[3]! - a[3]!);
}

describe('a cgroup2 container with cpuset {1}', () => {
  it('is one CPU for cpuinfo (numbered 0), online, getconf, python and /proc/stat; lxcfs agrees but for stat\'s numbers', () => {
    const cgroup = makeCgroup(cleanup, { 'cpuset.cpus': '1' });
    const L = lxcfs.mountPoint;
    const out = inContainer(
      cgroup,
      ours,
      `grep '^processor' /proc/cpuinfo; cat /sys/devices/system/cpu/online; getconf _NPROCESSORS_ONLN; python3 -c 'import os; print(os.cpu_count())'; ${CPU_LABELS}
cmp /proc/cpuinfo ${L}/proc/cpuinfo && cmp /sys/devices/system/cpu/online ${L}/sys/devices/system/cpu/online && echo same`,
    );
    expect(out.split('\n')).toEqual(['processor\t: 0', '1', '1', '1', 'cpu cpu1 ', 'same', '']);
    expect(exemptFields('stat', 'v2').has('cpu lines')).toBe(true);
  });

  it('has an uptime whose idle grows while it sleeps and not while it keeps its one CPU busy, as its cpu.stat says', () => {
    const cgroup = makeCgroup(cleanup, { 'cpuset.cpus': '1' });
    // Under emulation on a loaded host neither sleeping nor spinning is clean (starting sleep and cat once
    // cost 0.6 s of a 3 s window; a spinning loop once got 77 % of its CPU), so every uptime is bracketed by
    // the cgroup's own usage_usec read just before and just after it: the busy time it shows, age - idle,
    // must lie between them.
    // Shell builtins only: a grep would cost the container CPU time of its own inside the windows.
    const usage = `while read key value; do [ $key = usage_usec ] && echo $value; done < ${cgroup}/cpu.stat`;
    const probe = `${usage}; cat /proc/uptime; ${usage}`;
    const out = inContainer(cgroup, ours, `sleep 1; ${probe}; sleep 6; ${probe}; ${SPIN} sleep 3; ${probe}; kill $!`);
    const lines = out.trim().split('\n');
    const probes = [0, 3, 6].map((i) => {
      const [age, idle] = lines[i + 1]!.split(' ').map(Number) as [number, number];
      return { age, idle, before: Number(lines[i]) / 1e6, after: Number(lines[i + 2]) / 1e6 };
    });
    for (const { age, idle, before, after } of probes) {
      expect(age).toBeLessThan(20); // the container's age, not the guest's uptime
      const busy = age - idle; // each printed with 2 decimals
      expect(busy).toBeGreaterThanOrEqual(before - 0.02);
      expect(busy).toBeLessThanOrEqual(after + 0.02);
    }
    const [start, slept, spun] = probes as [(typeof probes)[0], (typeof probes)[0], (typeof probes)[0]];
    expect((slept.idle - start.idle) / (slept.age - start.age)).toBeGreaterThan(0.8);
    expect((spun.idle - slept.idle) / (spun.age - slept.age)).toBeLessThan(0.5);
  });
});

describe('a cgroup2 container under a quota of 0.5 CPU on 2 CPUs', () => {
  it('is one CPU with --enable-cfs, ≈ 50 % busy while it spins, and its counters never go back', () => {
    const cgroup = makeCgroup(cleanup, { 'cpuset.cpus': '0-1', 'cpu.max': '50000 100000' });
    const out = inContainer(
      cgroup,
      oursCfs,
      `cat /sys/devices/system/cpu/online; grep -c '^processor' /proc/cpuinfo; ${CPU_LABELS}; echo ---
cat /proc/stat; echo ---; ${SPIN} sleep 3; cat /proc/stat; echo ---
i=0; while [ $i -lt 30 ]; do head -1 /proc/stat; i=$((i+1)); done; kill $!`,
    ).split('---\n');
    expect(out[0]).toBe('0\n1\ncpu cpu0 \n');
    const share = busyShare(out[1]!, out[2]!);
    expect(share).toBeGreaterThan(0.35);
    expect(share).toBeLessThan(0.65);
    const reads = out[3]!.trim().split('\n').map((line) => line.split(/\s+/).slice(1).map(Number));
    expect(reads).toHaveLength(30);
    for (let i = 1; i < reads.length; i++) reads[i]!.forEach((value, column) => expect(value).toBeGreaterThanOrEqual(reads[i - 1]![column]!));
  });

  it('is two CPUs without --enable-cfs, ≈ 25 % busy of them while it spins', () => {
    const cgroup = makeCgroup(cleanup, { 'cpuset.cpus': '0-1', 'cpu.max': '50000 100000' });
    const out = inContainer(cgroup, ours, `${CPU_LABELS}; echo ---; cat /proc/stat; echo ---; ${SPIN} sleep 3; cat /proc/stat; kill $!`).split('---\n');
    expect(out[0]).toBe('cpu cpu0 cpu1 \n');
    const share = busyShare(out[1]!, out[2]!);
    expect(share).toBeGreaterThan(0.15);
    expect(share).toBeLessThan(0.35);
  });
});

describe('a parent\'s quota, and busy and idle time, on cgroup2', () => {
  it('gives a child one CPU with --enable-cfs when its parent has cpu.max 50000 100000', () => {
    const parent = makeCgroup(cleanup, { 'cpuset.cpus': '0-1', 'cpu.max': '50000 100000' });
    const child = makeCgroup(cleanup, {}, parent);
    const out = inContainer(child, oursCfs, `cat /sys/devices/system/cpu/online; grep -c '^processor' /proc/cpuinfo; getconf _NPROCESSORS_ONLN`);
    expect(out).toBe('0\n1\n1\n');
  });

  it('shows a container that spun for ≥ 1.5 s of CPU idle clearly below its uptime and ≥ 1 s busy; an idle one no busy time while the host spins', () => {
    const busy = makeCgroup(cleanup, { 'cpuset.cpus': '1' });
    // Spins until the kernel has counted 1.5 s of the container's CPU time (a slow or crowded guest gives
    // a spinner less than the wall clock's), at most 60 s.
    const spinning = `[ "$(grep usage_usec ${busy}/cpu.stat | cut -d' ' -f2)" -lt 1500000 ]`;
    const script = `${SPIN} i=0; while ${spinning} && [ $i -lt 300 ]; do sleep 0.2; i=$((i+1)); done; kill $!; cat /proc/uptime; head -1 /proc/stat`;
    const spun = inContainer(busy, ours, script).trim().split('\n');
    const [uptime, idle] = spun[0]!.split(' ').map(Number) as [number, number];
    expect(idle).toBeLessThan(uptime - 1);
    const ticks = aggregate(spun[1]! + '\n');
    expect(ticks[0]! + ticks[1]! + ticks[2]!).toBeGreaterThanOrEqual(100); // USER_HZ 100: ≥ 1 s
    // The host spins (outside the container's cgroup) while an idle container reads its stat twice.
    const hostSpinner = spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    cleanup.own(hostSpinner);
    try {
      const quiet = makeCgroup(cleanup, { 'cpuset.cpus': '0-1' });
      // The container's own CPU time (its shell, head, sleep) around the two reads bounds what they may
      // show as busy; showing the host's numbers would add the spinner's.
      const usage = `grep usage_usec ${quiet}/cpu.stat | cut -d' ' -f2`;
      const spinnerBefore = cpuTicks(hostSpinner.pid!);
      const out = inContainer(quiet, ours, `${usage}; head -1 /proc/stat; sleep 2; head -1 /proc/stat; ${usage}`).trim().split('\n');
      const spinnerTicks = cpuTicks(hostSpinner.pid!) - spinnerBefore;
      const [usageBefore, statBefore, statAfter, usageAfter] = out as [string, string, string, string];
      const [before, after] = [statBefore, statAfter].map((line) => aggregate(line + '\n')) as [number[], number[]];
      const busyTicks = [0, 1, 2].reduce((sum, column) => sum + after[column]! - before[column]!, 0);
      const ownTicks = (Number(usageAfter) - Number(usageBefore)) / 10_000;
      console.log(JSON.stringify({ busyTicks, ownTicks, spinnerTicks }));
      expect(busyTicks).toBeLessThanOrEqual(Math.ceil(ownTicks) + 2);
      // ...a bound that the host's numbers would break: the spinner ran for more than it allows.
      expect(spinnerTicks).toBeGreaterThan(Math.ceil(ownTicks) + 2);
      expect(after[3]! - before[3]!).toBeGreaterThan(100);
    } finally {
      hostSpinner.kill('SIGKILL');
    }
  });
});
