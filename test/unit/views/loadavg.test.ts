// The fixed-point load averages: the kernel's (and lxcfs's) calc_load, and lxcfs's rounding.

import { describe, expect, it } from 'vitest';
import { calcLoad, EXP_1, FIXED_1, firstSight, formatLoad, nextLoads, renderLoadavg } from '../../../src/views/loadavg.js';

function run(loads: [number, number, number], running: number, samples: number): { loads: [number, number, number]; shown: string[] } {
  const shown: string[] = [];
  for (let i = 0; i < samples; i++) {
    loads = nextLoads(loads, running);
    shown.push(loads.map(formatLoad).join(' '));
  }
  return { loads, shown };
}

describe('calcLoad', () => {
  it('gives lxcfs\'s verified first steps for 2 runnable threads: 328 (0.16) then 630 (0.31)', () => {
    expect(calcLoad(0, EXP_1, 2 * FIXED_1)).toBe(328);
    expect(calcLoad(328, EXP_1, 2 * FIXED_1)).toBe(630);
  });

  it('follows the reference sequence for one minute of 2 busy threads (a C implementation of the formula)', () => {
    expect(run([0, 0, 0], 2, 12).shown).toEqual([
      '0.16 0.03 0.01', '0.31 0.07 0.02', '0.44 0.10 0.03', '0.57 0.13 0.04', '0.68 0.16 0.05', '0.79 0.19 0.06',
      '0.89 0.22 0.08', '0.97 0.25 0.09', '1.06 0.28 0.10', '1.13 0.31 0.11', '1.20 0.34 0.12', '1.27 0.37 0.13',
    ]);
  });

  it('reaches exactly 2.00 (the rounding term lets a rising average meet its target) and decays when idle', () => {
    const busy = run([0, 0, 0], 2, 200);
    expect(busy.loads).toEqual([4096, 3981, 2762]);
    expect(busy.shown.at(-1)).toBe('2.00 1.94 1.35');
    const idle = run(run([0, 0, 0], 2, 12).loads, 0, 3);
    expect(idle.loads).toEqual([2019, 711, 255]);
    expect(idle.shown).toEqual(['1.17 0.36 0.13', '1.07 0.35 0.13', '0.99 0.35 0.12']);
  });

  it('stays at 0 for an idle cgroup', () => {
    expect(run([0, 0, 0], 0, 50).loads).toEqual([0, 0, 0]);
  });

  it('does not lose precision for thousands of threads (same as the C reference)', () => {
    const many = run([0, 0, 0], 5000, 400);
    expect(many.loads).toEqual([10240000, 10227379, 9052324]);
    expect(many.shown.at(-1)).toBe('5000.00 4993.84 4420.08');
  });
});

describe('formatLoad', () => {
  it('adds FIXED_1/200 (10) and truncates to hundredths, as lxcfs', () => {
    const cases: Array<[number, string]> = [
      [0, '0.00'], [10, '0.00'], [11, '0.01'], [2037, '0.99'], [2038, '1.00'], [2047, '1.00'], [6133, '2.99'], [6134, '3.00'],
    ];
    for (const [load, text] of cases) expect(formatLoad(load), String(load)).toBe(text);
  });
});

describe('renderLoadavg', () => {
  it('prints lxcfs\'s line', () => {
    expect(renderLoadavg({ load1: 630, load5: 143, load15: 48, running: 2, total: 7, last: 4242 })).toBe('0.31 0.07 0.02 2/7 4242\n');
  });

  it('prints 0.00 0.00 0.00 0/1 <pid> for a cgroup seen for the first time', () => {
    expect(renderLoadavg(firstSight(812))).toBe('0.00 0.00 0.00 0/1 812\n');
  });
});
