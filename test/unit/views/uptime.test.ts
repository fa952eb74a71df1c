import { expect, it } from 'vitest';
import { renderUptime } from '../../../src/views/uptime.js';

it('is the age of the init and that age minus the busy time, %.2f', () => {
  expect(renderUptime({ now: 1000, initStart: 998.49, busy: 0.25 })).toBe('1.51 1.26\n');
  expect(renderUptime({ now: 430.01, initStart: 0.01, busy: 51.78 })).toBe('430.00 378.22\n');
});

it('keeps idle at 0 once the busy time exceeds the age (lxcfs shows the whole age as idle then)', () => {
  expect(renderUptime({ now: 100, initStart: 90, busy: 15 })).toBe('10.00 0.00\n');
});

it('shows age 0 for an unknown start time, and never a negative age', () => {
  expect(renderUptime({ now: 100, initStart: 0, busy: 0 })).toBe('0.00 0.00\n');
  expect(renderUptime({ now: 100, initStart: 100.5, busy: 0 })).toBe('0.00 0.00\n');
});
