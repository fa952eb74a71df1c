// Per-file-handle content snapshots, shared by every reader thread.
//
// The kernel hands each request to whichever reader thread is free, so the READ at offset 0 of a handle
// (which renders the content) and the READ at offset 4096 of the same handle may land on different
// threads. The snapshot therefore lives in shared memory: a table of handle slots plus a pool of 4 KiB
// pages chained per slot, all in SharedArrayBuffers, guarded by one short spinlock (a copy of a few KiB
// under the lock costs less than any coordination scheme would).
//
// A file handle is `tag * 2^32 + (generation << 16 | slot)`: the tag tells our handles from another
// process's (after a handoff), the generation tells a reused slot from a stale handle.
//
// Every handle counts against a tenant (whatever number the caller's key function gives, e.g. its
// container), and a tenant holds at most its share of the slots and of the pages: one tenant that opens
// thousands of handles is refused itself, and the table stays open to the others. The page pool only
// grows while readers work; the main thread shrinks it again (compact) once it is mostly free.

import { lockWord, unlockWord } from '../util/spinlock.js';
import { whenChanged } from '../util/shared-wait.js';
import { TENANT_KEY, TenantTable } from './tenant-table.js';

export const PAGE = 4096;
export const SNAPSHOT_PAGE_BYTES = PAGE;
const MAX_SLOTS = 1 << 16;
const INITIAL_PAGES = 256;
const MAX_PAGES = 1 << 16; // 256 MiB of snapshots at most
const HANDLE_LOW = 0x1_0000_0000;
/** Tenants holding handles at the same time (open addressing; a tenant with none can be replaced). */
const MAX_TENANTS = 1 << 12;

// Control array layout (Int32 indices).
const LOCK = 0;
const SLOT_FREE_TOP = 1;
const PAGE_FREE_TOP = 2;
const PAGES_MADE = 3;
const TAG = 4;
const POOL_EPOCH = 5; // bumped by every compaction: readers then adopt the new page buffer
const TENANT_HANDLES = 6; // the limits
const TENANT_PAGES = 7;
const TABLE_WARNED = 8; // minute of the last "tenant table full" warning
const HEADER = 9;
const SLOT_FIELDS = 5; // generation, state, length, first page, tenant entry
const SLOT_BASE = HEADER;
const SLOT_FREE_BASE = SLOT_BASE + MAX_SLOTS * SLOT_FIELDS;
const PAGE_NEXT_BASE = SLOT_FREE_BASE + MAX_SLOTS;
const PAGE_FREE_BASE = PAGE_NEXT_BASE + MAX_PAGES;
const TENANT_FIELDS = 3; // after used and key:
const TENANT_HANDLES_HELD = 2;
const TENANT_PAGES_HELD = 3;
const TENANT_WARNED = 4; // minute of the last warning
const TENANT_BASE = PAGE_FREE_BASE + MAX_PAGES;
const CONTROL_INTS = TENANT_BASE + TenantTable.ints(MAX_TENANTS, TENANT_FIELDS);

const FREE = 0;
const OPEN = 1;
const FILLED = 2;
const NO_PAGE = -1;

export interface SnapshotMemory {
  control: SharedArrayBuffer;
  /** Replaced by compact(); readers get the new one through their receivePool. */
  pages: SharedArrayBuffer;
}

export interface TenantUsage {
  seen: number;
  holding: number;
  largestHandles: number;
  largestBytes: number;
  handleLimit: number;
  byteLimit: number;
}

/** What one tenant may hold. */
export interface TenantLimits {
  handles: number;
  /** Snapshot bytes (whole pages). */
  bytes: number;
}

export const DEFAULT_TENANT_LIMITS: TenantLimits = { handles: 1024, bytes: 4 * 1024 * 1024 };

/** A new page buffer from compact(), as a reader receives it. */
export interface PoolMessage {
  epoch: number;
  pages: SharedArrayBuffer;
}

export type OpenResult =
  | { handle: number }
  /** `tenant`: this tenant holds its share; `table`: the table (or the tenant table) is full. */
  | { refused: 'tenant' | 'table'; held: number };

export type PutResult =
  | 'kept'
  | 'not-ours' // not a live handle of this store: nothing kept
  | 'tenant' // the handle's tenant holds its share of pages
  | 'pool'; // the pool is at its cap

