// The shared snapshot store, from one thread and from several worker threads at once.

import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { SnapshotStore } from '../../src/fuse/snapshots.js';

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function readAll(store: SnapshotStore, handle: number, chunk: number): Buffer | string {
  const parts: Buffer[] = [];
  const target = new Uint8Array(chunk);
  for (let offset = 0; ; ) {
    const result = store.read(handle, offset, chunk, target, 0);
    if (result.kind !== 'data') return result.kind;
    if (result.length === 0) return Buffer.concat(parts);
    parts.push(Buffer.from(target.subarray(0, result.length)));
    offset += result.length;
  }
}

function opened(store: SnapshotStore, tenant = 1): number {
  const result = store.open(tenant);
  if (!('handle' in result)) throw new Error(`open refused: ${result.refused}`);
  return result.handle;
}

function same(actual: Buffer | string, expected: Uint8Array): boolean {
  return typeof actual !== 'string' && actual.equals(expected);
}

describe('SnapshotStore', () => {
  it('keeps each handle\'s content apart and serves it in any chunk size', () => {
    const store = new SnapshotStore(SnapshotStore.allocate());
    const a = opened(store);
    const b = opened(store);
    const contentA = bytes(10_000, 1);
    const contentB = bytes(5, 2);
    expect(store.put(a, contentA)).toBe('kept');
    expect(store.put(b, contentB)).toBe('kept');
    for (const chunk of [1, 7, 4096, 4097, 65536]) {
      expect(same(readAll(store, a, chunk), contentA), `chunk ${chunk}`).toBe(true);
      expect(same(readAll(store, b, chunk), contentB), `chunk ${chunk}`).toBe(true);
    }
    expect(store.read(a, 10_001, 10, new Uint8Array(10), 0).kind).toBe('past-end');
    expect(store.read(a, 10_000, 10, new Uint8Array(10), 0)).toEqual({ kind: 'data', length: 0 });
  });

  it('answers "none" before the first put, after release, and for stale or foreign handles', () => {
    const memory = SnapshotStore.allocate();
    const store = new SnapshotStore(memory);
    const handle = opened(store);
    expect(store.read(handle, 5, 10, new Uint8Array(10), 0).kind).toBe('none');
    store.put(handle, bytes(100, 3));
    store.release(handle);
    expect(store.read(handle, 5, 10, new Uint8Array(10), 0).kind).toBe('none');
    const reused = opened(store);
    expect(reused).not.toBe(handle); // same slot, new generation
    expect(store.put(handle, bytes(10, 1))).toBe('not-ours');
    const foreign = new SnapshotStore(SnapshotStore.allocate());
    expect(foreign.read(reused, 0, 10, new Uint8Array(10), 0).kind).toBe('none');
    store.release(handle); // a second release of a stale handle is harmless
    expect(store.usage().handles).toBe(1);
  });

  it('hands every open handle and snapshot to a successor through dump and load', () => {
    const memory = SnapshotStore.allocate();
    const store = new SnapshotStore(memory);
    const handles = Array.from({ length: 30 }, () => opened(store));
    handles.forEach((h, i) => store.put(h, bytes(5000 + i * 300, i)));
    store.release(handles[3]!);
    const successorMemory = SnapshotStore.allocate();
    const { control, pages } = SnapshotStore.dump(memory);
    expect(SnapshotStore.load(successorMemory, { control: control.slice(), pages: pages.slice() })).toBe(true);
    const successor = new SnapshotStore(successorMemory);
    handles.forEach((h, i) => {
      if (i === 3) expect(successor.read(h, 1, 10, new Uint8Array(10), 0).kind).toBe('none');
      else expect(same(readAll(successor, h, 777), bytes(5000 + i * 300, i))).toBe(true);
    });
    const fresh = opened(successor);
    expect(handles).not.toContain(fresh);
    expect(successor.usage().handles).toBe(30);
  });

  it('refuses, and leaves untouched, a dump from a version whose tables are sized differently', () => {
    const memory = SnapshotStore.allocate();
    const store = new SnapshotStore(memory);
    const handle = opened(store);
    store.put(handle, bytes(100, 1));
    const { control, pages } = SnapshotStore.dump(SnapshotStore.allocate());
    expect(SnapshotStore.load(memory, { control: control.subarray(4), pages })).toBe(false);
    expect(SnapshotStore.load(memory, { control, pages: pages.subarray(1) })).toBe(false);
    expect(same(readAll(store, handle, 50), bytes(100, 1))).toBe(true);
  });

  it('grows the page pool on demand and returns every page on release', () => {
    const store = new SnapshotStore(SnapshotStore.allocate());
    const before = store.usage().pagesMade;
    const handles = Array.from({ length: 40 }, () => opened(store));
    handles.forEach((h, i) => expect(store.put(h, bytes(64 * 1024, i))).toBe('kept'));
    expect(store.usage().pagesMade).toBeGreaterThan(before);
    handles.forEach((h, i) => expect(same(readAll(store, h, 3000), bytes(64 * 1024, i))).toBe(true));
    handles.forEach((h) => store.release(h));
    expect(store.usage()).toMatchObject({ handles: 0, pagesInUse: 0 });
  });

  it('stays consistent when four threads open, fill, read and release at the same time', async () => {
    const memory = SnapshotStore.allocate();
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      import(workerData.url).then(({ SnapshotStore }) => {
        const store = new SnapshotStore(workerData.memory);
        let bad = 0;
        for (let i = 0; i < 2000; i++) {
          const h = store.open(workerData.seed).handle;
          const length = 1 + ((i * 7919 + workerData.seed * 104729) % 20000);
          const content = new Uint8Array(length).fill((i + workerData.seed) & 0xff);
          store.put(h, content);
          const target = new Uint8Array(length);
          const r = store.read(h, 0, length, target, 0);
          if (r.kind !== 'data' || r.length !== length || target.some((b) => b !== ((i + workerData.seed) & 0xff))) bad++;
          store.release(h);
        }
        parentPort.postMessage(bad);
      });`;
    // Plain worker threads cannot load TypeScript: they use the build (npm test builds first).
    const url = new URL('../../dist/fuse/snapshots.js', import.meta.url).href;
    const results = await Promise.all(
      [1, 2, 3, 4].map(
        (seed) =>
          new Promise<number>((resolve, reject) => {
            const worker = new Worker(source, { eval: true, workerData: { memory, seed, url } });
            worker.once('message', resolve);
            worker.once('error', reject);
          }),
      ),
    );
    expect(results).toEqual([0, 0, 0, 0]);
    expect(new SnapshotStore(memory).usage()).toMatchObject({ handles: 0, pagesInUse: 0 });
  });

  it('refuses a tenant beyond its share of handles and pages, and no one else; gives the share back on release', () => {
    const store = new SnapshotStore(SnapshotStore.allocate({ handles: 3, bytes: 2 * 4096 }));
    const hog = [1, 2, 3].map(() => opened(store, 7));
    expect(store.open(7)).toEqual({ refused: 'tenant', held: 3 });
    expect(store.put(hog[0]!, bytes(4097, 1))).toBe('kept'); // two pages: the whole share
    expect(store.put(hog[1]!, bytes(1, 1))).toBe('tenant');
    const other = opened(store, 8);
    expect(store.put(other, bytes(8192, 2))).toBe('kept');
    store.release(hog[0]!);
    expect(store.put(hog[1]!, bytes(1, 1))).toBe('kept');
    expect('handle' in store.open(7)).toBe(true);
    // Tenant keys are 32-bit patterns: a pid namespace inode above 2^31 is its own tenant.
    expect('handle' in store.open(4026531836)).toBe(true);
  });

  it('says to warn once per tenant per minute', () => {
    const store = new SnapshotStore(SnapshotStore.allocate());
    opened(store, 5);
    expect([store.claimWarning(5, 100), store.claimWarning(5, 100), store.claimWarning(6, 100), store.claimWarning(5, 101)]).toEqual([true, false, true, true]);
  });

  it('compacts a mostly free pool into a small one that every store sharing it adopts, snapshots intact', () => {
    const memory = SnapshotStore.allocate({ handles: 1024, bytes: 64 << 20 });
    const messages: Array<{ epoch: number; pages: SharedArrayBuffer }> = [];
    const main = new SnapshotStore(memory);
    const reader = new SnapshotStore({ ...memory }, () => messages.at(-1));
    const handles = Array.from({ length: 200 }, (_, i) => opened(reader, i % 3));
    handles.forEach((h, i) => reader.put(h, bytes(20_000 + i, i)));
    const grown = reader.usage().pagesMade;
    handles.slice(10).forEach((h) => reader.release(h));
    expect(main.compact((message) => messages.push(message))).toBe(true);
    expect(main.usage().pagesMade).toBeLessThanOrEqual(grown / 4);
    expect(memory.pages.byteLength).toBe(main.usage().pagesMade * 4096);
    handles.slice(0, 10).forEach((h, i) => expect(same(readAll(reader, h, 3000), bytes(20_000 + i, i))).toBe(true));
    expect(main.compact((message) => messages.push(message))).toBe(false); // nothing more to give back
    handles.slice(0, 10).forEach((h) => reader.release(h));
    expect(reader.usage()).toMatchObject({ handles: 0, pagesInUse: 0 });
  });

  it('wakes a thread waiting for the pool to grow when a reader grows it, and only then', async () => {
    const memory = SnapshotStore.allocate({ handles: 1024, bytes: 64 << 20 });
    const main = new SnapshotStore(memory);
    const reader = new SnapshotStore({ ...memory });
    let woke = false;
    const grown = main.grown().then(() => (woke = true));
    reader.put(opened(reader, 1), bytes(100, 1));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect([woke, main.isGrown()]).toEqual([false, false]);
    Array.from({ length: 100 }, (_, i) => opened(reader, i % 3)).forEach((h, i) => reader.put(h, bytes(20_000 + i, i)));
    await grown;
    expect(main.isGrown()).toBe(true);
    await main.grown(); // at once while it stays grown
  });

  it('serves every view of the compacting thread after a compaction, as the metrics scrape has one', () => {
    const memory = SnapshotStore.allocate({ handles: 1024, bytes: 64 << 20 });
    const scrape = new SnapshotStore(memory);
    const compactor = new SnapshotStore(memory);
    const handles = Array.from({ length: 200 }, (_, i) => opened(scrape, i % 3));
    handles.forEach((h, i) => scrape.put(h, bytes(20_000 + i, i)));
    handles.slice(1).forEach((h) => scrape.release(h));
    expect(compactor.compact(() => {})).toBe(true);
    // Before, the older view threw "snapshot pool epoch 1 was published but never received by this thread",
    // and with it the serving process, at the first scrape after the pool shrank.
    expect(scrape.tenantUsage().holding).toBe(1);
    expect(same(readAll(scrape, handles[0]!, 3000), bytes(20_000, 0))).toBe(true);
    scrape.release(handles[0]!);
    expect(scrape.usage()).toMatchObject({ handles: 0, pagesInUse: 0 });
  });

  it('tells a reader which tenant opened a live handle, and nothing for a released or foreign one', () => {
    const memory = SnapshotStore.allocate();
    const store = new SnapshotStore(memory);
    // As another thread sharing the store sees it.
    const owners = new SnapshotStore(memory);
    const a = opened(store, 4026532001);
    const b = opened(store, 12);
    expect([owners.tenantOfHandle(a), owners.tenantOfHandle(b)]).toEqual([4026532001, 12]);
    store.release(a);
    expect(owners.tenantOfHandle(a)).toBeUndefined();
    // The slot is reused under a new generation: the stale handle still names no one.
    const c = opened(store, 99);
    expect([owners.tenantOfHandle(a), owners.tenantOfHandle(c)]).toEqual([undefined, 99]);
    const other = opened(new SnapshotStore(SnapshotStore.allocate()), 5);
    expect(owners.tenantOfHandle(other)).toBeUndefined();
  });
});
