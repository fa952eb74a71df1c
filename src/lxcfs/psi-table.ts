// The PSI triggers of open /proc/pressure/* handles (--enable-psi-poll), shared by every reader thread and
// the serving process's main thread: a reader arms one on a WRITE, answers POLL from it and frees it on
// RELEASE (any reader may get any of these for one handle); the sampler (psi-sampler.ts) in the main
// thread evaluates the armed ones and flags events. Fixed-size slots in a SharedArrayBuffer; arming and
// freeing take a short spinlock, everything else is a single atomic access. The slots' states are kept
// apart as well, one word each: looking for a trigger reads 16 kB, and never touches (so never backs
// with memory) the page of a slot that was never armed.
//
// A slot's serial changes with every arming, and the event and gone flags hold the serial they are for:
// a flag the sampler raises for a trigger that was freed meanwhile can never be taken by the next one.
//
// Optionally written through to a state file the supervisor holds (state-files.ts): a successor serving
// process (after an upgrade or a crash) reads which files were polled and wakes their pollers, which then
// poll again and learn that their trigger is gone.

import fs from 'node:fs';
import { lockWord, unlockWord } from '../util/spinlock.js';
import { whenChanged } from '../util/shared-wait.js';
import type { StallKind, TriggerSpec } from './psi-trigger.js';

/** Triggers at once, all containers together. */
export const PSI_CAPACITY = 4096;
/** Triggers one container (pid namespace) may have armed. */
export const PSI_SHARE = 32;
/** Longest pressure file path (a cgroup2 directory plus `/<res>.pressure`). */
const PATH_BYTES = 1024;

// Control words.
const LOCK = 0;
const ARMED_COUNT = 1;
/** Bumped by every arming and freeing: the sampler looks at the slots again only when it moved. */
const CHANGES = 2;
const CONTROL_INTS = 4;
/** Owners already told about reaching their share (so it is logged once per container). */
const WARNED_OWNERS = 256;

// Slot layout: int32 words, then float64 fields, then the path.
const STATE = 0;
const SERIAL = 1;
const EVENT = 2;
const GONE = 3;
const KIND = 4;
const PATH_LENGTH = 5;
const KH_LOW = 6;
const KH_HIGH = 7;
const INTS = 8;
const FH = 0;
const OWNER = 1;
const THRESHOLD = 2;
const WINDOW = 3;
const FLOATS = 4;
const FLOATS_AT = INTS * 4;
const PATH_AT = FLOATS_AT + FLOATS * 8;
const SLOT_BYTES = PATH_AT + PATH_BYTES;

const FREE = 0;
const ARMED = 1;
const TWO_32 = 0x1_0000_0000;

export interface PsiTableMemory {
  control: SharedArrayBuffer;
  warned: SharedArrayBuffer;
  /** One int32 per slot: its state, as in the slot's STATE word (which the store keeps). */
  states: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  capacity: number;
  share: number;
  /** Descriptor of the file the slots are written through to, if any. */
  store?: number;
}

export type ArmResult = { slot: number } | 'busy' | 'share' | 'full' | 'path';

/** What the sampler needs of an armed trigger. */
export interface ArmedTrigger extends TriggerSpec {
  slot: number;
  serial: number;
  path: string;
}

export class PsiTable {
  private readonly control: Int32Array;
  private readonly warned: Float64Array;
  private readonly states: Int32Array;
  private readonly ints: Int32Array;
  private readonly floats: Float64Array;
  private readonly bytes: Uint8Array;
  readonly capacity: number;
  readonly share: number;
  private readonly store: number | undefined;

  static allocate(capacity = PSI_CAPACITY, store?: number, share = PSI_SHARE): PsiTableMemory {
    return {
      control: new SharedArrayBuffer(CONTROL_INTS * 4),
      warned: new SharedArrayBuffer(WARNED_OWNERS * 8),
      states: new SharedArrayBuffer(capacity * 4),
      slots: new SharedArrayBuffer(capacity * SLOT_BYTES),
      capacity,
      share,
      store,
    };
  }

  constructor(memory: PsiTableMemory) {
    this.control = new Int32Array(memory.control);
    this.warned = new Float64Array(memory.warned);
    this.states = new Int32Array(memory.states);
    this.ints = new Int32Array(memory.slots);
    this.floats = new Float64Array(memory.slots);
    this.bytes = new Uint8Array(memory.slots);
    this.capacity = memory.capacity;
    this.share = memory.share;
    this.store = memory.store;
  }