/** A store's bytes for another process: views of its memory, valid until it changes. */
export interface SnapshotDump {
  control: Uint8Array;
  pages: Uint8Array;
}

export type SnapshotRead =
  | { kind: 'data'; length: number } // bytes copied into the target
  | { kind: 'none' } // handle known but nothing rendered yet, or not ours
  | { kind: 'past-end' }; // offset beyond the snapshot

export class SnapshotStore {
  private readonly ctl: Int32Array;
  private readonly tenants: TenantTable;
  private bytes: Uint8Array;
  private epoch: number;

  /** Allocates the shared memory; pass `memory` to every reader thread. */
  static allocate(limits: TenantLimits = DEFAULT_TENANT_LIMITS): SnapshotMemory {
    const control = new SharedArrayBuffer(CONTROL_INTS * 4);
    const pages = newPool(INITIAL_PAGES);
    const ctl = new Int32Array(control);
    ctl[TENANT_HANDLES] = limits.handles;
    ctl[TENANT_PAGES] = Math.ceil(limits.bytes / PAGE);
    for (let i = 0; i < MAX_SLOTS; i++) ctl[SLOT_FREE_BASE + i] = MAX_SLOTS - 1 - i;
    ctl[SLOT_FREE_TOP] = MAX_SLOTS;
    for (let i = 0; i < INITIAL_PAGES; i++) ctl[PAGE_FREE_BASE + i] = INITIAL_PAGES - 1 - i;
    ctl[PAGE_FREE_TOP] = INITIAL_PAGES;
    ctl[PAGES_MADE] = INITIAL_PAGES;
    // A random non-zero 20-bit tag keeps handles exact as JS numbers (< 2^53).
    ctl[TAG] = 1 + Math.floor(Math.random() * 0xffffe);
    return { control, pages };
  }

  /** The whole store (handles, generations, free lists, snapshot pages) for a successor process that
   * takes over the connection: handles it did not issue keep working there. No copy: take it while no
   * thread uses the store. */
  static dump(memory: SnapshotMemory): SnapshotDump {
    const ctl = new Int32Array(memory.control);
    return { control: new Uint8Array(memory.control), pages: new Uint8Array(memory.pages, 0, ctl[PAGES_MADE]! * PAGE) };
  }

  /** Replaces the content of `memory` (not yet in use) with a predecessor's dump; the limits stay ours.
   * False, and nothing changed, when the dump has another layout (a version that sizes its tables
   * differently): the predecessor's handles then read as unknown. */
  static load(memory: SnapshotMemory, dump: SnapshotDump): boolean {
    const { control, pages } = dump;
    if (control.length !== memory.control.byteLength || pages.length % PAGE !== 0 || pages.length > MAX_PAGES * PAGE)
      return false;
    if (memory.pages.byteLength < pages.length) memory.pages.grow(pages.length);
    new Uint8Array(memory.pages).set(pages);
    const ctl = new Int32Array(memory.control);
    const handleLimit = ctl[TENANT_HANDLES]!;
    const pageLimit = ctl[TENANT_PAGES]!;
    new Uint8Array(memory.control).set(control);
    ctl[TENANT_HANDLES] = handleLimit;
    ctl[TENANT_PAGES] = pageLimit;
    // A lock the predecessor held at the moment of the copy means nothing here; nor does its pool epoch.
    ctl[POOL_EPOCH] = 0;
    Atomics.store(ctl, LOCK, 0);
    return true;
  }

  /** `receivePool` hands a reader thread the newest page buffer compact() published (see PoolMessage). */
  constructor(
    private readonly memory: SnapshotMemory,
    private readonly receivePool?: () => PoolMessage | undefined,
  ) {
    this.ctl = new Int32Array(memory.control);
    this.tenants = new TenantTable(this.ctl, TENANT_BASE, MAX_TENANTS, TENANT_FIELDS, TENANT_HANDLES_HELD);
    this.bytes = new Uint8Array(memory.pages);
    this.epoch = Atomics.load(this.ctl, POOL_EPOCH);
  }

