import { describe, expect, it } from 'vitest';
import { rewriteCpuFile, shownCpus } from '../../../src/views/cpu-topology.js';
import { visibleCpus } from '../../../src/views/cpuset.js';

describe('shownCpus', () => {
  it('keeps the cpuset numbers without the CFS view', () => {
    const cpus = visibleCpus({ cpuset: '3,5-6', quota: undefined, cfsView: false }, 8);
    expect([...shownCpus(cpus)]).toEqual([
      [3, 3],
      [5, 5],
      [6, 6],
    ]);
  });

  it('renumbers the first CPUs of the cpuset from 0 with the CFS view', () => {
    const cpus = visibleCpus({ cpuset: '3,5-6', quota: 1.5, cfsView: true }, 8);
    expect([...shownCpus(cpus)]).toEqual([
      [0, 3],
      [1, 5],
    ]);
  });
});

describe('rewriteCpuFile', () => {
  // Host CPUs 3 and 5 shown as 0 and 1 (a 40-CPU host: masks have two words).
  const toShown = new Map([
    [3, 0],
    [5, 1],
  ]);

  it('maps lists and drops the CPUs not shown', () => {
    expect(rewriteCpuFile('core_cpus_list', '2-5\n', toShown)).toBe('0-1\n');
    expect(rewriteCpuFile('shared_cpu_list', '5,20-39\n', toShown)).toBe('1\n');
    expect(rewriteCpuFile('package_cpus_list', '6-7\n', toShown)).toBe('\n');
  });

  it('maps masks, keeping the width of every word', () => {
    expect(rewriteCpuFile('thread_siblings', '00,00000028\n', toShown)).toBe('00,00000003\n');
    expect(rewriteCpuFile('package_cpus', 'ff,ffffffff\n', toShown)).toBe('00,00000003\n');
    expect(rewriteCpuFile('core_cpus', '8\n', new Map([[3, 3]]))).toBe('8\n');
    expect(rewriteCpuFile('shared_cpu_map', '80000000\n', new Map([[31, 31]]))).toBe('80000000\n');
  });

  it("maps cpufreq's space-separated lists", () => {
    expect(rewriteCpuFile('related_cpus', '3 4 5\n', toShown)).toBe('0 1\n');
  });

  it('leaves files that name no CPUs alone', () => {
    expect(rewriteCpuFile('core_id', '3\n', toShown)).toBeUndefined();
    expect(rewriteCpuFile('physical_package_id', '0\n', toShown)).toBeUndefined();
  });
});
