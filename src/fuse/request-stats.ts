// Request counters of the reader threads, for the metrics endpoint: per node id, operation and outcome,
// and a latency histogram of READs per node id. Each reader writes only its own region of one
// SharedArrayBuffer (no lock, no atomics: one writer), so recording costs a few array stores; the main
// thread sums the regions when it is asked. Counts are float64: exact up to 2^53.

import { Errno, InHeader, Op } from './abi.js';

/** Node ids below OTHER_NODE are counted each on their own; every higher id (mirrored host files) as
 * OTHER_NODE. */
export const STAT_NODES = 64;
export const OTHER_NODE = STAT_NODES - 1;

/** The operations counted apart; every other opcode counts as "other". */
export const STAT_OPS = [
  'lookup',
  'getattr',
  'open',
  'read',
  'release',
  'opendir',
  'readdir',
  'releasedir',
  'readlink',
  'access',
  'statfs',
  'other',
] as const;
const OP_INDEX = new Map<number, number>([
  [Op.LOOKUP, 0],
  [Op.GETATTR, 1],
  [Op.OPEN, 2],
  [Op.READ, 3],
  [Op.RELEASE, 4],
  [Op.OPENDIR, 5],
  [Op.READDIR, 6],
  [Op.READDIRPLUS, 6],
  [Op.RELEASEDIR, 7],
  [Op.READLINK, 8],
  [Op.ACCESS, 9],
  [Op.STATFS, 10],
]);
const OTHER_OP = STAT_OPS.length - 1;

/** "ok", then the errno names the session answers with, then "error" for any other errno. */
export const STAT_OUTCOMES = ['ok', ...Object.keys(Errno), 'ENFILE', 'error'] as const;
const ERRNO_INDEX = new Map<number, number>([...Object.values(Errno), 23].map((code, i) => [code, i + 1]));
const OTHER_ERROR = STAT_OUTCOMES.length - 1;

/** Upper bounds of the READ latency buckets, in seconds (a +Inf bucket follows). */
export const LATENCY_BOUNDS = [
  25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 100e-3, 1,
] as const;
const BUCKETS = LATENCY_BOUNDS.length + 1;

const COUNTS = STAT_NODES * STAT_OPS.length * STAT_OUTCOMES.length;
const HISTOGRAM = COUNTS;
const SUMS = HISTOGRAM + STAT_NODES * BUCKETS;
const REGION = SUMS + STAT_NODES;

/** Sums over all readers. */
export interface RequestTotals {
  /** count(node, op, outcome) */
  count(node: number, op: number, outcome: number): number;
  /** Non-cumulative bucket counts of a node's READ latencies (the last one is +Inf). */
  readBuckets(node: number): number[];
  readSeconds(node: number): number;
}

export function allocateRequestStats(readers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(readers * REGION * Float64Array.BYTES_PER_ELEMENT);
}

/** One reader's writer: `begin` before a request is handled, `end` after. */
export class RequestRecorder {
  private readonly values: Float64Array;
  private opcode = 0;
  private nodeid = 0;
  private started = 0;

  constructor(buffer: SharedArrayBuffer, reader: number) {
    this.values = new Float64Array(buffer, reader * REGION * Float64Array.BYTES_PER_ELEMENT, REGION);
  }

  /** `request`: the raw request as read from /dev/fuse. */
  begin(request: Buffer): void {
    this.opcode = InHeader.opcode(request);
    this.nodeid = InHeader.nodeid(request);
    // Only READs are timed: a clock read costs ~0.35 µs on some VMs (kvm-clock), and only they render.
    this.started = this.opcode === Op.READ ? performance.now() : 0;
  }

  /** `errno`: what the request was answered with (0: success). */
  end(errno: number): void {
    const seconds = this.started && (performance.now() - this.started) / 1000;
    this.record(this.opcode, this.nodeid, errno, seconds);
  }

  private record(opcode: number, nodeid: number, errno: number, seconds: number): void {
    const node = nodeid < OTHER_NODE ? nodeid : OTHER_NODE;
    const op = OP_INDEX.get(opcode) ?? OTHER_OP;
    const outcome = errno === 0 ? 0 : (ERRNO_INDEX.get(errno) ?? OTHER_ERROR);
    this.values[(node * STAT_OPS.length + op) * STAT_OUTCOMES.length + outcome]! += 1;
    if (op !== 3) return;
    let bucket = 0;
    while (bucket < LATENCY_BOUNDS.length && seconds > LATENCY_BOUNDS[bucket]!) bucket++;
    this.values[HISTOGRAM + node * BUCKETS + bucket]! += 1;
    this.values[SUMS + node]! += seconds;
  }
}

/** Adds up every reader's region (read while they write: each number is at most one request behind). */
export function totalRequests(buffer: SharedArrayBuffer): RequestTotals {
  const all = new Float64Array(buffer);
  const sum = new Float64Array(REGION);
  for (let start = 0; start < all.length; start += REGION) for (let i = 0; i < REGION; i++) sum[i]! += all[start + i]!;
  return {
    count: (node, op, outcome) => sum[(node * STAT_OPS.length + op) * STAT_OUTCOMES.length + outcome]!,
    readBuckets: (node) => Array.from(sum.subarray(HISTOGRAM + node * BUCKETS, HISTOGRAM + (node + 1) * BUCKETS)),
    readSeconds: (node) => sum[SUMS + node]!,
  };
}