  /** A new handle counted against `tenant`, or why not. */
  open(tenant: number): OpenResult {
    this.lock();
    try {
      const entry = this.tenants.find(tenant, true);
      if (entry < 0) return { refused: 'table', held: 0 };
      const held = this.ctl[entry + TENANT_HANDLES_HELD]!;
      if (held >= this.ctl[TENANT_HANDLES]!) return { refused: 'tenant', held };
      const top = this.ctl[SLOT_FREE_TOP]!;
      if (top === 0) return { refused: 'table', held };
      const slot = this.ctl[SLOT_FREE_BASE + top - 1]!;
      this.ctl[SLOT_FREE_TOP] = top - 1;
      const base = SLOT_BASE + slot * SLOT_FIELDS;
      const generation = (this.ctl[base]! + 1) & 0xffff;
      this.ctl[base] = generation;
      this.ctl[base + 1] = OPEN;
      this.ctl[base + 2] = 0;
      this.ctl[base + 3] = NO_PAGE;
      this.ctl[base + 4] = entry;
      this.ctl[entry + TENANT_HANDLES_HELD] = held + 1;
      return { handle: this.ctl[TAG]! * HANDLE_LOW + ((generation << 16) | slot) };
    } finally {
      this.unlock();
    }
  }

  /** The tenant a live handle was opened for, or undefined if it is not a live handle of this store. It
   * takes no lock: a handle the kernel sends stays live until its RELEASE is served, and its slot's fields
   * do not change meanwhile. */
  tenantOfHandle(handle: number): number | undefined {
    const base = this.slotBase(handle);
    return base < 0 ? undefined : this.ctl[this.ctl[base + 4]! + TENANT_KEY]! >>> 0;
  }

  /** Stores `content` as the snapshot of `handle`, replacing an older one, if its tenant's share and the
   * pool allow; otherwise the handle keeps no snapshot. */
  put(handle: number, content: Uint8Array): PutResult {
    this.lock();
    try {
      const base = this.slotBase(handle);
      if (base < 0) return 'not-ours';
      this.releasePages(base);
      const needed = Math.ceil(content.length / PAGE);
      const entry = this.ctl[base + 4]!;
      if (this.ctl[entry + TENANT_PAGES_HELD]! + needed > this.ctl[TENANT_PAGES]!) return 'tenant';
      if (!this.ensureFreePages(needed)) return 'pool';
      this.ctl[entry + TENANT_PAGES_HELD]! += needed;
      let previous = NO_PAGE;
      for (let i = needed - 1; i >= 0; i--) {
        const page = this.popPage();
        this.ctl[PAGE_NEXT_BASE + page] = previous;
        previous = page;
        const from = i * PAGE;
        this.bytes.set(content.subarray(from, Math.min(from + PAGE, content.length)), page * PAGE);
      }
      this.ctl[base + 1] = FILLED;
      this.ctl[base + 2] = content.length;
      this.ctl[base + 3] = previous;
      return 'kept';
    } finally {
      this.unlock();
    }
  }

  /** Copies up to `size` bytes from `offset` of the snapshot into `target` at `at`. */
  read(handle: number, offset: number, size: number, target: Uint8Array, at: number): SnapshotRead {
    this.lock();
    try {
      const base = this.slotBase(handle);
      if (base < 0 || this.ctl[base + 1] !== FILLED) return { kind: 'none' };
      const length = this.ctl[base + 2]!;
      if (offset > length) return { kind: 'past-end' };
      const end = Math.min(length, offset + size);
      let page = this.ctl[base + 3]!;
      for (let skip = Math.floor(offset / PAGE); skip > 0; skip--) page = this.ctl[PAGE_NEXT_BASE + page]!;
      let copied = 0;
      let position = offset;
      while (position < end) {
        const within = position % PAGE;
        const chunk = Math.min(PAGE - within, end - position);
        target.set(this.bytes.subarray(page * PAGE + within, page * PAGE + within + chunk), at + copied);
        copied += chunk;
        position += chunk;
        page = this.ctl[PAGE_NEXT_BASE + page]!;
      }
      return { kind: 'data', length: copied };
    } finally {
      this.unlock();
    }
  }

  /** Forgets the handle and frees its pages; unknown handles are ignored. */
  release(handle: number): void {
    this.lock();
    try {
      const base = this.slotBase(handle);
      if (base < 0) return;
      this.releasePages(base);
      this.ctl[this.ctl[base + 4]! + TENANT_HANDLES_HELD]!--;
      this.ctl[base + 1] = FREE;
      const top = this.ctl[SLOT_FREE_TOP]!;
      this.ctl[SLOT_FREE_BASE + top] = (base - SLOT_BASE) / SLOT_FIELDS;
      this.ctl[SLOT_FREE_TOP] = top + 1;
    } finally {
      this.unlock();
    }
  }

