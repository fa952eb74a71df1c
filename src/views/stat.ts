// /proc/stat for a container. Four ways, by what the host accounts and whether the CFS view is on:
//
// 1. v1 with cpuacct (lxcfs's default): the host's lines of the cpuset's CPUs under their physical
//    numbers, user/system from cpuacct, idle = host idle + host busy − cgroup busy. Stateless.
// 2. v1 with cpuacct and --enable-cfs (lxcfs's "cpu view"): counters that start at zero when the cgroup
//    is first seen, per-CPU deltas, time the cgroup spent on CPUs beyond the visible count moved onto
//    the visible ones, CPUs renumbered from 0. Stateful: a record per cgroup (CpuViewRecord).
// 3. v1 without cpuacct (lxcfs): the host's lines of the cpuset's CPUs, relabelled.
// 4. cgroup2: lxcfs shows host numbers there; this does better, from cpu.stat (see advanceCgroup2View).
//
// The non-cpu lines (intr, ctxt, btime, processes, procs_running, procs_blocked, softirq) always come
// from the host, after the cpu lines; the aggregate line is `cpu` followed by two spaces.

import type { VisibleCpus } from './cpuset.js';
import { digitsIn, isBlank } from '../util/text-scan.js';

/** USER_HZ (see host/cpu.ts). */
const TICKS_PER_SECOND = 100;

/** One `cpuN` line of the host's /proc/stat. */
export interface HostCpuLine {
  readonly cpu: number;
  /** The line after its label, from the first space on, with its newline. */
  readonly rest: string;
  /** user nice system idle iowait irq softirq steal guest guest_nice; undefined unless exactly 10 numbers. */
  readonly values: readonly number[] | undefined;
}

export interface HostStat {
  readonly cpus: readonly HostCpuLine[];
  /** Every line after the cpu lines, verbatim. */
  readonly rest: string;
}

/** The host's /proc/stat: its aggregate line is dropped (it is re-computed), cpuN lines parsed. Walked
 * with indexOf rather than split into lines: it is read on every request. */
export function parseHostStat(text: string): HostStat {
  const cpus: HostCpuLine[] = [];
  let start = text.indexOf('\n') + 1; // the first line is the host's aggregate `cpu  ` line
  for (; start > 0 && start < text.length && text.startsWith('cpu', start);) {
    const newline = text.indexOf('\n', start);
    const lineEnd = newline < 0 ? text.length : newline;
    const end = newline < 0 ? text.length : newline + 1;
    let labelEnd = start + 3;
    while (labelEnd < lineEnd && !isBlank(text.charCodeAt(labelEnd))) labelEnd++;
    if (labelEnd === start + 3) break; // `cpu` and a blank: not a cpuN line
    // lxcfs skips a `cpuX` line whose X is not a number.
    const cpu = digitsIn(text, start + 3, labelEnd);
    if (cpu !== undefined) {
      const rest = labelEnd === lineEnd ? '\n' : text.slice(labelEnd, end);
      cpus.push({ cpu, rest, values: tenCounts(text, labelEnd, lineEnd) });
    }
    start = end;
  }
  return { cpus, rest: start > 0 ? text.slice(start) : '' };
}

/** The blank-separated counts in text[start, end) when there are exactly 10, else undefined. */
function tenCounts(text: string, start: number, end: number): number[] | undefined {
  const values: number[] = [];
  for (let i = start; i < end;) {
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    if (i === end) break;
    let j = i;
    while (j < end && !isBlank(text.charCodeAt(j))) j++;
    const value = digitsIn(text, i, j);
    if (value === undefined || values.length === 10) return undefined;
    values.push(value);
    i = j;
  }
  return values.length === 10 ? values : undefined;
}

/** Nanoseconds of CPU time in USER_HZ ticks, with lxcfs's arithmetic (ns / 1e9 * HZ, truncated). */
export function ticksFromNs(ns: number): number {
  return Math.trunc((ns / 1000 / 1000 / 1000) * TICKS_PER_SECOND);
}