  private int(slot: number, field: number): number {
    return (slot * SLOT_BYTES) / 4 + field;
  }

  private float(slot: number, field: number): number {
    return (slot * SLOT_BYTES + FLOATS_AT) / 8 + field;
  }

  get armed(): number {
    return Atomics.load(this.control, ARMED_COUNT);
  }

  /** A counter that moves whenever a trigger is armed or freed. */
  get changes(): number {
    return Atomics.load(this.control, CHANGES);
  }

  /** Resolves once a trigger is armed or freed after `changes` was `seen` (at once if one was). */
  changedSince(seen: number): Promise<void> {
    return whenChanged(this.control, CHANGES, seen);
  }

  /** The slot of the trigger armed on handle `fh`, or -1. */
  find(fh: number): number {
    if (Atomics.load(this.control, ARMED_COUNT) === 0) return -1;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Atomics.load(this.states, slot) === ARMED && this.floats[this.float(slot, FH)] === fh) return slot;
    }
    return -1;
  }

  /** Arms a trigger on handle `fh` for `owner` (a container), watching the pressure file at `path`. */
  arm(fh: number, owner: number, spec: TriggerSpec, path: string): ArmResult {
    const encoded = Buffer.from(path);
    if (encoded.length > PATH_BYTES) return 'path';
    lockWord(this.control, LOCK);
    try {
      let free = -1;
      let owned = 0;
      for (let slot = 0; slot < this.capacity; slot++) {
        if (this.states[slot] !== ARMED) {
          if (free < 0) free = slot;
          continue;
        }
        if (this.floats[this.float(slot, FH)] === fh) return 'busy';
        if (this.floats[this.float(slot, OWNER)] === owner) owned++;
      }
      if (owned >= this.share) return 'share';
      if (free < 0) return 'full';
      const serial = (this.ints[this.int(free, SERIAL)]! % 0x7fff_ffff) + 1;
      this.ints[this.int(free, SERIAL)] = serial;
      this.ints[this.int(free, EVENT)] = 0;
      this.ints[this.int(free, GONE)] = 0;
      this.ints[this.int(free, KIND)] = spec.kind === 'full' ? 1 : 0;
      this.ints[this.int(free, PATH_LENGTH)] = encoded.length;
      this.ints[this.int(free, KH_LOW)] = 0;
      this.ints[this.int(free, KH_HIGH)] = 0;
      this.floats[this.float(free, FH)] = fh;
      this.floats[this.float(free, OWNER)] = owner;
      this.floats[this.float(free, THRESHOLD)] = spec.thresholdUs;
      this.floats[this.float(free, WINDOW)] = spec.windowUs;
      this.bytes.set(encoded, free * SLOT_BYTES + PATH_AT);
      this.setState(free, ARMED);
      Atomics.add(this.control, ARMED_COUNT, 1);
      Atomics.add(this.control, CHANGES, 1);
      Atomics.notify(this.control, CHANGES); // see changedSince()
      this.writeThrough(free);
      return { slot: free };
    } finally {
      unlockWord(this.control, LOCK);
    }
  }

  /** Whether `owner` is told about reaching its share for the first time (then it is not again). */
  claimShareWarning(owner: number): boolean {
    lockWord(this.control, LOCK);
    try {
      for (let i = 0; i < WARNED_OWNERS; i++) {
        if (this.warned[i] === owner) return false;
        if (this.warned[i] === 0) {
          this.warned[i] = owner;
          return true;
        }
      }
      return false; // that many containers reached it: they stay quiet
    } finally {
      unlockWord(this.control, LOCK);
    }
  }

  /** Frees the trigger of handle `fh`, if it has one. */
  free(fh: number): void {
    if (Atomics.load(this.control, ARMED_COUNT) === 0) return;
    lockWord(this.control, LOCK);
    try {
      const slot = this.find(fh);
      if (slot < 0) return;
      this.setState(slot, FREE);
      Atomics.sub(this.control, ARMED_COUNT, 1);
      Atomics.add(this.control, CHANGES, 1);
      Atomics.notify(this.control, CHANGES); // see changedSince()
      this.writeThrough(slot);
    } finally {
      unlockWord(this.control, LOCK);
    }
  }

  /** Records the kernel's name of the polled file (for wakeups); written through when it changes. */
  setPollHandle(slot: number, kh: number): void {
    const low = (kh % TWO_32) | 0;
    const high = Math.floor(kh / TWO_32) | 0;
    if (
      Atomics.load(this.ints, this.int(slot, KH_LOW)) === low &&
      Atomics.load(this.ints, this.int(slot, KH_HIGH)) === high
    )
      return;
    Atomics.store(this.ints, this.int(slot, KH_HIGH), high);
    Atomics.store(this.ints, this.int(slot, KH_LOW), low);
    this.writeThrough(slot);
  }

  /** The kernel's name of the polled file, 0 before any poll. */
  pollHandle(slot: number): number {
    return (
      (Atomics.load(this.ints, this.int(slot, KH_LOW)) >>> 0) +
      (Atomics.load(this.ints, this.int(slot, KH_HIGH)) >>> 0) * TWO_32
    );
  }

  serialOf(slot: number): number {
    return Atomics.load(this.ints, this.int(slot, SERIAL));
  }

  /** Whether the slot still holds the trigger armed as `serial`. */
  holds(slot: number, serial: number): boolean {
    return Atomics.load(this.states, slot) === ARMED && Atomics.load(this.ints, this.int(slot, SERIAL)) === serial;
  }

  /** The sampler: an event for the trigger armed as `serial`. */
  raiseEvent(slot: number, serial: number): void {
    Atomics.store(this.ints, this.int(slot, EVENT), serial);
  }

  /** The sampler: the trigger's pressure file is gone (its cgroup was removed). */
  raiseGone(slot: number, serial: number): void {
    Atomics.store(this.ints, this.int(slot, GONE), serial);
  }

  /** A poll takes the pending event, if any (like the kernel, an event is reported once). */
  takeEvent(slot: number): boolean {
    const serial = this.serialOf(slot);
    return Atomics.compareExchange(this.ints, this.int(slot, EVENT), serial, 0) === serial;
  }

  isGone(slot: number): boolean {
    return Atomics.load(this.ints, this.int(slot, GONE)) === this.serialOf(slot);
  }

  /** Every armed trigger. */
  armedTriggers(): ArmedTrigger[] {
    const found: ArmedTrigger[] = [];
    if (Atomics.load(this.control, ARMED_COUNT) === 0) return found;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Atomics.load(this.states, slot) !== ARMED) continue;
      const at = slot * SLOT_BYTES + PATH_AT;
      found.push({
        slot,
        serial: Atomics.load(this.ints, this.int(slot, SERIAL)),
        kind: (this.ints[this.int(slot, KIND)] === 1 ? 'full' : 'some') satisfies StallKind,
        thresholdUs: this.floats[this.float(slot, THRESHOLD)]!,
        windowUs: this.floats[this.float(slot, WINDOW)]!,
        path: Buffer.from(this.bytes.subarray(at, at + this.ints[this.int(slot, PATH_LENGTH)]!)).toString(),
      });
    }
    return found;
  }

  /** The slot's own STATE word is what the store keeps; the states array is what lookups read. */
  private setState(slot: number, state: number): void {
    Atomics.store(this.ints, this.int(slot, STATE), state);
    Atomics.store(this.states, slot, state);
  }

  private writeThrough(slot: number): void {
    if (this.store === undefined) return;
    const at = slot * SLOT_BYTES;
    try {
      fs.writeSync(this.store, this.bytes, at, INTS * 4, at);
    } catch {
      // A full or broken state file costs only the wakeups after a restart.
    }
  }

  /**
   * In a successor serving process, before it serves: the poll handles of the triggers its predecessor
   * had armed (from the state file), which it cannot continue; the file is then cleared.
   */
  static takeOrphanedPollHandles(store: number | undefined): number[] {
    if (store === undefined) return [];
    const handles: number[] = [];
    let size: number;
    try {
      size = fs.fstatSync(store).size;
    } catch {
      return handles;
    }
    const words = Buffer.alloc(INTS * 4);
    for (let at = 0; at + words.length <= size; at += SLOT_BYTES) {
      if (fs.readSync(store, words, 0, words.length, at) < words.length) break;
      const state = words.readInt32LE(STATE * 4);
      const kh = words.readUInt32LE(KH_LOW * 4) + words.readUInt32LE(KH_HIGH * 4) * TWO_32;
      if (state === ARMED && kh > 0) handles.push(kh);
    }
    fs.ftruncateSync(store, 0);
    return handles;
  }
}
