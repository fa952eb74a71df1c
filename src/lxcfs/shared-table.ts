// Per-cgroup state that every reader thread (and the main thread) must see the same way: a fixed-size
// open-addressing hash table in SharedArrayBuffers, keyed by a string (a cgroup directory, up to 8 KiB:
// beyond any cgroup path the kernel shows), each record a few float64 fields, guarded by one short
// spinlock. Keys are stored and compared in full, so a sampler can walk them; the hash only places them,
// seeded at random so that nobody can choose cgroup names that pile up on one slot.
//
// Why shared: two consecutive reads of /proc/stat by `top` may be served by different reader threads,
// and counters that must only grow (or a load average history) cannot live in one thread's memory.
//
// Never full: each record belongs to the container (an owner number) whose read created it. An owner
// holding its share evicts its own least recently used record; a full table evicts the least recently
// used record of the owner holding the most. So a container that reads from thousands of cgroups costs
// only itself its history, and every reader always gets a record.
//
// Each record is on pages of its own (a key may be 8 KiB), and a table has thousands: only the pages of
// records in use are ever touched, or backed by memory. The slots' states (empty, used, deleted) are
// kept apart as well, one word each, so that walking the table reads 16 kB, not a page per slot.
//
// Optionally written through to a file (`store`, a descriptor of a tmpfs file the supervisor holds):
// every change of a record reaches the file before the value computed from it is returned, so a
// successor serving process that restores the file continues exactly where its predecessor stopped.

import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import { lockWord, unlockWord } from '../util/spinlock.js';
import { whenChanged } from '../util/shared-wait.js';

const LOCK = 0;
const COUNT = 1;
const DELETED_COUNT = 2;
const SEED = 3;
/** Bumped whenever a record is made, removed or moved: a thread's list of used slots is stale then. */
const GENERATION = 4;
const CONTROL_INTS = 5;

const EMPTY = 0;
const USED = 1;
const DELETED = 2;

// A record: state, key length, key hash (int32; 4 bytes spare), last use (ms), owner, fields (float64),
// key bytes.
const KEY_OFFSET_WORDS = 2;
const LAST_USE_OFFSET = 24;
const OWNER_OFFSET = 32;
const FIELDS_OFFSET = 40;
const KEY_BYTES = 8192;

/** The file starts with the table's layout; a file of another layout is not restored. */
const FILE_MAGIC = 0x4c585453; // "LXTS"
const FILE_VERSION = 1;
const FILE_HEADER_BYTES = 64;

export interface SharedTableMemory {
  control: SharedArrayBuffer;
  /** One int32 per slot: its state, as in the record's first word (which the store keeps). */
  states: SharedArrayBuffer;
  records: SharedArrayBuffer;
  capacity: number;
  fieldCount: number;
  /** Records one owner may hold. */
  share: number;
  /** Descriptor of the file the table is written through to, if any. */
  store?: number;
}

export class SharedTable {
  private readonly control: Int32Array;
  private readonly states: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly ints: Int32Array;
  private readonly floats: Float64Array;
  private readonly capacity: number;
  private readonly recordBytes: number;
  private readonly share: number;
  private readonly store: number | undefined;
  readonly fieldCount: number;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();
  /** The slots in use as of GENERATION `listedAt` (see slotsInUse), and their keys once a sweep has
   * decoded them (the room check of a new record needs no key). */
  private used: { slots: number[]; keys: string[] | undefined; listedAt: number } = {
    slots: [],
    keys: [],
    listedAt: -1,
  };

  /** `capacity` records of `fieldCount` float64 fields each; `share` records at most per owner. */
  static allocate(
    capacity: number,
    fieldCount: number,
    options: { share?: number; store?: number } = {},
  ): SharedTableMemory {
    const control = new SharedArrayBuffer(CONTROL_INTS * 4);
    new Int32Array(control)[SEED] = randomInt(2 ** 31);
    return {
      control,
      states: new SharedArrayBuffer(capacity * 4),
      // Pages nobody touches (key space beyond short paths, unused slots) are never backed by memory.
      records: new SharedArrayBuffer(capacity * recordSize(fieldCount)),
      capacity,
      fieldCount,
      share: Math.min(capacity, options.share ?? capacity),
      store: options.store,
    };
  }

  constructor(memory: SharedTableMemory) {
    this.control = new Int32Array(memory.control);
    this.states = new Int32Array(memory.states);
    this.bytes = new Uint8Array(memory.records);
    this.ints = new Int32Array(memory.records);
    this.floats = new Float64Array(memory.records);
    this.capacity = memory.capacity;
    this.fieldCount = memory.fieldCount;
    this.recordBytes = recordSize(memory.fieldCount);
    this.share = memory.share;
    this.store = memory.store;
  }