  /** True at most once per minute per tenant (and once for the tenant table): whether a refusal for
   * `tenant` should be logged, across every thread sharing the store. */
  claimWarning(tenant: number, minute = Math.floor(Date.now() / 60_000)): boolean {
    this.lock();
    try {
      const entry = this.tenants.find(tenant, false);
      const field = entry < 0 ? TABLE_WARNED : entry + TENANT_WARNED;
      if (this.ctl[field] === minute) return false;
      this.ctl[field] = minute;
      return true;
    } finally {
      this.unlock();
    }
  }

  /** Shrinks the page pool when at most a quarter of it is in use: the pages in use move, compacted, into
   * a new buffer that `publish` hands to every reader thread (it is called under the lock, so no reader
   * uses the old buffer once it sees the new epoch). The old buffer is freed once no thread refers to
   * it. Returns whether it compacted. */
  compact(publish: (message: PoolMessage) => void): boolean {
    this.lock();
    try {
      const made = this.ctl[PAGES_MADE]!;
      const inUse = made - this.ctl[PAGE_FREE_TOP]!;
      if (made <= INITIAL_PAGES || inUse * 4 > made) return false;
      let size = INITIAL_PAGES;
      while (size < inUse * 2) size *= 2;
      const pages = newPool(size);
      const bytes = new Uint8Array(pages);
      const next = new Int32Array(size).fill(NO_PAGE);
      let moved = 0;
      for (let slot = 0; slot < MAX_SLOTS; slot++) {
        const base = SLOT_BASE + slot * SLOT_FIELDS;
        let page = this.ctl[base + 3]!;
        if (this.ctl[base + 1] === FREE || page === NO_PAGE) continue;
        this.ctl[base + 3] = moved;
        while (page !== NO_PAGE) {
          bytes.set(this.bytes.subarray(page * PAGE, (page + 1) * PAGE), moved * PAGE);
          page = this.ctl[PAGE_NEXT_BASE + page]!;
          if (page !== NO_PAGE) next[moved] = moved + 1;
          moved++;
        }
      }
      this.ctl.set(next, PAGE_NEXT_BASE);
      let top = 0;
      for (let page = size - 1; page >= moved; page--) this.ctl[PAGE_FREE_BASE + top++] = page;
      this.ctl[PAGE_FREE_TOP] = top;
      this.ctl[PAGES_MADE] = size;
      this.epoch = this.ctl[POOL_EPOCH]! + 1;
      this.ctl[POOL_EPOCH] = this.epoch;
      this.memory.pages = pages;
      this.bytes = bytes;
      publish({ epoch: this.epoch, pages });
      return true;
    } finally {
      this.unlock();
    }
  }

  /** The pool is larger than its first size: compact() may have something to give back. */
  isGrown(): boolean {
    return Atomics.load(this.ctl, PAGES_MADE) > INITIAL_PAGES;
  }

  /** Resolves when a reader grows the pool from its first size (at once if it is larger now). Waits
   * without a timer: an idle daemon does not wake up for it. */
  grown(): Promise<void> {
    return whenChanged(this.ctl, PAGES_MADE, INITIAL_PAGES);
  }

  /** Handles currently open and pages in use, for tests and metrics. */
  usage(): { handles: number; pagesInUse: number; pagesMade: number } {
    return {
      handles: MAX_SLOTS - Atomics.load(this.ctl, SLOT_FREE_TOP),
      pagesInUse: Atomics.load(this.ctl, PAGES_MADE) - Atomics.load(this.ctl, PAGE_FREE_TOP),
      pagesMade: Atomics.load(this.ctl, PAGES_MADE),
    };
  }

  /** Tenants (containers) the store has counted handles for since it began, up to the table's size (an
   * entry of one that holds nothing may be taken over by another), those holding handles now, the
   * largest share one of them holds, and the limits of a share. Scans the table: for scrapes only. */
  tenantUsage(): TenantUsage {
    const usage: TenantUsage = {
      seen: 0,
      holding: 0,
      largestHandles: 0,
      largestBytes: 0,
      handleLimit: this.ctl[TENANT_HANDLES]!,
      byteLimit: this.ctl[TENANT_PAGES]! * PAGE,
    };
    this.lock();
    try {
      this.tenants.forEach((entry) => {
        usage.seen++;
        const handles = this.ctl[entry + TENANT_HANDLES_HELD]!;
        if (handles > 0) usage.holding++;
        usage.largestHandles = Math.max(usage.largestHandles, handles);
        usage.largestBytes = Math.max(usage.largestBytes, this.ctl[entry + TENANT_PAGES_HELD]! * PAGE);
      });
    } finally {
      this.unlock();
    }
    return usage;
  }