/** Per-CPU CPU time of the cgroup in ticks, indexed by physical CPU. */
export interface CgroupTicks {
  readonly user: number;
  readonly system: number;
}

function cpuLine(label: string | number, user: number, system: number, idle: number): string {
  return `cpu${label} ${user} 0 ${system} ${idle} 0 0 0 0 0 0\n`;
}

/** lxcfs's idle for a CPU: the host's idle plus what the host was busy with other than this cgroup. */
function idleOf(values: readonly number[], cgroup: CgroupTicks): number {
  const hostBusy = values.reduce((sum, value, column) => (column === 3 ? sum : sum + value), 0);
  const cgroupBusy = cgroup.user + cgroup.system;
  return hostBusy >= cgroupBusy ? values[3]! + hostBusy - cgroupBusy : values[3]!;
}

/** Way 1: v1 with cpuacct, no CFS view. */
export function renderStatFromCpuacct(host: HostStat, cpus: VisibleCpus, usage: readonly CgroupTicks[]): string {
  const inCpuset = new Set(cpus.cpuset);
  let out = '';
  let user = 0;
  let system = 0;
  let idle = 0;
  for (const line of host.cpus) {
    if (!inCpuset.has(line.cpu)) continue;
    if (line.values === undefined) {
      out += `cpu${line.cpu}${line.rest}`;
      continue;
    }
    const cgroup = usage[line.cpu];
    if (cgroup === undefined) break; // lxcfs: a CPU beyond what cpuacct lists ends the cpu lines
    const cpuIdle = idleOf(line.values, cgroup);
    out += cpuLine(line.cpu, cgroup.user, cgroup.system, cpuIdle);
    user += cgroup.user;
    system += cgroup.system;
    idle += cpuIdle;
  }
  return `cpu  ${user} 0 ${system} ${idle} 0 0 0 0 0 0\n${out}${host.rest}`;
}

/** Way 3: v1 without cpuacct: the host's lines of the visible CPUs, relabelled (0.. with the CFS view,
 * and then at most `count` of them), the aggregate summed column by column. */
export function renderStatFromHostLines(host: HostStat, cpus: VisibleCpus): string {
  const inCpuset = new Set(cpus.cpuset);
  const sums = new Array<number>(10).fill(0);
  let out = '';
  let shown = 0;
  for (const line of host.cpus) {
    if (!inCpuset.has(line.cpu)) continue;
    if (cpus.cfsView && cpus.count > 0 && shown === cpus.count) continue;
    out += `cpu${cpus.cfsView ? shown : line.cpu}${line.rest}`;
    shown++;
    if (line.values) line.values.forEach((value, column) => (sums[column]! += value));
  }
  return `cpu  ${sums.join(' ')}\n${out}${host.rest}`;
}

// ---------------------------------------------------------------------------------------------------
// Way 2: lxcfs's CPU view on v1. A record of float64 fields per cgroup, per CPU c (c < cpus):
// at c * 7: last seen user, system, idle of the cgroup; shown user, system, idle; online flag.

const VIEW_FIELDS_PER_CPU = 7;
const USAGE_USER = 0;
const USAGE_SYSTEM = 1;
const USAGE_IDLE = 2;
const VIEW_USER = 3;
const VIEW_SYSTEM = 4;
const VIEW_IDLE = 5;
const ONLINE = 6;

/** Fields a CPU view record needs for `cpus` possible CPUs. */
export function cpuViewFieldCount(cpus: number): number {
  return cpus * VIEW_FIELDS_PER_CPU;
}

interface Sample {
  user: number;
  system: number;
  idle: number;
  online: boolean;
}

