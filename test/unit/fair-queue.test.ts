// The fair queue of the reader threads: the order in which tenants are served, what a slot keeps of a
// request, and when a reader must serve what is queued rather than read. All from one thread, playing
// several readers: nothing in it waits.

import { describe, expect, it } from 'vitest';
import { FairQueue, SLOT_BYTES } from '../../src/fuse/fair-queue.js';

function queue(): FairQueue {
  return new FairQueue(FairQueue.allocate());
}

/** Queues one request per entry of `tenants`, each carrying its tenant and its index. */
function putAll(q: FairQueue, tenants: number[]): void {
  tenants.forEach((tenant, index) => {
    const request = Buffer.alloc(8);
    request.writeInt32LE(tenant, 0);
    request.writeInt32LE(index, 4);
    expect(q.put(tenant, 0, request, request.length)).toBe(true);
  });
}

/** Takes `n` requests: [tenant, index] of each, slots given back as a reader would. */
function takeAll(q: FairQueue, n: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const slot = q.take()!;
    const request = q.request(slot);
    out.push([request.readInt32LE(0), request.readInt32LE(4)]);
    q.done(slot);
  }
  return out;
}

describe('fair queue', () => {
  it('serves tenants round robin, one request each, in the order each tenant first queued', () => {
    const q = queue();
    // A flood from tenant 7 queued first, then one request of 9, then 11 with two.
    putAll(q, [7, 7, 7, 7, 7, 9, 11, 11]);
    expect(takeAll(q, 8)).toEqual([
      [7, 0],
      [9, 5],
      [11, 6],
      [7, 1],
      [11, 7],
      [7, 2],
      [7, 3],
      [7, 4],
    ]);
  });

  it('puts a newly arriving tenant behind at most one request of each busy tenant', () => {
    const q = queue();
    putAll(
      q,
      Array.from({ length: 300 }, () => 1),
    );
    // Readers have taken some of the flood; a quiet tenant arrives.
    expect(takeAll(q, 3).map(([tenant]) => tenant)).toEqual([1, 1, 1]);
    const quiet = Buffer.alloc(8);
    quiet.writeInt32LE(2, 0);
    q.put(2, 0, quiet, quiet.length);
    expect(takeAll(q, 2).map(([tenant]) => tenant)).toEqual([1, 2]);
  });

  it('takes any 32-bit key as a tenant, negative ones included', () => {
    const q = queue();
    putAll(q, [-5, -5, 2 ** 31 - 1, 0]);
    expect(takeAll(q, 4).map(([tenant]) => tenant)).toEqual([-5, 2 ** 31 - 1, 0, -5]);
  });

  it('keeps a request whole up to the slot size and cuts a larger one to it, header intact', () => {
    const q = queue();
    const small = Buffer.from('a small request');
    const large = Buffer.alloc(SLOT_BYTES * 2, 0x5a);
    large.write('header', 0);
    q.put(1, 0, small, small.length);
    q.put(1, 0, large, large.length);
    const first = q.take()!;
    expect(q.length(first)).toBe(small.length);
    expect(q.request(first).subarray(0, q.length(first)).toString()).toBe('a small request');
    q.done(first);
    const second = q.take()!;
    expect(q.length(second)).toBe(SLOT_BYTES);
    expect(q.request(second).subarray(0, 6).toString()).toBe('header');
    q.done(second);
  });

  it('refuses a request when every slot is taken, so that the reader serves it itself', () => {
    const q = queue();
    let queued = 0;
    while (q.put(1, 0, Buffer.alloc(8), 8)) queued++;
    expect(queued).toBe(2048);
    const slot = q.take()!;
    q.done(slot);
    expect(q.put(1, 0, Buffer.alloc(8), 8)).toBe(true);
  });

  it('lets a reader read, leaving queued requests, only while another is outside read() and none reads', () => {
    const q = queue();
    q.join(); // reader A
    q.join(); // reader B
    putAll(q, [1, 2]);
    // A drains the kernel's queue: B is outside read() and will serve what is queued.
    expect(q.beforeRead()).toBeUndefined();
    // B must not read too (A's read would have returned at once had the kernel held anything).
    const first = q.beforeRead();
    expect(first).toBeDefined();
    q.done(first!);
    // A's read returned, with a request it queued: it reads on, since B (serving) is outside read().
    q.afterRead();
    putAll(q, [3]);
    expect(q.beforeRead()).toBeUndefined();
    // B, done, serves the queue in fair order while A reads.
    const second = q.beforeRead()!;
    expect(q.tenant(second)).toBe(2);
    q.done(second);
    const third = q.beforeRead()!;
    expect(q.tenant(third)).toBe(3);
    q.done(third);
    expect(q.empty()).toBe(true);
    // Nothing queued: B reads too.
    expect(q.beforeRead()).toBeUndefined();
  });

  it('makes the last reader outside read() serve the queue rather than read', () => {
    const q = queue();
    q.join();
    q.join();
    expect(q.beforeRead()).toBeUndefined(); // A blocks in read(): the kernel has nothing
    putAll(q, [3]); // B queued what it read
    expect(q.beforeRead()).toBeDefined(); // and, alone outside, must serve it
  });

  it('has a reader that leaves serve what is queued until it is empty, and only then leave', () => {
    const q = queue();
    q.join();
    putAll(q, [1, 2, 1]);
    const served: number[] = [];
    for (let slot = q.leave(); slot !== undefined; slot = q.leave()) {
      served.push(q.tenant(slot));
      q.done(slot);
    }
    expect(served).toEqual([1, 2, 1]);
    expect(q.take()).toBeUndefined();
  });

  it('hands each slot to its reader with the tenant it was queued for, namespace inodes above 2^31 included', () => {
    const q = queue();
    const tenants = [4026531836, 7, 4026532999];
    for (const tenant of tenants) expect(q.put(tenant, 0, Buffer.alloc(8), 8)).toBe(true);
    const seen: number[] = [];
    for (let i = 0; i < tenants.length; i++) {
      const slot = q.take()!;
      seen.push(q.tenant(slot));
      q.done(slot);
    }
    expect(seen.sort()).toEqual([...tenants].sort());
  });
});