  /** Index of the slot's fields, or -1 if the handle is not a live handle of this store. */
  private slotBase(handle: number): number {
    if (Math.floor(handle / HANDLE_LOW) !== this.ctl[TAG]) return -1;
    const low = handle % HANDLE_LOW;
    const slot = low & 0xffff;
    const base = SLOT_BASE + slot * SLOT_FIELDS;
    if (this.ctl[base] !== low >>> 16 || this.ctl[base + 1] === FREE) return -1;
    return base;
  }

  private releasePages(base: number): void {
    let page = this.ctl[base + 3]!;
    if (page !== NO_PAGE) this.ctl[this.ctl[base + 4]! + TENANT_PAGES_HELD]! -= Math.ceil(this.ctl[base + 2]! / PAGE);
    while (page !== NO_PAGE) {
      const next = this.ctl[PAGE_NEXT_BASE + page]!;
      this.ctl[PAGE_FREE_BASE + this.ctl[PAGE_FREE_TOP]!] = page;
      this.ctl[PAGE_FREE_TOP]!++;
      page = next;
    }
    this.ctl[base + 3] = NO_PAGE;
    this.ctl[base + 2] = 0;
  }

  private popPage(): number {
    const top = this.ctl[PAGE_FREE_TOP]! - 1;
    this.ctl[PAGE_FREE_TOP] = top;
    return this.ctl[PAGE_FREE_BASE + top]!;
  }

  /** Grows the shared page pool (doubling) until `needed` pages are free; false past the cap. */
  private ensureFreePages(needed: number): boolean {
    while (this.ctl[PAGE_FREE_TOP]! < needed) {
      const made = this.ctl[PAGES_MADE]!;
      if (made >= MAX_PAGES) return false;
      const target = Math.min(MAX_PAGES, made * 2);
      this.memory.pages.grow(target * PAGE);
      for (let page = target - 1; page >= made; page--) {
        this.ctl[PAGE_FREE_BASE + this.ctl[PAGE_FREE_TOP]!] = page;
        this.ctl[PAGE_FREE_TOP]!++;
      }
      this.ctl[PAGES_MADE] = target;
      Atomics.notify(this.ctl, PAGES_MADE); // the main thread waits for this to start compacting
    }
    // A view made before another thread grew the buffer may not track the new length everywhere.
    if (this.bytes.length !== this.memory.pages.byteLength) this.bytes = new Uint8Array(this.memory.pages);
    return true;
  }

  private lock(): void {
    lockWord(this.ctl, LOCK);
    if (this.ctl[POOL_EPOCH] !== this.epoch && !this.adoptPool()) {
      const published = this.ctl[POOL_EPOCH];
      this.unlock();
      throw new Error(`snapshot pool epoch ${published} was published but never received by this thread`);
    }
    if (this.bytes.length !== this.memory.pages.byteLength) this.bytes = new Uint8Array(this.memory.pages);
  }

  /** Another view compacted the pool. In this thread it replaced the pages of the memory object the views
   * here share; in another thread, its message carrying the new buffer is already queued for us. */
  private adoptPool(): boolean {
    if (this.bytes.buffer !== this.memory.pages) {
      this.epoch = this.ctl[POOL_EPOCH]!;
      this.bytes = new Uint8Array(this.memory.pages);
      return true;
    }
    const message = this.receivePool?.();
    if (message === undefined || message.epoch !== this.ctl[POOL_EPOCH]) return false;
    this.epoch = message.epoch;
    this.memory.pages = message.pages;
    this.bytes = new Uint8Array(message.pages);
    return true;
  }

  private unlock(): void {
    unlockWord(this.ctl, LOCK);
  }
}

function newPool(pages: number): SharedArrayBuffer {
  return new SharedArrayBuffer(pages * PAGE, { maxByteLength: MAX_PAGES * PAGE });
}
