// Per-cgroup state that every reader thread (and the main thread) must see the same way: a fixed-size
// open-addressing hash table in SharedArrayBuffers, keyed by a string (a cgroup path), each record a few
// float64 fields, guarded by one short spinlock. The keys are stored too, so a sampler can walk them.
//
// Why shared: two consecutive reads of /proc/stat by `top` may be served by different reader threads,
// and counters that must only grow (or a load average history) cannot live in one thread's memory.

import { lockWord, unlockWord } from '../util/spinlock.js';

const LOCK = 0;
const COUNT = 1;
const HEADER_INTS = 2;
const KEY_BYTES = 512;
const EMPTY = 0;
const USED = 1;
const DELETED = 2;

export interface SharedTableMemory {
  control: SharedArrayBuffer;
  keys: SharedArrayBuffer;
  fields: SharedArrayBuffer;
  capacity: number;
  fieldCount: number;
}

export class SharedTable {
  private readonly control: Int32Array;
  private readonly keyBytes: Uint8Array;
  private readonly values: Float64Array;
  private readonly capacity: number;
  readonly fieldCount: number;
  private readonly encoder = new TextEncoder();
  private readonly decoder = new TextDecoder();

  /** `capacity` records of `fieldCount` float64 fields each. */
  static allocate(capacity: number, fieldCount: number): SharedTableMemory {
    return {
      // header, then per slot: state, key length
      control: new SharedArrayBuffer((HEADER_INTS + capacity * 2) * 4),
      keys: new SharedArrayBuffer(capacity * KEY_BYTES),
      fields: new SharedArrayBuffer(capacity * fieldCount * 8),
      capacity,
      fieldCount,
    };
  }

  constructor(memory: SharedTableMemory) {
    this.control = new Int32Array(memory.control);
    this.keyBytes = new Uint8Array(memory.keys);
    this.values = new Float64Array(memory.fields);
    this.capacity = memory.capacity;
    this.fieldCount = memory.fieldCount;
  }

  /** Runs `fn` on the record of `key` under the lock, creating it (all fields 0, `created` true) if it
   * does not exist. Returns undefined when the key is too long or the table is full. */
  update<T>(key: string, fn: (fields: Float64Array, created: boolean) => T): T | undefined {
    const encoded = this.encoder.encode(key);
    if (encoded.length > KEY_BYTES) return undefined;
    this.lock();
    try {
      let slot = this.find(encoded);
      let created = false;
      if (slot < 0) {
        slot = this.insert(encoded);
        if (slot < 0) return undefined;
        created = true;
      }
      return fn(this.values.subarray(slot * this.fieldCount, (slot + 1) * this.fieldCount), created);
    } finally {
      this.unlock();
    }
  }

  /** Runs `fn` on the record of `key` under the lock if it exists. */
  read<T>(key: string, fn: (fields: Float64Array) => T): T | undefined {
    const encoded = this.encoder.encode(key);
    this.lock();
    try {
      const slot = this.find(encoded);
      return slot < 0 ? undefined : fn(this.values.subarray(slot * this.fieldCount, (slot + 1) * this.fieldCount));
    } finally {
      this.unlock();
    }
  }

  /** Visits every record under the lock; `fn` returning false deletes the record. */
  sweep(fn: (key: string, fields: Float64Array) => boolean): void {
    this.lock();
    try {
      for (let slot = 0; slot < this.capacity; slot++) {
        if (this.control[HEADER_INTS + slot * 2] !== USED) continue;
        const length = this.control[HEADER_INTS + slot * 2 + 1]!;
        // TextDecoder refuses views of shared memory: copy the key out first.
        const key = this.decoder.decode(this.keyBytes.slice(slot * KEY_BYTES, slot * KEY_BYTES + length));
        if (!fn(key, this.values.subarray(slot * this.fieldCount, (slot + 1) * this.fieldCount))) {
          this.control[HEADER_INTS + slot * 2] = DELETED;
          this.control[COUNT]!--;
        }
      }
    } finally {
      this.unlock();
    }
  }

  get size(): number {
    return Atomics.load(this.control, COUNT);
  }

  private hash(key: Uint8Array): number {
    // FNV-1a, 32 bits: enough to spread a few thousand cgroup paths.
    let h = 0x811c9dc5;
    for (const byte of key) h = Math.imul(h ^ byte, 0x01000193);
    return (h >>> 0) % this.capacity;
  }

  private matches(slot: number, key: Uint8Array): boolean {
    if (this.control[HEADER_INTS + slot * 2 + 1] !== key.length) return false;
    const base = slot * KEY_BYTES;
    for (let i = 0; i < key.length; i++) if (this.keyBytes[base + i] !== key[i]) return false;
    return true;
  }

  private find(key: Uint8Array): number {
    let slot = this.hash(key);
    for (let probes = 0; probes < this.capacity; probes++) {
      const state = this.control[HEADER_INTS + slot * 2];
      if (state === EMPTY) return -1;
      if (state === USED && this.matches(slot, key)) return slot;
      slot = (slot + 1) % this.capacity;
    }
    return -1;
  }

  private insert(key: Uint8Array): number {
    let slot = this.hash(key);
    for (let probes = 0; probes < this.capacity; probes++) {
      if (this.control[HEADER_INTS + slot * 2] !== USED) {
        this.control[HEADER_INTS + slot * 2] = USED;
        this.control[HEADER_INTS + slot * 2 + 1] = key.length;
        this.keyBytes.set(key, slot * KEY_BYTES);
        this.values.fill(0, slot * this.fieldCount, (slot + 1) * this.fieldCount);
        this.control[COUNT]!++;
        return slot;
      }
      slot = (slot + 1) % this.capacity;
    }
    return -1;
  }

  private lock(): void {
    lockWord(this.control, LOCK);
  }

  private unlock(): void {
    unlockWord(this.control, LOCK);
  }
}
