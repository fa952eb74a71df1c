// Requests taken off /dev/fuse, waiting for a reader thread, queued per tenant and handed out round
// robin: a tenant that keeps hundreds of requests in flight waits behind itself, while another tenant's
// request is next in line (at most one request of each other waiting tenant ahead of it). The kernel's
// own queue is FIFO across everyone, so the intake thread (reader.ts) keeps it drained into this one.
//
// All in shared memory, guarded by one short spinlock: request slots of SLOT_BYTES, a free stack, a
// table of tenants each with a FIFO list of its slots, and a ring of the tenants that have requests.

import { lockWord, unlockWord } from '../util/spinlock.js';
import { TenantTable } from './tenant-table.js';

/** Request slots; when all are taken the intake waits and the kernel's queue holds the rest. */
const SLOTS = 2048;
/** Larger requests carry data we never read (WRITE, SETXATTR, IOCTL, SYMLINK: all refused): they are
 * queued cut to this size, their header intact. */
export const SLOT_BYTES = 2048;
const NONE = -1;

// Control words.
const LOCK = 0;
const POSTED = 1; // bumped on every put and on close: readers wait on it
const FREED = 2; // bumped when a slot is freed: the intake waits on it when all are taken
const FREE_TOP = 3;
const CLOSED = 4; // 0 while open, else 1 + the index of the close reason
const RING_HEAD = 5;
const RING_TAIL = 6;
const SERVING = 7; // slots taken and not yet done
const NUDGES = 8; // bumped by nudge(): waiting readers run their whileIdle
const HEADER = 9;
const SLOT_FIELDS = 3; // next slot of the same tenant, length, tenant
const SLOT_BASE = HEADER;
const FREE_BASE = SLOT_BASE + SLOTS * SLOT_FIELDS;
// Every tenant with queued requests holds a slot, so SLOTS entries never fill with busy tenants.
const TENANT_FIELDS = 4; // after used and key:
const QUEUED = 2;
const FIRST = 3;
const LAST = 4;
const RING_NEXT = 5;
const TENANT_BASE = FREE_BASE + SLOTS;
const CONTROL_INTS = TENANT_BASE + TenantTable.ints(SLOTS, TENANT_FIELDS);

export interface FairQueueMemory {
  control: SharedArrayBuffer;
  data: SharedArrayBuffer;
}

export class FairQueue<Reason extends string> {
  private readonly ctl: Int32Array;
  private readonly data: Buffer;
  private readonly tenants: TenantTable;

  static allocate(): FairQueueMemory {
    const control = new SharedArrayBuffer(CONTROL_INTS * 4);
    const ctl = new Int32Array(control);
    for (let i = 0; i < SLOTS; i++) ctl[FREE_BASE + i] = SLOTS - 1 - i;
    ctl[FREE_TOP] = SLOTS;
    ctl[RING_HEAD] = NONE;
    ctl[RING_TAIL] = NONE;
    return { control, data: new SharedArrayBuffer(SLOTS * SLOT_BYTES) };
  }

  /** `reasons`: what close() may say, the same list in every thread. */
  constructor(
    memory: FairQueueMemory,
    private readonly reasons: readonly Reason[],
  ) {
    this.ctl = new Int32Array(memory.control);
    this.data = Buffer.from(memory.data);
    this.tenants = new TenantTable(this.ctl, TENANT_BASE, SLOTS, TENANT_FIELDS, QUEUED);
  }

  /** Queues `request[0..n)` for `tenant`; waits while every slot is taken. False once closed. */
  put(tenant: number, request: Buffer, n: number): boolean {
    for (;;) {
      const freed = Atomics.load(this.ctl, FREED);
      this.lock();
      if (this.ctl[CLOSED] !== 0) return (this.unlock(), false);
      const top = this.ctl[FREE_TOP]!;
      if (top > 0) {
        const slot = this.ctl[FREE_BASE + top - 1]!;
        this.ctl[FREE_TOP] = top - 1;
        const length = Math.min(n, SLOT_BYTES);
        request.copy(this.data, slot * SLOT_BYTES, 0, length);
        this.ctl[SLOT_BASE + slot * SLOT_FIELDS + 2] = tenant;
        this.append(this.tenants.find(tenant, true), slot, length);
        Atomics.add(this.ctl, POSTED, 1);
        this.unlock();
        Atomics.notify(this.ctl, POSTED, 1);
        return true;
      }
      this.unlock();
      Atomics.wait(this.ctl, FREED, freed);
    }
  }