  /**
   * Runs `fn` on the record of `key` under the lock, creating it for `owner` (all fields 0, `created`
   * true) if it does not exist, evicting another record if need be. A key longer than any cgroup path
   * gets a fresh record each time.
   */
  update<T>(key: string, owner: number, fn: (fields: Float64Array, created: boolean) => T): T {
    const encoded = this.encoder.encode(key);
    if (encoded.length > KEY_BYTES) return fn(new Float64Array(this.fieldCount), true);
    this.lock();
    try {
      const hash = this.hashOf(encoded);
      let slot = this.find(encoded, hash);
      const created = slot < 0;
      if (created) slot = this.insert(encoded, hash, owner);
      this.floats[this.base(slot) / 8 + LAST_USE_OFFSET / 8] = Date.now();
      const result = fn(this.fieldsOf(slot), created);
      this.persist(slot);
      return result;
    } finally {
      this.unlock();
    }
  }

  /** Runs `fn` on the record of `key` under the lock if it exists, to look at it: nothing is written to
   * the store (update() changes a record). */
  read<T>(key: string, fn: (fields: Readonly<Float64Array>) => T): T | undefined {
    const encoded = this.encoder.encode(key);
    this.lock();
    try {
      const slot = this.find(encoded, this.hashOf(encoded));
      return slot < 0 ? undefined : fn(this.fieldsOf(slot));
    } finally {
      this.unlock();
    }
  }

  /** Visits every record under the lock; `fn` returning false deletes the record. */
  sweep(fn: (key: string, fields: Float64Array) => boolean): void {
    this.visit((key, fields) => (fn(key, fields) ? 'keep' : 'delete'));
  }

  /** Like sweep(), and the records `fn` says it changed ('store') are written through to the store: one
   * look at each record instead of a read() by key (encoding and hashing the key) per record. */
  sweepAndStore(fn: (key: string, fields: Float64Array) => 'delete' | 'keep' | 'store'): void {
    this.visit(fn);
  }

  get size(): number {
    return Atomics.load(this.control, COUNT);
  }

  /** Resolves once the table holds a record (at once if it does now); waits without a timer. */
  notEmpty(): Promise<void> {
    return whenChanged(this.control, COUNT, 0);
  }

  /** Loads what the store holds (written by a predecessor); the number of records restored. */
  restore(): number {
    if (this.store === undefined) return 0;
    this.lock();
    try {
      const header = Buffer.alloc(FILE_HEADER_BYTES);
      const layout = this.fileLayout();
      const read = fs.readSync(this.store, header, 0, FILE_HEADER_BYTES, 0);
      if (read < FILE_HEADER_BYTES || !header.subarray(0, layout.length).equals(layout)) {
        // Nothing yet, or another version's layout: start over, and say so in the file (with our seed).
        fs.ftruncateSync(this.store, 0);
        const fresh = Buffer.alloc(FILE_HEADER_BYTES);
        layout.copy(fresh);
        fresh.writeInt32LE(this.control[SEED]!, layout.length);
        fs.writeSync(this.store, fresh, 0, FILE_HEADER_BYTES, 0);
        return 0;
      }
      // The records sit where the predecessor's seed put them.
      this.control[SEED] = header.readInt32LE(layout.length);
      // Slot by slot, only what was written (through a scratch buffer: copying the file's holes into
      // the table would back every page with memory), up to the end of the file.
      const end = fs.fstatSync(this.store).size;
      const scratch = Buffer.alloc(this.recordBytes);
      const ints = new Int32Array(scratch.buffer, scratch.byteOffset, 2);
      let count = 0;
      let deleted = 0;
      for (let slot = 0; slot < this.capacity && FILE_HEADER_BYTES + this.base(slot) < end; slot++) {
        const at = this.base(slot);
        if (fs.readSync(this.store, scratch, 0, FIELDS_OFFSET, FILE_HEADER_BYTES + at) < 4 || ints[0] === EMPTY)
          continue;
        const used = FIELDS_OFFSET + this.fieldCount * 8 + ints[1]!;
        if (
          ints[0] === USED &&
          ints[1]! >= 0 &&
          ints[1]! <= KEY_BYTES &&
          fs.readSync(
            this.store,
            scratch,
            FIELDS_OFFSET,
            used - FIELDS_OFFSET,
            FILE_HEADER_BYTES + at + FIELDS_OFFSET,
          ) ===
            used - FIELDS_OFFSET
        ) {
          this.bytes.set(scratch.subarray(0, used), at);
          this.states[slot] = USED;
          count++;
        } else {
          this.setState(slot, DELETED);
          deleted++;
        }
      }
      this.control[COUNT] = count;
      this.control[DELETED_COUNT] = deleted;
      this.control[GENERATION]!++;
      if (count > 0) Atomics.notify(this.control, COUNT); // see notEmpty()
      return count;
    } finally {
      this.unlock();
    }
  }

