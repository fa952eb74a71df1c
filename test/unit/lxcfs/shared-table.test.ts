// The shared per-cgroup table, alone and from several threads at once.

import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { SharedTable } from '../../../src/lxcfs/shared-table.js';
import { openStateFile } from '../../../src/daemon/state-files.js';

describe('SharedTable', () => {
  it('creates records zeroed, finds them again, and deletes them on sweep', () => {
    const table = new SharedTable(SharedTable.allocate(8, 3));
    expect(table.update('/a', 1, (f, created) => ((f[0] = 7), created))).toBe(true);
    expect(table.update('/a', 1, (f, created) => [f[0], f[1], created])).toEqual([7, 0, false]);
    expect(table.read('/missing', () => 1)).toBeUndefined();
    table.update('/b', 1, (f) => (f[2] = 2));
    const seen: string[] = [];
    table.sweep((key) => (seen.push(key), key !== '/a'));
    expect(seen.sort()).toEqual(['/a', '/b']);
    expect(table.read('/a', () => 1)).toBeUndefined();
    expect(table.read('/b', (f) => f[2])).toBe(2);
    expect(table.size).toBe(1);
  });

  it('sweeps what other threads made or removed since its own last sweep', () => {
    const memory = SharedTable.allocate(64, 2);
    const sampler = new SharedTable(memory);
    const reader = new SharedTable(memory);
    const keys = (table: SharedTable): string[] => {
      const seen: string[] = [];
      table.sweep((key) => (seen.push(key), true));
      return seen.sort();
    };
    reader.update('/x', 1, () => 0);
    expect(keys(sampler)).toEqual(['/x']);
    reader.update('/y', 1, () => 0);
    expect(keys(sampler)).toEqual(['/x', '/y']);
    reader.sweep((key) => key !== '/x');
    expect(keys(sampler)).toEqual(['/y']);
  });

  it('takes keys as long as a cgroup path can be, and gives a key beyond that a fresh record each time', () => {
    const table = new SharedTable(SharedTable.allocate(4, 1));
    const long = '/' + 'x'.repeat(4200);
    table.update(long, 1, (f) => (f[0] = 5));
    expect(table.update(long, 1, (f) => f[0])).toBe(5);
    const keys: string[] = [];
    table.sweep((key) => (keys.push(key), true));
    expect(keys).toEqual([long]);
    const huge = '/' + 'y'.repeat(9000);
    table.update(huge, 1, (f) => (f[0] = 5));
    expect(table.update(huge, 1, (f, created) => [f[0], created])).toEqual([0, true]);
  });

  it("never refuses a record: an owner over its share loses its own least recently used, a full table the largest owner's", async () => {
    const table = new SharedTable(SharedTable.allocate(8, 1, { share: 3 }));
    const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 2));
    for (const key of ['/h1', '/h2', '/h3', '/h4', '/h5']) {
      table.update(key, 666, (f) => (f[0] = 1));
      await tick();
    }
    const held = (): string[] => {
      const keys: string[] = [];
      table.sweep((key) => (keys.push(key), true));
      return keys.sort();
    };
    expect(held()).toEqual(['/h3', '/h4', '/h5']);
    for (const owner of [1, 2, 3, 4, 5]) {
      table.update(`/c${owner}`, owner, (f) => (f[0] = owner));
      await tick();
    }
    // 8 records: the hog's 3 and 5 others. One more container: the hog, largest, gives way.
    table.update('/c6', 6, (f) => (f[0] = 6));
    expect(held()).toEqual(['/c1', '/c2', '/c3', '/c4', '/c5', '/c6', '/h4', '/h5']);
    for (const owner of [1, 2, 3, 4, 5, 6]) expect(table.read(`/c${owner}`, (f) => f[0])).toBe(owner);
  });

  it('writes every change through to its store, and a new table restores it (slots, keys, fields)', () => {
    const store = openStateFile(pino({ enabled: false }))!;
    try {
      const first = new SharedTable(SharedTable.allocate(16, 2, { store }));
      expect(first.restore()).toBe(0);
      for (let i = 0; i < 12; i++) first.update(`/cg/${i}`, 1, (f) => ((f[0] = i), (f[1] = i * 2)));
      first.sweep((key) => key !== '/cg/3');
      first.update('/cg/4', 1, (f) => (f[1] = 99));
      // Only what the sweep says it changed is written through: /cg/7's change stays in memory.
      first.sweepAndStore((key, f) => {
        if (key === '/cg/6') return 'delete';
        if (key === '/cg/5') return ((f[0] = 55), 'store');
        if (key === '/cg/7') f[0] = 77;
        return 'keep';
      });
      // Looking at a record does not write it either.
      expect(first.read('/cg/7', (f) => f[0])).toBe(77);
      const second = new SharedTable(SharedTable.allocate(16, 2, { store }));
      expect(second.restore()).toBe(10);
      expect(second.read('/cg/3', () => 1)).toBeUndefined();
      expect(second.read('/cg/6', () => 1)).toBeUndefined();
      expect(second.read('/cg/5', (f) => [f[0], f[1]])).toEqual([55, 10]);
      expect(second.read('/cg/4', (f) => [f[0], f[1]])).toEqual([4, 99]);
      expect(second.read('/cg/7', (f) => [f[0], f[1]])).toEqual([7, 14]);
      expect(second.update('/cg/11', 1, (f, created) => [f[0], f[1], created])).toEqual([11, 22, false]);
      // Another layout (a new version's) is not restored.
      expect(new SharedTable(SharedTable.allocate(16, 3, { store })).restore()).toBe(0);
    } finally {
      fs.closeSync(store);
    }
  });

  it("touches only the records in use: walks and re-layouts never fault in a free record's pages", () => {
    // The loadavg table's size: 4096 records of about 8 kB each. A first touch of a page, read or write,
    // is a page fault (a read may map the kernel's zero page, or back the page with memory: this host's
    // kernel does the latter); counting faults is the same on every host.
    const faults = (): number => process.resourceUsage().minorPageFault;
    const table = new SharedTable(SharedTable.allocate(4096, 8, { share: 64 }));
    const before = faults();
    // 200 containers' cgroups, each record made after a walk of the table (the room check), then swept.
    for (let i = 0; i < 200; i++) table.update(`/container-${i}`, i + 1, () => 0);
    table.sweep(() => true);
    // A record is on one or two pages of its own; a walk that looks at every slot faults 4096 pages in.
    expect(faults() - before).toBeLessThan(2000);
    // A quarter of the table deleted, then one more record: the table lays its records out again.
    for (let i = 0; i < 1100; i++) table.update(`/gone-${i}`, 1000 + i, () => 0);
    table.sweep((key) => !key.startsWith('/gone-'));
    const beforeRelayout = faults();
    table.update('/after', 1, () => 0);
    expect(table.read('/container-7', () => true)).toBe(true);
    expect(faults() - beforeRelayout).toBeLessThan(1000); // writing every slot: some 2,800 new pages
  });

  it('keeps counters exact when four threads update the same keys', async () => {
    const memory = SharedTable.allocate(64, 1);
    const url = new URL('../../../dist/lxcfs/shared-table.js', import.meta.url).href;
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(({ SharedTable }) => {
        const table = new SharedTable(workerData.memory);
        for (let i = 0; i < 5000; i++) table.update('/cg/' + (i % 10), 1, (f) => { f[0] += 1; });
        parentPort.postMessage('done');
      });`;
    await Promise.all(
      [1, 2, 3, 4].map(
        () =>
          new Promise((resolve, reject) => {
            const worker = new Worker(source, { eval: true, workerData: { memory, url } });
            worker.once('message', resolve);
            worker.once('error', reject);
          }),
      ),
    );
    const table = new SharedTable(memory);
    for (let i = 0; i < 10; i++) expect(table.read('/cg/' + i, (f) => f[0])).toBe(2000);
  });
});
