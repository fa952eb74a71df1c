// The fair queue between the intake and the readers: the order in which tenants are served, what a slot
// keeps of a request, and closing. All from one thread: take() only waits when nothing is queued.

import { describe, expect, it } from 'vitest';
import { FairQueue, SLOT_BYTES } from '../../src/fuse/fair-queue.js';

const REASONS = ['sentinel', 'error'] as const;

function queue(): FairQueue<(typeof REASONS)[number]> {
  return new FairQueue(FairQueue.allocate(), REASONS);
}

/** Queues one request per entry of `tenants`, each carrying its tenant and its index. */
function putAll(q: FairQueue<string>, tenants: number[]): void {
  tenants.forEach((tenant, index) => {
    const request = Buffer.alloc(8);
    request.writeInt32LE(tenant, 0);
    request.writeInt32LE(index, 4);
    expect(q.put(tenant, request, request.length)).toBe(true);
  });
}

/** Takes `n` requests: [tenant, index] of each, slots given back as a reader would. */
function takeAll(q: FairQueue<string>, n: number): Array<[number, number]> {
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
    q.put(2, quiet, quiet.length);
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
    q.put(1, small, small.length);
    q.put(1, large, large.length);
    const first = q.take()!;
    expect(q.length(first)).toBe(small.length);
    expect(q.request(first).subarray(0, q.length(first)).toString()).toBe('a small request');
    q.done(first);
    const second = q.take()!;
    expect(q.length(second)).toBe(SLOT_BYTES);
    expect(q.request(second).subarray(0, 6).toString()).toBe('header');
    q.done(second);
  });

  it('drains what is queued after close, then answers undefined; the first reason stays', () => {
    const q = queue();
    putAll(q, [1, 2]);
    q.close('sentinel');
    q.close('error');
    expect(q.put(3, Buffer.alloc(8), 8)).toBe(false);
    expect(takeAll(q, 2).map(([tenant]) => tenant)).toEqual([1, 2]);
    expect(q.take()).toBeUndefined();
    expect(q.closedFor()).toBe('sentinel');
  });

  it('hands each slot to its reader with the tenant it was queued for, namespace inodes above 2^31 included', () => {
    const q = queue();
    const tenants = [4026531836, 7, 4026532999];
    for (const tenant of tenants) expect(q.put(tenant, Buffer.alloc(8), 8)).toBe(true);
    const seen: number[] = [];
    for (let i = 0; i < tenants.length; i++) {
      const slot = q.take()!;
      seen.push(q.tenant(slot));
      q.done(slot);
    }
    expect(seen.sort()).toEqual([...tenants].sort());
  });
});
