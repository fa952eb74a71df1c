// Requests taken off /dev/fuse that wait for a reader thread, queued per tenant and handed out round
// robin: a tenant that keeps hundreds of requests in flight waits behind itself, while another tenant's
// request is next in line (at most one request of each other waiting tenant ahead of it).
//
// Every reader thread reads /dev/fuse itself, and a request that finds the daemon idle is served by the
// thread that read it, with no hand-over (a thread wake-up that, on a VM, is most of a quiet read's
// cost). The kernel's own queue is FIFO across everyone, though: once all readers are busy, requests
// pile up there behind the busiest tenant. So a reader that finds requests already waiting in the
// kernel drains them into this queue, and the readers serve this queue in fair order. The queue also
// keeps count of which readers are blocked in read(), so that a queued request is never left behind
// while every reader waits for the kernel (see beforeRead).
//
// All in shared memory, guarded by one short spinlock: request slots of SLOT_BYTES, a free stack, a
// table of tenants each with a FIFO list of its slots, and a ring of the tenants that have requests.

import { lockWord, unlockWord } from '../util/spinlock.js';
import { TenantTable } from './tenant-table.js';

/** Request slots; when all are taken, a reader serves what it read itself. */
const SLOTS = 2048;
/** Larger requests carry data we never read (WRITE, SETXATTR, IOCTL, SYMLINK: all refused): they are
 * queued cut to this size, their header intact. */
export const SLOT_BYTES = 2048;
const NONE = -1;

// Control words.
const LOCK = 0;
const FREE_TOP = 1;
const RING_HEAD = 2;
const RING_TAIL = 3;
const OUTSIDE = 4; // readers that are not blocked in read() and have not left
const READING = 5; // readers in read()
const HEADER = 6;
const SLOT_FIELDS = 4; // next slot of the same tenant, length, tenant, the caller's own tenant
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

export class FairQueue {
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

  constructor(memory: FairQueueMemory) {
    this.ctl = new Int32Array(memory.control);
    this.data = Buffer.from(memory.data);
    this.tenants = new TenantTable(this.ctl, TENANT_BASE, SLOTS, TENANT_FIELDS, QUEUED);
  }

  /** A reader starts serving: from now on it is counted until it leaves. */
  join(): void {
    this.lock();
    this.ctl[OUTSIDE]!++;
    this.unlock();
  }

  /** A reader about to read /dev/fuse: a queued request it must serve instead, or undefined, and then it
   * counts as reading until afterRead(). It reads, leaving queued requests to others, only when another
   * reader is outside read() to serve them and no one is reading yet: that read drains the kernel's queue
   * (it returns at once while requests wait there). A blocked reader means that queue is empty. */
  beforeRead(): number | undefined {
    this.lock();
    if (this.ctl[RING_HEAD] !== NONE && (this.ctl[READING]! > 0 || this.ctl[OUTSIDE] === 1)) return this.takeLocked();
    this.ctl[OUTSIDE]!--;
    this.ctl[READING]!++;
    this.unlock();
    return undefined;
  }

  /** The read returned (with a request or an error). */
  afterRead(): void {
    this.lock();
    this.ctl[READING]!--;
    this.ctl[OUTSIDE]!++;
    this.unlock();
  }

  /** A reader that will read no more: a queued request it must serve first, or undefined once it has
   * left. The last reader to leave serves everything queued. */
  leave(): number | undefined {
    this.lock();
    if (this.ctl[RING_HEAD] !== NONE) return this.takeLocked();
    this.ctl[OUTSIDE]!--;
    this.unlock();
    return undefined;
  }

  /** Nothing is queued (a moment's view: without the lock). */
  empty(): boolean {
    return Atomics.load(this.ctl, RING_HEAD) === NONE;
  }

  /** Queues `request[0..n)` for `tenant`, with its caller's own tenant if known (else 0); false when
   * every slot is taken. */
  put(tenant: number, callerTenant: number, request: Buffer, n: number): boolean {
    this.lock();
    const top = this.ctl[FREE_TOP]!;
    if (top === 0) return (this.unlock(), false);
    const slot = this.ctl[FREE_BASE + top - 1]!;
    this.ctl[FREE_TOP] = top - 1;
    const length = Math.min(n, SLOT_BYTES);
    request.copy(this.data, slot * SLOT_BYTES, 0, length);
    this.ctl[SLOT_BASE + slot * SLOT_FIELDS + 2] = tenant;
    this.ctl[SLOT_BASE + slot * SLOT_FIELDS + 3] = callerTenant;
    this.append(this.tenants.find(tenant, true), slot, length);
    this.unlock();
    return true;
  }

  /** The next request in fair order: its slot, or undefined when nothing is queued. */
  take(): number | undefined {
    this.lock();
    if (this.ctl[RING_HEAD] === NONE) return (this.unlock(), undefined);
    return this.takeLocked();
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

  /** The caller's own tenant that came with the request in `slot` (0: not known). */
  callerTenant(slot: number): number {
    return this.ctl[SLOT_BASE + slot * SLOT_FIELDS + 3]! >>> 0;
  }

  /** Gives the slot back once its request is answered. */
  done(slot: number): void {
    this.lock();
    this.ctl[FREE_BASE + this.ctl[FREE_TOP]!] = slot;
    this.ctl[FREE_TOP]!++;
    this.unlock();
  }

  /** Takes the ring's head (there is one) and unlocks. */
  private takeLocked(): number {
    const tenant = this.ctl[RING_HEAD]!;
    const slot = this.ctl[tenant + FIRST]!;
    this.ctl[tenant + FIRST] = this.ctl[SLOT_BASE + slot * SLOT_FIELDS]!;
    this.ctl[tenant + QUEUED]!--;
    // The tenant goes to the back of the ring, or leaves it.
    this.ctl[RING_HEAD] = this.ctl[tenant + RING_NEXT]!;
    if (this.ctl[RING_HEAD] === NONE) this.ctl[RING_TAIL] = NONE;
    if (this.ctl[tenant + QUEUED]! > 0) this.enterRing(tenant);
    this.unlock();
    return slot;
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
