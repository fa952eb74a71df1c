import { describe, expect, it } from 'vitest';
import { visibleCpus } from '../../../src/views/cpuset.js';
import {
  advanceCgroup2View,
  advanceCpuView,
  cgroup2ViewFieldCount,
  cpuViewFieldCount,
  parseHostStat,
  renderStatFromCpuacct,
  renderStatFromHostLines,
  ticksFromNs,
  type Cgroup2Sample,
  type CgroupTicks,
} from '../../../src/views/stat.js';
import { hostProcStat, type StatColumns } from '../../fixtures/proc-text.js';

const cpus = (cpuset: string, quota?: number, cfsView = false, online = 2) => visibleCpus({ cpuset, quota, cfsView }, online);
/** The cpu lines of a rendered /proc/stat as label → numbers. */
function cpuLines(text: string): Map<string, number[]> {
  return new Map(text.split('\n').filter((l) => l.startsWith('cpu')).map((l) => [l.split(/\s+/)[0]!, l.split(/\s+/).slice(1).map(Number)]));
}
const OTHER_LINES = /\nintr [^\n]*\nctxt 38315890\nbtime 1795624000\nprocesses 21017\nprocs_running 2\nprocs_blocked 0\nsoftirq [^\n]*\n$/;

describe('parseHostStat', () => {
  it('drops the aggregate, parses the cpuN lines, keeps the rest verbatim', () => {
    const text = hostProcStat([[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 0, 20, 30, 0, 0, 0, 0, 0, 0]]);
    const stat = parseHostStat(text);
    expect(stat.cpus).toEqual([
      { cpu: 0, rest: ' 1 2 3 4 5 6 7 8 9 10\n', values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
      { cpu: 1, rest: ' 10 0 20 30 0 0 0 0 0 0\n', values: [10, 0, 20, 30, 0, 0, 0, 0, 0, 0] },
    ]);
    expect(stat.rest).toBe(text.slice(text.indexOf('intr')));
  });
  it('leaves the numbers of a line with other than 10 columns undefined', () => {
    expect(parseHostStat('cpu  1 2 3 4\ncpu0 1 2 3 4\nctxt 1\n').cpus[0]!.values).toBeUndefined();
  });

  it('skips cpuX lines whose X is not a number, and reads a line without values or a final newline', () => {
    const stat = parseHostStat('cpu  1 2\ncpuX 1 2 3 4 5 6 7 8 9 10\ncpu7\ncpu3 1 2 3 4 5 6 7 8 9 -1\ncpu4 1 2 3 4 5 6 7 8 9 10');
    expect(stat.cpus).toEqual([
      { cpu: 7, rest: '\n', values: undefined },
      { cpu: 3, rest: ' 1 2 3 4 5 6 7 8 9 -1\n', values: undefined },
      { cpu: 4, rest: ' 1 2 3 4 5 6 7 8 9 10', values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
    ]);
    expect(stat.rest).toBe('');
  });
});

it('converts nanoseconds to ticks like lxcfs (ns / 1e9 * 100, truncated)', () => {
  expect(ticksFromNs(1_999_999_999)).toBe(199);
  expect(ticksFromNs(461632330076)).toBe(46163);
  expect(ticksFromNs(0)).toBe(0);
});

describe('v1 with cpuacct (lxcfs default)', () => {
  const host = parseHostStat(hostProcStat([[100, 5, 50, 1000, 10, 1, 2, 3, 0, 0], [200, 0, 100, 900, 0, 0, 0, 0, 0, 0]]));

  it('takes user/system from cpuacct and idle = host idle + host busy − cgroup busy, under physical numbers', () => {
    const usage: CgroupTicks[] = [{ user: 20, system: 10 }, { user: 7, system: 3 }];
    const out = renderStatFromCpuacct(host, cpus('1'), usage);
    // cpu1: host busy 300, cgroup busy 10: idle 900 + 290
    expect(out).toMatch(/^cpu {2}7 0 3 1190 0 0 0 0 0 0\ncpu1 7 0 3 1190 0 0 0 0 0 0\nintr /);
    expect(out).toMatch(OTHER_LINES);
    const both = cpuLines(renderStatFromCpuacct(host, cpus('0-1'), usage));
    // cpu0: host busy 100+5+50+10+1+2+3 = 171, cgroup busy 30: idle 1000 + 141
    expect(both.get('cpu0')).toEqual([20, 0, 10, 1141, 0, 0, 0, 0, 0, 0]);
    expect(both.get('cpu')).toEqual([27, 0, 13, 1141 + 1190, 0, 0, 0, 0, 0, 0]);
  });

  it('keeps the host idle when the cgroup seems busier than the host', () => {
    expect(cpuLines(renderStatFromCpuacct(host, cpus('0'), [{ user: 500, system: 0 }])).get('cpu0')).toEqual([500, 0, 0, 1000, 0, 0, 0, 0, 0, 0]);
  });
});

describe('v1 without cpuacct (host lines)', () => {
  const host = parseHostStat(hostProcStat([[1, 0, 1, 10, 0, 0, 0, 0, 0, 0], [2, 0, 2, 20, 0, 0, 0, 0, 0, 0], [3, 0, 3, 30, 1, 0, 0, 0, 0, 0]]));

  it('copies the cpuset\'s lines under physical numbers and sums them', () => {
    const out = renderStatFromHostLines(host, cpus('1-2', undefined, false, 3));
    expect(out.split('\n').slice(0, 3)).toEqual(['cpu  5 0 5 50 1 0 0 0 0 0', 'cpu1 2 0 2 20 0 0 0 0 0 0', 'cpu2 3 0 3 30 1 0 0 0 0 0']);
  });

  it('renumbers and keeps at most the visible count in the CFS view', () => {
    const out = renderStatFromHostLines(host, cpus('1-2', 0.5, true, 3));
    expect(out.split('\n').slice(0, 2)).toEqual(['cpu  2 0 2 20 0 0 0 0 0 0', 'cpu0 2 0 2 20 0 0 0 0 0 0']);
    expect(out).toMatch(OTHER_LINES);
  });
});

describe('v1 CPU view (--enable-cfs, stateful)', () => {
  /** Host lines after `seconds` in which every CPU was `hostBusy` busy (a fraction). */
  function hostAt(seconds: number, hostBusy: number, count = 2): ReturnType<typeof parseHostStat> {
    const columns: StatColumns = [Math.round(100 * seconds * hostBusy), 0, 0, Math.round(100 * seconds * (1 - hostBusy)), 0, 0, 0, 0, 0, 0];
    return parseHostStat(hostProcStat(Array.from({ length: count }, () => columns)));
  }

  it('starts at zero when first seen and then shows deltas; time on CPUs beyond the visible count moves onto them', () => {
    const record = new Float64Array(cpuViewFieldCount(2));
    const view = cpus('0-1', 0.5, true);
    expect(view.count).toBe(1);
    const first = advanceCpuView(record, 2, true, hostAt(1000, 0.5), view, [{ user: 1000, system: 0 }, { user: 1000, system: 0 }]);
    expect(first.split('\n').slice(0, 2)).toEqual(['cpu  0 0 0 0 0 0 0 0 0 0', 'cpu0 0 0 0 0 0 0 0 0 0 0']);
    expect(first).toMatch(OTHER_LINES);
    // One second later: the container ran 25 ticks on each CPU, at its quota of 0.5 CPU.
    const second = advanceCpuView(record, 2, false, hostAt(1001, 0.5), view, [{ user: 1025, system: 0 }, { user: 1025, system: 0 }]);
    expect(cpuLines(second)).toEqual(new Map([['cpu', [50, 0, 0, 50, 0, 0, 0, 0, 0, 0]], ['cpu0', [50, 0, 0, 50, 0, 0, 0, 0, 0, 0]]]));
  });

  it('shows each visible CPU when the quota allows them all, and resets when the counters go back', () => {
    const record = new Float64Array(cpuViewFieldCount(2));
    const view = cpus('0-1', 1.5, true);
    advanceCpuView(record, 2, true, hostAt(10, 0.2), view, [{ user: 100, system: 50 }, { user: 10, system: 5 }]);
    const second = cpuLines(advanceCpuView(record, 2, false, hostAt(12, 0.2), view, [{ user: 130, system: 60 }, { user: 10, system: 5 }]));
    expect(second.get('cpu0')).toEqual([30, 0, 10, 160, 0, 0, 0, 0, 0, 0]);
    expect(second.get('cpu1')).toEqual([0, 0, 0, 200, 0, 0, 0, 0, 0, 0]);
    expect(second.get('cpu')).toEqual([30, 0, 10, 360, 0, 0, 0, 0, 0, 0]);
    const recreated = cpuLines(advanceCpuView(record, 2, false, hostAt(13, 0.2), view, [{ user: 1, system: 0 }, { user: 0, system: 0 }]));
    expect(recreated.get('cpu')).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('folds the CPUs past the last shown line into it, so that the lines add up to the aggregate', () => {
    const record = new Float64Array(cpuViewFieldCount(4));
    const view = visibleCpus({ cpuset: '0-3', quota: 2, cfsView: true }, 4);
    advanceCpuView(record, 4, true, hostAt(10, 0.5, 4), view, [0, 0, 0, 0].map(() => ({ user: 0, system: 0 })));
    const out = cpuLines(advanceCpuView(record, 4, false, hostAt(11, 0.5, 4), view, [0, 1, 2, 3].map(() => ({ user: 40, system: 0 }))));
    expect([...out.keys()]).toEqual(['cpu', 'cpu0', 'cpu1']);
    // 40 ticks used on each of 4 CPUs, 2 visible: the 80 ticks of CPUs 2 and 3 fill the visible CPUs in
    // order, each up to its idle time (lxcfs), and the lines add up to the aggregate.
    expect(out.get('cpu0')).toEqual([100, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(out.get('cpu1')).toEqual([60, 0, 0, 40, 0, 0, 0, 0, 0, 0]);
    expect(out.get('cpu')).toEqual([160, 0, 0, 40, 0, 0, 0, 0, 0, 0]);
  });
});

describe('cgroup2 model', () => {
  const host = parseHostStat(hostProcStat([[1, 0, 1, 10, 0, 0, 0, 0, 0, 0], [1, 0, 1, 10, 0, 0, 0, 0, 0, 0]]));
  const sample = (now: number, userS: number, systemS: number, niceS = 0): Cgroup2Sample => ({
    now,
    age: now - 1000,
    userUsec: userS * 1e6,
    systemUsec: systemS * 1e6,
    niceUsec: niceS * 1e6,
  });
  const busyShare = (a: Map<string, number[]>, b: Map<string, number[]>): number => {
    const [u0, n0, s0, i0] = a.get('cpu')!;
    const [u1, n1, s1, i1] = b.get('cpu')!;
    const busy = u1! + n1! + s1! - u0! - n0! - s0!;
    return busy / (busy + i1! - i0!);
  };

  it('starts from cpu.stat\'s totals and idle = CPUs × age − busy, spread evenly over the CPUs shown', () => {
    const record = new Float64Array(cgroup2ViewFieldCount(2));
    const out = cpuLines(advanceCgroup2View(record, 2, true, host, [0, 1], sample(1010, 3, 1, 0.5)));
    // age 10 s on 2 CPUs = 2000 ticks; busy 400; user without nice 250
    expect(out.get('cpu')).toEqual([250, 50, 100, 1600, 0, 0, 0, 0, 0, 0]);
    expect(out.get('cpu0')).toEqual([125, 25, 50, 800, 0, 0, 0, 0, 0, 0]);
    expect(out.get('cpu1')).toEqual([125, 25, 50, 800, 0, 0, 0, 0, 0, 0]);
  });

  it('shows busy / (CPUs × interval) over an interval: 50 % of one CPU for a container held to 0.5 CPU', () => {
    const record = new Float64Array(cgroup2ViewFieldCount(2));
    const a = cpuLines(advanceCgroup2View(record, 2, true, host, [0], sample(1010, 2, 1)));
    const b = cpuLines(advanceCgroup2View(record, 2, false, host, [0], sample(1013, 3.3, 1.2)));
    expect(busyShare(a, b)).toBeCloseTo(0.5, 2);
    expect([...b.keys()]).toEqual(['cpu', 'cpu0']);
    // The same usage on 2 CPUs shown is 25 %.
    const record2 = new Float64Array(cgroup2ViewFieldCount(2));
    const c = cpuLines(advanceCgroup2View(record2, 2, true, host, [0, 1], sample(1010, 2, 1)));
    const d = cpuLines(advanceCgroup2View(record2, 2, false, host, [0, 1], sample(1013, 3.3, 1.2)));
    expect(busyShare(c, d)).toBeCloseTo(0.25, 2);
  });

  it('never lets a counter go back: not when the CPU count changes, nor when cpu.stat runs ahead of the clock', () => {
    const record = new Float64Array(cgroup2ViewFieldCount(4));
    const reads = [
      advanceCgroup2View(record, 4, true, host, [0, 1], sample(1010, 1, 1)),
      advanceCgroup2View(record, 4, false, host, [0], sample(1011, 1.5, 1)),
      // 1.2 s of CPU in 1 s on 1 CPU (sampling jitter): no idle this time, it is caught up next time
      advanceCgroup2View(record, 4, false, host, [0], sample(1012, 2.7, 1)),
      advanceCgroup2View(record, 4, false, host, [0, 1, 2, 3], sample(1013, 2.8, 1)),
      advanceCgroup2View(record, 4, false, host, [1], sample(1014, 2.8, 1.1)),
    ].map(cpuLines);
    for (let i = 1; i < reads.length; i++) {
      for (const label of ['cpu', 'cpu0', 'cpu1']) {
        const before = reads[i - 1]!.get(label);
        const after = reads[i]!.get(label);
        if (before && after) after.forEach((value, column) => expect(value, `${label} column ${column} read ${i}`).toBeGreaterThanOrEqual(before[column]!));
      }
    }
    expect(reads[2]!.get('cpu')![3]).toBe(reads[1]!.get('cpu')![3]);
    // Over the whole time: capacity 2×10 + 1 + 1 + 4 + 1 = 27 s, busy 3.9 s.
    expect(reads[4]!.get('cpu')![3]).toBe(2310);
  });

  it('starts over when cpu.stat goes back (the cgroup was created again)', () => {
    const record = new Float64Array(cgroup2ViewFieldCount(2));
    advanceCgroup2View(record, 2, true, host, [0], sample(1010, 5, 1));
    const out = cpuLines(advanceCgroup2View(record, 2, false, host, [0], { ...sample(1011, 0.1, 0), age: 1 }));
    expect(out.get('cpu')).toEqual([10, 0, 0, 90, 0, 0, 0, 0, 0, 0]);
  });
});