/**
 * Way 2: advances the CPU view record of a cgroup by one read and renders /proc/stat from it (lxcfs's
 * cpuview_proc_stat). `record` holds `cpus` possible CPUs and is all zeros when `created`.
 *
 * One intentional difference: lxcfs then cuts idle by (1 − quota/count) of each interval when the quota
 * is fractional, so that a container using all of its 0.5-CPU quota shows 100 % busy (and idle can go
 * backwards). Here the shown capacity is that of the visible CPUs, as in the cgroup2 model: that
 * container shows 50 % of its one CPU.
 */
export function advanceCpuView(
  record: Float64Array,
  cpus: number,
  created: boolean,
  host: HostStat,
  visible: VisibleCpus,
  usage: readonly CgroupTicks[],
): string {
  const inCpuset = new Set(visible.cpuset);
  const current: Sample[] = Array.from({ length: cpus }, (_, cpu) => ({
    user: usage[cpu]?.user ?? 0,
    system: usage[cpu]?.system ?? 0,
    idle: 0,
    online: false,
  }));
  let hostCpus = 0;
  for (const line of host.cpus) {
    if (line.cpu >= cpus) continue;
    hostCpus++;
    if (!inCpuset.has(line.cpu)) continue;
    const sample = current[line.cpu]!;
    sample.online = true;
    if (line.values) sample.idle = idleOf(line.values, sample);
  }
  const max = visible.count === 0 || visible.count > hostCpus ? hostCpus : visible.count;

  const field = (cpu: number, offset: number): number => record[cpu * VIEW_FIELDS_PER_CPU + offset]!;
  const set = (cpu: number, offset: number, value: number): void => {
    record[cpu * VIEW_FIELDS_PER_CPU + offset] = value;
  };
  const reset = (): void => {
    record.fill(0, 0, cpuViewFieldCount(cpus));
    current.forEach((sample, cpu) => {
      set(cpu, USAGE_USER, sample.user);
      set(cpu, USAGE_SYSTEM, sample.system);
      set(cpu, USAGE_IDLE, sample.idle);
    });
  };
  if (created) reset();
  // Counters lower than last time: the cgroup was removed and created again.
  const firstOnline = current.findIndex((sample) => sample.online);
  if (firstOnline >= 0 && current[firstOnline]!.user < field(firstOnline, USAGE_USER)) reset();

  const diff = current.map((sample, cpu) =>
    sample.online
      ? {
          user: Math.max(0, sample.user - field(cpu, USAGE_USER)),
          system: Math.max(0, sample.system - field(cpu, USAGE_SYSTEM)),
          idle: Math.max(0, sample.idle - field(cpu, USAGE_IDLE)),
        }
      : { user: 0, system: 0, idle: 0 },
  );
  const total = diff.reduce((sum, d) => sum + d.user + d.system + d.idle, 0);

  let userSurplus = 0;
  let systemSurplus = 0;
  let rank = -1;
  for (let cpu = 0; cpu < cpus; cpu++) {
    set(cpu, ONLINE, current[cpu]!.online ? 1 : 0);
    if (!current[cpu]!.online) continue;
    rank++;
    const d = diff[cpu]!;
    set(cpu, USAGE_USER, field(cpu, USAGE_USER) + d.user);
    set(cpu, USAGE_SYSTEM, field(cpu, USAGE_SYSTEM) + d.system);
    set(cpu, USAGE_IDLE, field(cpu, USAGE_IDLE) + d.idle);
    if (rank >= max) {
      userSurplus += d.user;
      systemSurplus += d.system;
    }
  }

  // Time used on CPUs beyond the visible ones fills the visible CPUs up to their share of the interval.
  const threshold = hostCpus > 0 ? Math.floor(total / hostCpus) * max : 0;
  const fill = (d: { user: number; system: number; idle: number }, key: 'user' | 'system', surplus: number): number => {
    const room = Math.min(threshold - d.user - d.system, d.idle);
    const moved = Math.min(room, surplus);
    d[key] += moved;
    d.idle -= moved;
    return surplus - moved;
  };
  rank = -1;
  for (let cpu = 0; cpu < cpus; cpu++) {
    if (!current[cpu]!.online) continue;
    if (++rank === max) break;
    const d = diff[cpu]!;
    if (d.user + d.system >= threshold) continue;
    userSurplus = fill(d, 'user', userSurplus);
    if (d.user + d.system >= threshold) continue;
    systemSurplus = fill(d, 'system', systemSurplus);
  }
  rank = -1;
  for (let cpu = 0; cpu < cpus; cpu++) {
    if (!current[cpu]!.online) continue;
    if (++rank === max) break;
    const d = diff[cpu]!;
    set(cpu, VIEW_USER, field(cpu, VIEW_USER) + d.user);
    set(cpu, VIEW_SYSTEM, field(cpu, VIEW_SYSTEM) + d.system);
    set(cpu, VIEW_IDLE, field(cpu, VIEW_IDLE) + d.idle);
  }

  // Render: max lines; offline CPUs fold into the next online one, all CPUs past the last shown one
  // into the last line, so that the lines add up to the aggregate.
  let sumUser = 0;
  let sumSystem = 0;
  let sumIdle = 0;
  let lines = '';
  let acc = { user: 0, system: 0, idle: 0 };
  let label = -1;
  for (let cpu = 0; cpu < cpus; cpu++) {
    acc.user += field(cpu, VIEW_USER);
    acc.system += field(cpu, VIEW_SYSTEM);
    acc.idle += field(cpu, VIEW_IDLE);
    sumUser += field(cpu, VIEW_USER);
    sumSystem += field(cpu, VIEW_SYSTEM);
    sumIdle += field(cpu, VIEW_IDLE);
    const last = cpu === cpus - 1;
    if (!current[cpu]!.online && !last) continue;
    label++;
    if (label >= max) label--;
    if (label === max - 1 && !last) continue;
    lines += cpuLine(label, acc.user, acc.system, acc.idle);
    acc = { user: 0, system: 0, idle: 0 };
  }
  return `cpu  ${sumUser} 0 ${sumSystem} ${sumIdle} 0 0 0 0 0 0\n${lines}${host.rest}`;
}

