// PSI triggers as pure code: the kernel's input rules, pressure totals, the sliding window (psi.c's
// update_triggers), and the shared trigger table.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Errno } from '../../src/fuse/abi.js';
import { parsePressureTotals, parseTrigger, samplePeriodUs, TriggerWindow } from '../../src/lxcfs/psi-trigger.js';
import { PsiTable } from '../../src/lxcfs/psi-table.js';
import { PsiSampler } from '../../src/lxcfs/psi-sampler.js';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

describe('parseTrigger', () => {
  it("takes some|full <threshold µs> <window µs> within the kernel's bounds", () => {
    expect(parseTrigger(bytes('some 150000 1000000'), true)).toEqual({
      kind: 'some',
      thresholdUs: 150000,
      windowUs: 1000000,
    });
    expect(parseTrigger(bytes('full 500000 500000\n'), true)).toEqual({
      kind: 'full',
      thresholdUs: 500000,
      windowUs: 500000,
    });
    expect(parseTrigger(bytes('some 1 10000000\0garbage'), false)).toEqual({
      kind: 'some',
      thresholdUs: 1,
      windowUs: 10000000,
    });
  });

  it('refuses with EINVAL what the kernel refuses', () => {
    for (const text of [
      '',
      'some',
      'some 1',
      'bogus 1 1000000',
      'some 0 1000000',
      'some 1000 499999',
      'some 1000 10000001',
      'some 1000001 1000000',
      'some -1 1000000',
      'some x 1000000',
      'some 99999999999 1000000',
    ]) {
      expect([text, parseTrigger(bytes(text), true)]).toEqual([text, Errno.EINVAL]);
    }
  });

  it('takes full only where the file has a full line (cpu before Linux 5.13 has none)', () => {
    expect(parseTrigger(bytes('full 1000 1000000'), false)).toBe(Errno.EINVAL);
  });

  it("looks at 31 bytes at most, as the kernel's buffer", () => {
    expect(parseTrigger(bytes('some      150000      1000000'), true)).toEqual({
      kind: 'some',
      thresholdUs: 150000,
      windowUs: 1000000,
    });
    expect(parseTrigger(bytes('some          150000      1000000'), true)).toBe(Errno.EINVAL); // 33 bytes: the window is cut
  });
});

describe('parsePressureTotals', () => {
  it('reads total= of the some and full lines', () => {
    const text =
      'some avg10=1.00 avg60=0.50 avg300=0.10 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=42\n';
    expect(parsePressureTotals(text)).toEqual({ some: 123456, full: 42 });
    expect(parsePressureTotals('some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n')).toEqual({
      some: 7,
      full: undefined,
    });
    expect(parsePressureTotals('')).toBeUndefined();
  });
});

describe('TriggerWindow', () => {
  const spec = { thresholdUs: 150_000, windowUs: 1_000_000 };
  const step = samplePeriodUs(spec);

  it('samples every tenth of the window', () => {
    expect(step).toBe(100_000);
  });

  it('fires when the growth over the window reaches the threshold, at most once per window', () => {
    const window = new TriggerWindow(spec, 0, 0);
    const fired: number[] = [];
    // 50% stall: 50 ms per 100 ms sample.
    for (let t = step, total = 0; t <= 3_000_000; t += step) {
      total += 50_000;
      if (window.update(t, total)) fired.push(t);
    }
    expect(fired[0]).toBe(300_000); // 150 ms of growth after 3 samples
    for (let i = 1; i < fired.length; i++) expect(fired[i]! - fired[i - 1]!).toBeGreaterThanOrEqual(1_000_000);
    expect(fired).toHaveLength(3);
  });

  it('never fires below the threshold, nor without new stall', () => {
    const window = new TriggerWindow(spec, 0, 1000);
    let total = 1000;
    for (let t = step; t <= 5_000_000; t += step) {
      total += 10_000; // 10%: 100 ms per window
      expect(window.update(t, total)).toBe(false);
    }
    const idle = new TriggerWindow({ thresholdUs: 1, windowUs: 500_000 }, 0, 5);
    for (let t = 50_000; t <= 2_000_000; t += 50_000) expect(idle.update(t, 5)).toBe(false);
  });

  it('reports a breach inside the window after an event once that window has passed', () => {
    const window = new TriggerWindow(spec, 0, 0);
    expect(window.update(100_000, 200_000)).toBe(true);
    expect(window.update(200_000, 400_000)).toBe(false); // breach, but within the window of the last event
    expect(window.update(1_100_000, 400_000)).toBe(true); // no new stall: the pending breach comes out
    expect(window.update(1_200_000, 400_000)).toBe(false);
  });
});

