// Garbage collections per thread and kind, for the metrics endpoint: how many, and their total pause.
// Every thread writes only its own slot of one SharedArrayBuffer (one writer: plain stores), and the main
// thread sums the slots when it is asked.
//
// Two ways in, because of how the threads run:
// - a thread that returns to its event loop (the serving process's main thread) has a
//   PerformanceObserver of 'gc' entries;
// - a thread that never does (a FUSE reader: a synchronous loop blocked in read() or
//   Atomics.wait) would never be handed those entries (Node delivers them from the event loop, and would
//   queue them up meanwhile), so it runs a v8.GCProfiler instead, which V8 feeds from inside the
//   collection. The profiler keeps a record of every collection (~4 kB each) until it is stopped, so the
//   thread folds the records into its slot when the main thread asks (a scrape: `requestFold`) and every
//   FOLD_EVERY requests; between folds, a request costs one Atomics.load. A thread that has served
//   fewer than FOLD_AFTER requests since its last fold answers a scrape without folding (see there).
// - A stopped GCProfiler is not finished: each start() makes a new native profiler, and the stopped one
//   keeps appending a record of every collection until a full collection frees it. Under load a reader
//   thread sees few full collections, and stopped profilers piled up: the serving process grew by 300 MB
//   in 40 s of eight readers. So a fold runs that full collection itself (the serving process has
//   --expose-gc), and counts it, with its pause, under a kind of its own: `fold` is what counting costs,
//   the other kinds are what serving costs.
// Nothing is observed unless a slot's observer or profiler was started (metrics on).

import { constants, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { GCProfiler } from 'node:v8';

/** What the counters are split by: V8's young-generation collections (scavenge, minor mark-sweep), full
 * mark-sweep-compact, incremental marking steps, the processing of weak callbacks, and the full
 * collections a fold runs (see above). */
export const GC_KINDS = ['minor', 'major', 'incremental', 'weak_callbacks', 'fold'] as const;
export type GcKind = (typeof GC_KINDS)[number];

/** A full collection, where the runtime exposes it (the launcher runs node with --expose-gc). */
export const collectGarbage = (globalThis as { gc?: () => void }).gc;

const OBSERVER_KINDS = new Map<number, number>([
  [constants.NODE_PERFORMANCE_GC_MINOR, 0],
  [2, 0], // V8's kGCTypeMinorMarkSweep, which perf_hooks names no constant for
  [constants.NODE_PERFORMANCE_GC_MAJOR, 1],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, 2],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, 3],
]);
/** v8.GCProfiler's names of the same types (node_v8.cc); "Unknown" counts as minor, like a new young
 * collector would be. */
const PROFILER_KINDS = new Map<string, number>([
  ['Scavenge', 0],
  ['MinorMarkSweep', 0],
  ['MarkSweepCompact', 1],
  ['IncrementalMarking', 2],
  ['ProcessWeakCallbacks', 3],
]);

const FOLD = GC_KINDS.indexOf('fold');

/** Requests a profiled thread serves at most between folds: bounds what its profiler holds (about 400
 * collections, 1.6 MB), and how often a fold's full collection runs when nobody scrapes. */
const FOLD_EVERY = 65536;
/** Requests a profiled thread must have served since its last fold for a scrape to make it fold (it
 * then says so in its `due` word: foldsDue). Fewer made at most a young collection or two, which its
 * profiler, left running, counts at a later fold; a fold would cost a full collection (tens of
 * milliseconds here), and waking the thread for it a process spawn, at every scrape of a quiet daemon. */
const FOLD_AFTER = 1024;

// Layout: Int32 [0] the fold generation the main thread asked for, Int32 [1 + slot] the one each slot
// folded last, Int32 [1 + slots + slot] 1 when the slot is due to fold (FOLD_AFTER); then, 8-aligned,
// per slot per kind: count, seconds (float64: exact up to 2^53).
const VALUES_PER_SLOT = GC_KINDS.length * 2;
function controlInts(slots: number): number {
  return 1 + 2 * slots;
}
function valuesOffset(slots: number): number {
  return Math.ceil((controlInts(slots) * 4) / 8) * 8;
}
function controlOf(memory: GcStatsMemory): Int32Array {
  return new Int32Array(memory.buffer, 0, controlInts(memory.slots));
}
const foldedAt = (slot: number): number => 1 + slot;
const dueAt = (memory: GcStatsMemory, slot: number): number => 1 + memory.slots + slot;