// ---------------------------------------------------------------------------------------------------
// Way 4: cgroup2. A record per cgroup: a header, then per shown CPU label c (c < cpus) at
// HEADER + c * 4: user (without nice), nice, system, idle shown so far, in microseconds.

const V2_LAST_NOW = 0;
const V2_LAST_USER = 1;
const V2_LAST_SYSTEM = 2;
const V2_LAST_NICE = 3;
/** Capacity of the shown CPUs so far: Σ count × elapsed, µs. */
const V2_CAPACITY = 4;
/** user + system shown so far, µs. */
const V2_BUSY = 5;
const V2_HEADER = 6;
const V2_FIELDS_PER_CPU = 4;

/** Fields a cgroup2 record needs for `cpus` possible CPUs. */
export function cgroup2ViewFieldCount(cpus: number): number {
  return V2_HEADER + cpus * V2_FIELDS_PER_CPU;
}

/** What one read of a cgroup2 container's /proc/stat starts from. */
export interface Cgroup2Sample {
  /** Now, seconds since boot. */
  readonly now: number;
  /** Age of the container (its init), seconds: where the counters start the first time it is seen. */
  readonly age: number;
  /** cpu.stat, µs; user includes nice. */
  readonly userUsec: number;
  readonly systemUsec: number;
  readonly niceUsec: number;
}