  /** The layout part of the file header; room for the seed follows it. */
  private fileLayout(): Buffer {
    const layout = Buffer.alloc(20);
    for (const [i, value] of [FILE_MAGIC, FILE_VERSION, this.capacity, this.fieldCount, this.recordBytes].entries())
      layout.writeUInt32LE(value, i * 4);
    return layout;
  }

  private visit(fn: (key: string, fields: Float64Array) => 'delete' | 'keep' | 'store'): void {
    this.lock();
    try {
      const slots = this.slotsInUse();
      const keys = (this.used.keys ??= slots.map((slot) => this.keyOf(slot)));
      for (let i = 0; i < slots.length; i++) {
        const verdict = fn(keys[i]!, this.fieldsOf(slots[i]!));
        if (verdict === 'delete') this.remove(slots[i]!);
        else if (verdict === 'store') this.persist(slots[i]!);
      }
    } finally {
      this.unlock();
    }
  }

  private base(slot: number): number {
    return slot * this.recordBytes;
  }

  /**
   * The slots in use (under the lock). Listed again only when GENERATION moved: each record is on a page
   * of its own, and walking all of them touched thousands of pages on every sampler pass and every new
   * record.
   */
  private slotsInUse(): number[] {
    const generation = this.control[GENERATION]!;
    if (this.used.listedAt !== generation)
      this.used = { slots: this.listSlotsInUse(), keys: undefined, listedAt: generation };
    return this.used.slots;
  }

  /** The walk behind slotsInUse(), in a function of its own: V8 compiles a long loop in the middle of its
   * first run, and code after the loop that had not run yet then made it throw that code away again and
   * again (a deoptimization, and a recompilation, on most later walks). */
  private listSlotsInUse(): number[] {
    const slots: number[] = [];
    let left = this.control[COUNT]!;
    for (let slot = 0; left > 0 && slot < this.capacity; slot++) {
      if (this.stateOf(slot) !== USED) continue;
      slots.push(slot);
      left--;
    }
    return slots;
  }

  private stateOf(slot: number): number {
    return this.states[slot]!;
  }

  private setState(slot: number, state: number): void {
    this.states[slot] = state;
    this.ints[this.base(slot) / 4] = state;
  }

  private fieldsOf(slot: number): Float64Array {
    const start = (this.base(slot) + FIELDS_OFFSET) / 8;
    return this.floats.subarray(start, start + this.fieldCount);
  }

  private keyOf(slot: number): string {
    const start = this.base(slot) + FIELDS_OFFSET + this.fieldCount * 8;
    // TextDecoder refuses views of shared memory: copy the key out first.
    return this.decoder.decode(this.bytes.slice(start, start + this.ints[this.base(slot) / 4 + 1]!));
  }

  private ownerOf(slot: number): number {
    return this.floats[(this.base(slot) + OWNER_OFFSET) / 8]!;
  }

  private lastUseOf(slot: number): number {
    return this.floats[(this.base(slot) + LAST_USE_OFFSET) / 8]!;
  }

