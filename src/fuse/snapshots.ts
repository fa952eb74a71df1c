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

import { lockWord, unlockWord } from '../util/spinlock.js';

const PAGE = 4096;
export const SNAPSHOT_PAGE_BYTES = PAGE;
const MAX_SLOTS = 1 << 16;
const INITIAL_PAGES = 256;
const MAX_PAGES = 1 << 16; // 256 MiB of snapshots at most
const HANDLE_LOW = 0x1_0000_0000;

// Control array layout (Int32 indices).
const LOCK = 0;
const SLOT_FREE_TOP = 1;
const PAGE_FREE_TOP = 2;
const PAGES_MADE = 3;
const TAG = 4;
const HEADER = 5;
const SLOT_FIELDS = 4; // generation, state, length, first page
const SLOT_BASE = HEADER;
const SLOT_FREE_BASE = SLOT_BASE + MAX_SLOTS * SLOT_FIELDS;
const PAGE_NEXT_BASE = SLOT_FREE_BASE + MAX_SLOTS;
const PAGE_FREE_BASE = PAGE_NEXT_BASE + MAX_PAGES;
const CONTROL_INTS = PAGE_FREE_BASE + MAX_PAGES;

const FREE = 0;
const OPEN = 1;
const FILLED = 2;
const NO_PAGE = -1;

export interface SnapshotMemory {
  control: SharedArrayBuffer;
  pages: SharedArrayBuffer;
}

/** A store copied for another process (structured-cloneable). */
export interface SnapshotDump {
  control: string;
  pages: string;
}

export type SnapshotRead =
  | { kind: 'data'; length: number } // bytes copied into the target
  | { kind: 'none' } // handle known but nothing rendered yet, or not ours
  | { kind: 'past-end' }; // offset beyond the snapshot

export class SnapshotStore {
  private readonly ctl: Int32Array;
  private readonly pages: SharedArrayBuffer;
  private bytes: Uint8Array;

  /** Allocates the shared memory; pass `memory` to every reader thread. */
  static allocate(): SnapshotMemory {
    const control = new SharedArrayBuffer(CONTROL_INTS * 4);
    const pages = new SharedArrayBuffer(INITIAL_PAGES * PAGE, { maxByteLength: MAX_PAGES * PAGE });
    const ctl = new Int32Array(control);
    for (let i = 0; i < MAX_SLOTS; i++) ctl[SLOT_FREE_BASE + i] = MAX_SLOTS - 1 - i;
    ctl[SLOT_FREE_TOP] = MAX_SLOTS;
    for (let i = 0; i < INITIAL_PAGES; i++) ctl[PAGE_FREE_BASE + i] = INITIAL_PAGES - 1 - i;
    ctl[PAGE_FREE_TOP] = INITIAL_PAGES;
    ctl[PAGES_MADE] = INITIAL_PAGES;
    // A random non-zero 20-bit tag keeps handles exact as JS numbers (< 2^53).
    ctl[TAG] = 1 + Math.floor(Math.random() * 0xffffe);
    return { control, pages };
  }

  /** A copy of the whole store (handles, generations, free lists, snapshot pages) for a successor process
   * that takes over the connection: handles it did not issue keep working there. */
  static dump(memory: SnapshotMemory): SnapshotDump {
    const ctl = new Int32Array(memory.control);
    return {
      control: Buffer.from(memory.control).toString('base64'),
      pages: Buffer.from(memory.pages, 0, ctl[PAGES_MADE]! * PAGE).toString('base64'),
    };
  }

  /** Replaces the content of `memory` (not yet in use) with a predecessor's dump. */
  static load(memory: SnapshotMemory, dump: SnapshotDump): void {
    const pages = Buffer.from(dump.pages, 'base64');
    if (memory.pages.byteLength < pages.length) memory.pages.grow(pages.length);
    new Uint8Array(memory.pages).set(pages);
    new Uint8Array(memory.control).set(Buffer.from(dump.control, 'base64'));
    // A lock the predecessor held at the moment of the copy means nothing here.
    Atomics.store(new Int32Array(memory.control), LOCK, 0);
  }

  constructor(memory: SnapshotMemory) {
    this.ctl = new Int32Array(memory.control);
    this.pages = memory.pages;
    this.bytes = new Uint8Array(memory.pages);
  }

  /** A new handle, or undefined when every slot is in use (the caller answers ENFILE). */
  open(): number | undefined {
    this.lock();
    try {
      const top = this.ctl[SLOT_FREE_TOP]!;
      if (top === 0) return undefined;
      const slot = this.ctl[SLOT_FREE_BASE + top - 1]!;
      this.ctl[SLOT_FREE_TOP] = top - 1;
      const base = SLOT_BASE + slot * SLOT_FIELDS;
      const generation = (this.ctl[base]! + 1) & 0xffff;
      this.ctl[base] = generation;
      this.ctl[base + 1] = OPEN;
      this.ctl[base + 2] = 0;
      this.ctl[base + 3] = NO_PAGE;
      return this.ctl[TAG]! * HANDLE_LOW + ((generation << 16) | slot);
    } finally {
      this.unlock();
    }
  }

  /** Stores `content` as the snapshot of `handle`, replacing an older one. False if the handle is not
   * ours or the page pool is exhausted (the content is still served, just not kept for later offsets). */
  put(handle: number, content: Uint8Array): boolean {
    this.lock();
    try {
      const base = this.slotBase(handle);
      if (base < 0) return false;
      this.releasePages(base);
      const needed = Math.ceil(content.length / PAGE);
      if (!this.ensureFreePages(needed)) return false;
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
      return true;
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
      this.ctl[base + 1] = FREE;
      const top = this.ctl[SLOT_FREE_TOP]!;
      this.ctl[SLOT_FREE_BASE + top] = (base - SLOT_BASE) / SLOT_FIELDS;
      this.ctl[SLOT_FREE_TOP] = top + 1;
    } finally {
      this.unlock();
    }
  }

  /** Handles currently open and pages in use, for tests and metrics. */
  usage(): { handles: number; pagesInUse: number; pagesMade: number } {
    return {
      handles: MAX_SLOTS - Atomics.load(this.ctl, SLOT_FREE_TOP),
      pagesInUse: Atomics.load(this.ctl, PAGES_MADE) - Atomics.load(this.ctl, PAGE_FREE_TOP),
      pagesMade: Atomics.load(this.ctl, PAGES_MADE),
    };
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
      this.pages.grow(target * PAGE);
      for (let page = target - 1; page >= made; page--) {
        this.ctl[PAGE_FREE_BASE + this.ctl[PAGE_FREE_TOP]!] = page;
        this.ctl[PAGE_FREE_TOP]!++;
      }
      this.ctl[PAGES_MADE] = target;
    }
    // A view made before another thread grew the buffer may not track the new length everywhere.
    if (this.bytes.length !== this.pages.byteLength) this.bytes = new Uint8Array(this.pages);
    return true;
  }

  private lock(): void {
    lockWord(this.ctl, LOCK);
    if (this.bytes.length !== this.pages.byteLength) this.bytes = new Uint8Array(this.pages);
  }

  private unlock(): void {
    unlockWord(this.ctl, LOCK);
  }
}