  /** The next request in fair order: its slot, or undefined once the queue is closed and empty. Waits
   * while there is none, calling `whileIdle` when nudged meanwhile. */
  take(whileIdle?: () => void): number | undefined {
    for (;;) {
      const posted = Atomics.load(this.ctl, POSTED);
      this.lock();
      const tenant = this.ctl[RING_HEAD]!;
      if (tenant !== NONE) {
        const slot = this.ctl[tenant + FIRST]!;
        this.ctl[tenant + FIRST] = this.ctl[SLOT_BASE + slot * SLOT_FIELDS]!;
        this.ctl[tenant + QUEUED]!--;
        // The tenant goes to the back of the ring, or leaves it.
        this.ctl[RING_HEAD] = this.ctl[tenant + RING_NEXT]!;
        if (this.ctl[RING_HEAD] === NONE) this.ctl[RING_TAIL] = NONE;
        if (this.ctl[tenant + QUEUED]! > 0) this.enterRing(tenant);
        this.ctl[SERVING]!++;
        this.unlock();
        return slot;
      }
      const closed = this.ctl[CLOSED] !== 0;
      this.unlock();
      if (closed) return undefined;
      const nudges = Atomics.load(this.ctl, NUDGES);
      Atomics.wait(this.ctl, POSTED, posted);
      if (Atomics.load(this.ctl, NUDGES) !== nudges) whileIdle?.();
    }
  }

  /** Nothing is queued and no reader is serving (a moment's view: without the lock). */
  idle(): boolean {
    return Atomics.load(this.ctl, RING_HEAD) === NONE && Atomics.load(this.ctl, SERVING) === 0;
  }

  /** The request in `slot` (valid until done(slot)). */
  request(slot: number): Buffer {
    return this.data.subarray(slot * SLOT_BYTES, (slot + 1) * SLOT_BYTES);
  }

  length(slot: number): number {
    return this.ctl[SLOT_BASE + slot * SLOT_FIELDS + 1]!;
  }

  /** The tenant the request in `slot` was queued for. */
  tenant(slot: number): number {
    return this.ctl[SLOT_BASE + slot * SLOT_FIELDS + 2]! >>> 0;
  }

  /** Gives the slot back once its request is answered. */
  done(slot: number): void {
    this.lock();
    this.ctl[FREE_BASE + this.ctl[FREE_TOP]!] = slot;
    this.ctl[FREE_TOP]!++;
    this.ctl[SERVING]!--;
    Atomics.add(this.ctl, FREED, 1);
    this.unlock();
    Atomics.notify(this.ctl, FREED, 1);
  }

  /** Wakes every reader waiting in take() to run its whileIdle once. */
  nudge(): void {
    Atomics.add(this.ctl, NUDGES, 1);
    Atomics.add(this.ctl, POSTED, 1);
    Atomics.notify(this.ctl, POSTED);
  }

  /** No more requests: take() drains what is queued, then answers undefined. The first reason stays. */
  close(reason: Reason): void {
    this.lock();
    if (this.ctl[CLOSED] === 0) this.ctl[CLOSED] = 1 + this.reasons.indexOf(reason);
    Atomics.add(this.ctl, POSTED, 1);
    this.unlock();
    Atomics.notify(this.ctl, POSTED);
    Atomics.notify(this.ctl, FREED);
  }

  /** Why the queue was closed, if it was. */
  closedFor(): Reason | undefined {
    const closed = Atomics.load(this.ctl, CLOSED);
    return closed === 0 ? undefined : this.reasons[closed - 1];
  }

  private append(tenant: number, slot: number, length: number): void {
    const fields = SLOT_BASE + slot * SLOT_FIELDS;
    this.ctl[fields] = NONE;
    this.ctl[fields + 1] = length;
    if (this.ctl[tenant + QUEUED] === 0) {
      this.ctl[tenant + FIRST] = slot;
      this.enterRing(tenant);
    } else {
      this.ctl[SLOT_BASE + this.ctl[tenant + LAST]! * SLOT_FIELDS] = slot;
    }
    this.ctl[tenant + LAST] = slot;
    this.ctl[tenant + QUEUED]!++;
  }

  private enterRing(tenant: number): void {
    this.ctl[tenant + RING_NEXT] = NONE;
    const tail = this.ctl[RING_TAIL]!;
    if (tail === NONE) this.ctl[RING_HEAD] = tenant;
    else this.ctl[tail + RING_NEXT] = tenant;
    this.ctl[RING_TAIL] = tenant;
  }

  private lock(): void {
    lockWord(this.ctl, LOCK);
  }

  private unlock(): void {
    unlockWord(this.ctl, LOCK);
  }
}