  /** FNV-1a from a random seed: spreads keys, and nobody knows which names would collide. */
  private hashOf(key: Uint8Array): number {
    let h = 0x811c9dc5 ^ this.control[SEED]!;
    for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key[i]!, 0x01000193);
    return h >>> 0;
  }

  private matches(slot: number, key: Uint8Array, hash: number): boolean {
    const at = this.base(slot);
    if (this.ints[at / 4 + KEY_OFFSET_WORDS]! >>> 0 !== hash || this.ints[at / 4 + 1] !== key.length) return false;
    const start = at + FIELDS_OFFSET + this.fieldCount * 8;
    for (let i = 0; i < key.length; i++) if (this.bytes[start + i] !== key[i]) return false;
    return true;
  }

  private find(key: Uint8Array, hash: number): number {
    let slot = hash % this.capacity;
    for (let probes = 0; probes < this.capacity; probes++) {
      const state = this.stateOf(slot);
      if (state === EMPTY) return -1;
      if (state === USED && this.matches(slot, key, hash)) return slot;
      slot = (slot + 1) % this.capacity;
    }
    return -1;
  }

  private insert(key: Uint8Array, hash: number, owner: number): number {
    this.makeRoom(owner);
    // Tombstones lengthen every search; past a quarter of the table, lay the records out again.
    if (this.control[DELETED_COUNT]! > this.capacity / 4) this.rehash();
    let slot = hash % this.capacity;
    while (this.stateOf(slot) === USED) slot = (slot + 1) % this.capacity;
    if (this.stateOf(slot) === DELETED) this.control[DELETED_COUNT]!--;
    this.write(slot, key, hash, owner);
    this.control[GENERATION]!++;
    if (this.control[COUNT]!++ === 0) Atomics.notify(this.control, COUNT); // see notEmpty()
    return slot;
  }

  /** Bytes of the record in use: header, fields and the key itself. */
  private usedBytes(slot: number): number {
    return FIELDS_OFFSET + this.fieldCount * 8 + this.ints[this.base(slot) / 4 + 1]!;
  }

  private write(slot: number, key: Uint8Array, hash: number, owner: number): void {
    const at = this.base(slot);
    this.bytes.fill(0, at, at + FIELDS_OFFSET + this.fieldCount * 8);
    this.setState(slot, USED);
    this.ints[at / 4 + 1] = key.length;
    this.ints[at / 4 + KEY_OFFSET_WORDS] = hash | 0;
    this.floats[(at + OWNER_OFFSET) / 8] = owner;
    this.bytes.set(key, at + FIELDS_OFFSET + this.fieldCount * 8);
  }

  /** Frees a slot if `owner` holds its share or the table is full. */
  private makeRoom(owner: number): void {
    const held = new Map<number, { count: number; oldest: number }>();
    for (const slot of this.slotsInUse()) {
      const who = this.ownerOf(slot);
      const entry = held.get(who);
      if (entry === undefined) held.set(who, { count: 1, oldest: slot });
      else {
        entry.count++;
        if (this.lastUseOf(slot) < this.lastUseOf(entry.oldest)) entry.oldest = slot;
      }
    }
    const own = held.get(owner);
    if (own !== undefined && own.count >= this.share) return this.remove(own.oldest);
    if (this.control[COUNT]! < this.capacity) return;
    let largest: { count: number; oldest: number } | undefined;
    for (const entry of held.values()) {
      if (
        largest === undefined ||
        entry.count > largest.count ||
        (entry.count === largest.count && this.lastUseOf(entry.oldest) < this.lastUseOf(largest.oldest))
      )
        largest = entry;
    }
    this.remove(largest!.oldest);
  }

  private remove(slot: number): void {
    this.setState(slot, DELETED);
    this.control[GENERATION]!++;
    this.control[COUNT]!--;
    this.control[DELETED_COUNT]!++;
    this.persist(slot);
  }

  /** Lays the records out again without tombstones. Only slots that held a record, or now hold one, are
   * written (in memory and in the store): the others' pages stay untouched. */
  private rehash(): void {
    const kept: Uint8Array[] = [];
    const changed = new Set<number>();
    for (let slot = 0; slot < this.capacity; slot++) {
      const state = this.stateOf(slot);
      if (state === EMPTY) continue;
      if (state === USED) kept.push(this.bytes.slice(this.base(slot), this.base(slot) + this.usedBytes(slot)));
      this.setState(slot, EMPTY);
      changed.add(slot);
    }
    for (const record of kept) {
      let slot = (new Int32Array(record.buffer, 0, KEY_OFFSET_WORDS + 1)[KEY_OFFSET_WORDS]! >>> 0) % this.capacity;
      while (this.stateOf(slot) === USED) slot = (slot + 1) % this.capacity;
      this.bytes.set(record, this.base(slot)); // its first word says USED
      this.states[slot] = USED;
      changed.add(slot);
    }
    this.control[DELETED_COUNT] = 0;
    this.control[GENERATION]!++;
    for (const slot of changed) this.persist(slot);
  }

  /** Writes a slot to the store: the whole record if used, else its state. */
  private persist(slot: number): void {
    if (this.store === undefined) return;
    const at = this.base(slot);
    const length = this.stateOf(slot) === USED ? this.usedBytes(slot) : 4;
    fs.writeSync(this.store, this.bytes, at, length, FILE_HEADER_BYTES + at);
  }

  private lock(): void {
    lockWord(this.control, LOCK);
  }

  private unlock(): void {
    unlockWord(this.control, LOCK);
  }
}

function recordSize(fieldCount: number): number {
  return FIELDS_OFFSET + fieldCount * 8 + KEY_BYTES;
}