/**
 * Way 4, the cgroup2 model. cpu.stat has no per-CPU numbers, so the container's time is spread evenly
 * over the CPUs it is shown (its cpuset, or the first `count` with the CFS view), and idle is what those
 * CPUs had to offer and the container did not use:
 *
 *   capacity = Σ over reads of (shown CPUs × wall time since the previous read)
 *   idle     = capacity − (user + system)          (never decreasing)
 *
 * so that tools that take deltas of /proc/stat (top, mpstat, vmstat) report busy / (CPUs × interval),
 * the utilisation of the CPUs the container sees. The first time a cgroup is seen its counters start at
 * cpu.stat's totals, and idle at (CPUs × age of the container − busy), so that since-boot averages
 * (vmstat's first line) are sensible from the first read. Every counter only grows, whichever reader
 * thread serves the read (the record is shared), also when the shown CPU count changes; counters lower
 * than last time mean the cgroup was created again, and start over.
 *
 * `labels` are the CPU numbers shown (each < cpus); the aggregate line sums every label ever shown.
 */
export function advanceCgroup2View(
  record: Float64Array,
  cpus: number,
  created: boolean,
  host: HostStat,
  labels: readonly number[],
  sample: Cgroup2Sample,
): string {
  const count = labels.length;
  const at = (label: number, offset: number): number => V2_HEADER + label * V2_FIELDS_PER_CPU + offset;
  const spread = (offset: number, total: number): void => {
    if (total <= 0) return;
    for (const label of labels) record[at(label, offset)]! += total / count;
  };
  const busy = sample.userUsec + sample.systemUsec;
  const userOnly = (user: number, nice: number): number => Math.max(0, user - nice);

  const restart = created || sample.userUsec < record[V2_LAST_USER]! || sample.systemUsec < record[V2_LAST_SYSTEM]!;
  if (restart) {
    record.fill(0, 0, cgroup2ViewFieldCount(cpus));
    const idle = Math.max(0, count * sample.age * 1e6 - busy);
    spread(0, userOnly(sample.userUsec, sample.niceUsec));
    spread(1, sample.niceUsec);
    spread(2, sample.systemUsec);
    spread(3, idle);
    record[V2_CAPACITY] = busy + idle;
    record[V2_BUSY] = busy;
  } else {
    const elapsedUsec = Math.max(0, sample.now - record[V2_LAST_NOW]!) * 1e6;
    const userDelta = sample.userUsec - record[V2_LAST_USER]!;
    const niceDelta = Math.max(0, sample.niceUsec - record[V2_LAST_NICE]!);
    const systemDelta = sample.systemUsec - record[V2_LAST_SYSTEM]!;
    spread(0, userOnly(userDelta, niceDelta));
    spread(1, Math.min(niceDelta, userDelta));
    spread(2, systemDelta);
    record[V2_CAPACITY]! += count * elapsedUsec;
    record[V2_BUSY]! += userDelta + systemDelta;
    let idleShown = 0;
    for (let label = 0; label < cpus; label++) idleShown += record[at(label, 3)]!;
    spread(3, record[V2_CAPACITY]! - record[V2_BUSY]! - idleShown);
  }
  record[V2_LAST_NOW] = sample.now;
  record[V2_LAST_USER] = sample.userUsec;
  record[V2_LAST_SYSTEM] = sample.systemUsec;
  record[V2_LAST_NICE] = sample.niceUsec;

  // Whole microseconds first: spreading by the CPU count leaves float noise such as 29999.999999.
  const ticks = (usec: number): number => Math.floor(Math.round(usec) / (1e6 / TICKS_PER_SECOND));
  // The aggregate is the sum before the conversion, as in the kernel: the lines may add up to a few ticks less.
  const sums = [0, 0, 0, 0];
  for (let label = 0; label < cpus; label++) {
    for (let column = 0; column < 4; column++) sums[column]! += record[at(label, column)]!;
  }
  let lines = '';
  for (const label of labels) {
    const [user, nice, system, idle] = [0, 1, 2, 3].map((column) => ticks(record[at(label, column)]!));
    lines += `cpu${label} ${user} ${nice} ${system} ${idle} 0 0 0 0 0 0\n`;
  }
  const [user, nice, system, idle] = sums.map(ticks);
  return `cpu  ${user} ${nice} ${system} ${idle} 0 0 0 0 0 0\n${lines}${host.rest}`;
}
