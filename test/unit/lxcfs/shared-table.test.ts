// The shared per-cgroup table, alone and from several threads at once.

import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SharedTable } from '../../../src/lxcfs/shared-table.js';

describe('SharedTable', () => {
  it('creates records zeroed, finds them again, and deletes them on sweep', () => {
    const table = new SharedTable(SharedTable.allocate(8, 3));
    expect(table.update('/a', (f, created) => ((f[0] = 7), created))).toBe(true);
    expect(table.update('/a', (f, created) => [f[0], f[1], created])).toEqual([7, 0, false]);
    expect(table.read('/missing', () => 1)).toBeUndefined();
    table.update('/b', (f) => (f[2] = 2));
    const seen: string[] = [];
    table.sweep((key) => (seen.push(key), key !== '/a'));
    expect(seen.sort()).toEqual(['/a', '/b']);
    expect(table.read('/a', () => 1)).toBeUndefined();
    expect(table.read('/b', (f) => f[2])).toBe(2);
    expect(table.size).toBe(1);
  });

  it('refuses keys that do not fit and inserts beyond a full table', () => {
    const table = new SharedTable(SharedTable.allocate(4, 1));
    expect(table.update('x'.repeat(513), () => 1)).toBeUndefined();
    for (const key of ['/1', '/2', '/3', '/4']) expect(table.update(key, () => 1)).toBe(1);
    expect(table.update('/5', () => 1)).toBeUndefined();
    table.sweep((key) => key !== '/2');
    expect(table.update('/5', (_f, created) => created)).toBe(true);
    expect(table.read('/4', () => 'found')).toBe('found');
  });

  it('keeps counters exact when four threads update the same keys', async () => {
    const memory = SharedTable.allocate(64, 1);
    const url = new URL('../../../dist/lxcfs/shared-table.js', import.meta.url).href;
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(({ SharedTable }) => {
        const table = new SharedTable(workerData.memory);
        for (let i = 0; i < 5000; i++) table.update('/cg/' + (i % 10), (f) => { f[0] += 1; });
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