export interface GcStatsMemory {
  buffer: SharedArrayBuffer;
  slots: number;
}

export function allocateGcStats(slots: number): GcStatsMemory {
  return { buffer: new SharedArrayBuffer(valuesOffset(slots) + slots * VALUES_PER_SLOT * 8), slots };
}

function slotValues(memory: GcStatsMemory, slot: number): Float64Array {
  return new Float64Array(memory.buffer, valuesOffset(memory.slots) + slot * VALUES_PER_SLOT * 8, VALUES_PER_SLOT);
}

/** Counts the calling thread's collections into `slot` through a PerformanceObserver: for a thread that
 * runs its event loop. Returns what stops it. */
export function observeGc(memory: GcStatsMemory, slot: number): () => void {
  const values = slotValues(memory, slot);
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = OBSERVER_KINDS.get((entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0);
      if (kind === undefined) continue;
      values[kind * 2]! += 1;
      values[kind * 2 + 1]! += entry.duration / 1000;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => observer.disconnect();
}

/** Counts the calling thread's collections into `slot` through a v8.GCProfiler: for a thread that blocks
 * and never returns to its event loop. Call `tick` after each request. */
export class ProfiledGc {
  private readonly control: Int32Array;
  /** Index of this slot's due word in `control`. */
  private readonly due: number;
  private readonly values: Float64Array;
  private readonly profiler = new GCProfiler();
  private sinceFold = 0;
  private folded: number;

  constructor(
    memory: GcStatsMemory,
    private readonly slot: number,
  ) {
    this.control = controlOf(memory);
    this.due = dueAt(memory, slot);
    this.values = slotValues(memory, slot);
    this.folded = Atomics.load(this.control, 0);
    this.profiler.start();
  }

  tick(): void {
    if (++this.sinceFold === FOLD_AFTER) Atomics.store(this.control, this.due, 1);
    if (this.sinceFold < FOLD_EVERY && Atomics.load(this.control, 0) === this.folded) return;
    const generation = Atomics.load(this.control, 0);
    // After fewer requests the main thread gets the counts as of the last fold (see FOLD_AFTER).
    if (this.sinceFold >= FOLD_AFTER) this.fold();
    this.folded = generation;
    Atomics.store(this.control, foldedAt(this.slot), generation);
  }

  private count(kind: number, seconds: number): void {
    this.values[kind * 2]! += 1;
    this.values[kind * 2 + 1]! += seconds;
  }

  private fold(): void {
    const { statistics } = this.profiler.stop();
    for (const gc of statistics) this.count(PROFILER_KINDS.get(gc.gcType) ?? 0, gc.cost / 1e6); // µs
    if (collectGarbage) {
      const started = performance.now();
      collectGarbage();
      this.count(FOLD, (performance.now() - started) / 1000);
    }
    this.profiler.start();
    this.sinceFold = 0;
    Atomics.store(this.control, this.due, 0);
  }
}

/** The slots among `slots` that a scrape would make fold (see FOLD_AFTER): the others have nothing to
 * hand in but a collection or two, and need not be woken. */
export function foldsDue(memory: GcStatsMemory, slots: readonly number[]): number[] {
  const control = controlOf(memory);
  return slots.filter((slot) => Atomics.load(control, dueAt(memory, slot)) === 1);
}

/** Asks every profiled thread to fold at its next request; returns whether `slots` all
 * have (poll it). */
export function requestFold(memory: GcStatsMemory): (slots: readonly number[]) => boolean {
  const control = controlOf(memory);
  const generation = Atomics.add(control, 0, 1) + 1;
  return (slots) => slots.every((slot) => Atomics.load(control, foldedAt(slot)) - generation >= 0);
}

/** Collections and seconds of `slot` by kind (read while it writes: each at most one collection behind). */
export function gcTotals(memory: GcStatsMemory, slot: number): Array<{ kind: GcKind; count: number; seconds: number }> {
  const values = slotValues(memory, slot);
  return GC_KINDS.map((kind, i) => ({ kind, count: values[i * 2]!, seconds: values[i * 2 + 1]! }));
}
