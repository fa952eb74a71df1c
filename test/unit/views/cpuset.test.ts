import { describe, expect, it } from 'vitest';
import { countHostCpus, formatCpuList, parseCpuList, visibleCpuCount, visibleCpus } from '../../../src/views/cpuset.js';
import { renderOnline } from '../../../src/views/online.js';
import { hostProcStat } from '../../fixtures/proc-text.js';

describe('parseCpuList (the cases of lxcfs tests/cpusetrange.c, and more)', () => {
  it.each([
    ['1,2', [1, 2]],
    ['1-3,5', [1, 2, 3, 5]],
    ['1,4-5', [1, 4, 5]],
    ['0-3,5\n', [0, 1, 2, 3, 5]],
    ['0', [0]],
    ['', []],
    ['\n', []],
    ['3,1,1-2', [1, 2, 3]],
    ['0-1,x,4', [0, 1, 4]],
    ['5-3', []],
  ])('%j → %j', (text, cpus) => {
    expect(parseCpuList(text)).toEqual(cpus);
  });

  it('round-trips through the compact form', () => {
    expect(formatCpuList([0, 1, 2, 3, 5])).toBe('0-3,5');
    expect(formatCpuList([1, 4, 5])).toBe('1,4-5');
    expect(formatCpuList([7])).toBe('7');
    expect(formatCpuList([])).toBe('');
    expect(formatCpuList(parseCpuList('0-2,4-6,9'))).toBe('0-2,4-6,9');
  });
});

describe('visibleCpuCount (lxcfs max_cpu_count, 7.0 rules)', () => {
  it('is the cpuset size without a quota', () => {
    expect(visibleCpuCount(3, undefined, 8)).toBe(3);
  });
  it('is the ceiling of the quota', () => {
    expect(visibleCpuCount(8, 0.5, 8)).toBe(1);
    expect(visibleCpuCount(8, 1.5, 8)).toBe(2);
    expect(visibleCpuCount(8, 2, 8)).toBe(2);
    expect(visibleCpuCount(8, 2.0001, 8)).toBe(3);
  });
  it('is capped by the online CPUs and by the cpuset size', () => {
    expect(visibleCpuCount(8, 16, 4)).toBe(4);
    expect(visibleCpuCount(1, 1.5, 2)).toBe(1);
    expect(visibleCpuCount(2, 1.5, 2)).toBe(2);
  });
  it('applies only in the CFS view', () => {
    const limits = { cpuset: '0-3', quota: 0.5 };
    expect(visibleCpus({ ...limits, cfsView: false }, 4)).toEqual({ cpuset: [0, 1, 2, 3], count: 4, cfsView: false, cpusetText: '0-3' });
    expect(visibleCpus({ ...limits, cfsView: true }, 4).count).toBe(1);
  });
});

describe('the online file', () => {
  it('is the cpuset as written outside the CFS view', () => {
    expect(renderOnline(visibleCpus({ cpuset: '1,3-4', quota: undefined, cfsView: false }, 8))).toBe('1,3-4\n');
    expect(renderOnline(visibleCpus({ cpuset: '1', quota: 0.5, cfsView: false }, 2))).toBe('1\n');
  });
  it('is 0-(n-1), or 0, in the CFS view', () => {
    expect(renderOnline(visibleCpus({ cpuset: '1', quota: 0.5, cfsView: true }, 2))).toBe('0\n');
    expect(renderOnline(visibleCpus({ cpuset: '0-1', quota: 1.5, cfsView: true }, 2))).toBe('0-1\n');
    expect(renderOnline(visibleCpus({ cpuset: '2-7', quota: undefined, cfsView: true }, 8))).toBe('0-5\n');
  });
});

it('counts the host CPUs from the cpuN lines of /proc/stat', () => {
  const stat = hostProcStat([[1, 0, 1, 10, 0, 0, 0, 0, 0, 0], [1, 0, 1, 10, 0, 0, 0, 0, 0, 0], [1, 0, 1, 10, 0, 0, 0, 0, 0, 0]]);
  expect(countHostCpus(stat)).toBe(3);
});