describe('PsiTable', () => {
  const spec = { kind: 'some' as const, thresholdUs: 1000, windowUs: 1_000_000 };

  it('arms one trigger per handle, caps each owner, and frees on release', () => {
    const table = new PsiTable(PsiTable.allocate(8, undefined, 3));
    expect(table.arm(1, 100, spec, '/a')).toEqual({ slot: 0 });
    expect(table.arm(1, 100, spec, '/a')).toBe('busy');
    expect(table.arm(2, 100, spec, '/a')).toEqual({ slot: 1 });
    expect(table.arm(3, 100, spec, '/b')).toEqual({ slot: 2 });
    expect(table.arm(4, 100, spec, '/b')).toBe('share');
    expect(table.arm(4, 200, spec, '/b')).toEqual({ slot: 3 });
    expect(table.claimShareWarning(100)).toBe(true);
    expect(table.claimShareWarning(100)).toBe(false);
    table.free(2);
    expect(table.find(2)).toBe(-1);
    expect(table.arm(5, 100, spec, '/c')).toEqual({ slot: 1 });
    expect(table.armedTriggers().map((t) => [t.slot, t.path])).toEqual([
      [0, '/a'],
      [1, '/c'],
      [2, '/b'],
      [3, '/b'],
    ]);
    for (let fh = 10; fh < 14; fh++) table.arm(fh, fh, spec, '/d');
    expect(table.arm(20, 20, spec, '/d')).toBe('full');
  });

  it('gives an event to the arming it was raised for only, once', () => {
    const table = new PsiTable(PsiTable.allocate(4));
    const { slot } = table.arm(1, 1, spec, '/a') as { slot: number };
    const serial = table.serialOf(slot);
    table.raiseEvent(slot, serial);
    expect(table.takeEvent(slot)).toBe(true);
    expect(table.takeEvent(slot)).toBe(false);
    table.raiseEvent(slot, serial);
    table.free(1);
    table.arm(2, 1, spec, '/a');
    expect(table.holds(slot, serial)).toBe(false);
    expect(table.takeEvent(slot)).toBe(false); // raised for the freed trigger
    table.raiseGone(slot, serial);
    expect(table.isGone(slot)).toBe(false);
  });

  it("touches only the slots of armed triggers: finding one never faults in the free slots' pages", () => {
    const faults = (): number => process.resourceUsage().minorPageFault;
    const table = new PsiTable(PsiTable.allocate()); // 4096 slots of about 1 kB: 1,088 pages
    const before = faults();
    table.arm(1, 1, spec, '/a');
    for (let fh = 2; fh < 100; fh++) table.free(fh); // each looks for a trigger on fh, through every slot
    expect(table.armedTriggers()).toHaveLength(1);
    expect(faults() - before).toBeLessThan(300);
  });

  it('keeps the poll handle as a 64-bit number', () => {
    const table = new PsiTable(PsiTable.allocate(4));
    const { slot } = table.arm(1, 1, spec, '/a') as { slot: number };
    expect(table.pollHandle(slot)).toBe(0);
    table.setPollHandle(slot, 2 ** 40 + 7);
    expect(table.pollHandle(slot)).toBe(2 ** 40 + 7);
  });
});

describe('PsiSampler', () => {
  it('does not wake while no trigger is armed, and samples a trigger as soon as one is', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'psi-sampler-'));
    const file = path.join(dir, 'memory.pressure');
    fs.writeFileSync(
      file,
      'some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
    );
    const memory = PsiTable.allocate(8);
    const sampler = new PsiSampler({ memory, wake: () => {}, log: pino({ level: 'silent' }) });
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    try {
      sampler.start();
      await sleep(350);
      expect(sampler.counts).toMatchObject({ ticks: 1, reads: 0 }); // the first look, then nothing
      new PsiTable(memory).arm(1, 100, { kind: 'some', thresholdUs: 10_000, windowUs: 500_000 }, file);
      for (const deadline = Date.now() + 2000; sampler.counts.reads < 2 && Date.now() < deadline;) await sleep(10);
      expect(sampler.counts.reads).toBeGreaterThanOrEqual(2);
    } finally {
      sampler.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
