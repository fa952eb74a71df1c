// The rules doctor applies that cannot all be produced on one host: which runc versions refuse which
// served files as bind targets, and which kernels can replay requests.

import { describe, expect, it } from 'vitest';
import { kernelVersion, parseRuncVersion, runcRefuses } from '../../../src/diagnose/doctor.js';

describe('runc bind targets', () => {
  it('reads the version line of runc --version', () => {
    expect(parseRuncVersion('runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n')).toEqual([
      1,
      1,
      5,
      Infinity,
    ]);
    expect(parseRuncVersion('runc version 1.0.0-rc92\n')).toEqual([1, 0, 0, 92]);
    expect(parseRuncVersion('runc version 1.2.0-rc.1\n')).toEqual([1, 2, 0, 1]);
    expect(parseRuncVersion('crun version 1.8\n')).toBeUndefined();
  });

  it.each([
    ['1.0.0-rc5', ['proc/loadavg', 'proc/slabinfo']],
    ['1.0.0-rc92', ['proc/slabinfo']],
    ['1.0.0-rc93', []],
    ['1.1.5', []],
    ['1.3.0', []],
  ])('runc %s refuses %j besides proc/pressure/*', (version, refused) => {
    const parsed = parseRuncVersion(`runc version ${version}`)!;
    expect(runcRefuses(parsed)).toEqual([...refused, 'proc/pressure/cpu', 'proc/pressure/io', 'proc/pressure/memory']);
  });
});

describe('kernelVersion', () => {
  it('reads major and minor of a release', () => {
    expect(kernelVersion('6.1.0-28-amd64')).toEqual([6, 1]);
    expect(kernelVersion('6.18.44-fc-v1272')).toEqual([6, 18]);
    expect(kernelVersion('weird')).toEqual([0, 0]);
  });
});
