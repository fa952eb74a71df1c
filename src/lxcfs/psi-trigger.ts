// PSI triggers as the kernel defines them (kernel/sched/psi.c), evaluated by the daemon rather than by the
// kernel: Node cannot poll() the kernel's own trigger descriptor, but the cumulative stall time it tracks
// (the `total=` field, µs) is in every pressure file, so a trigger can be judged from samples of it.
// Pure code: parsing a trigger, parsing a pressure file's totals, and one trigger's sliding window.

import { Errno } from '../fuse/abi.js';

/** The kernel's bounds (psi.c WINDOW_MIN_US, WINDOW_MAX_US), and its updates per window. */
export const WINDOW_MIN_US = 500_000;
export const WINDOW_MAX_US = 10_000_000;
export const UPDATES_PER_WINDOW = 10;
/** Bytes of a trigger the kernel looks at (its buffer is 32 bytes, NUL included). */
const TRIGGER_BYTES = 31;

export type StallKind = 'some' | 'full';

export interface TriggerSpec {
  kind: StallKind;
  thresholdUs: number;
  windowUs: number;
}

/** `total=` of the `some` and `full` lines of a pressure file (µs); full is undefined without that line. */
export interface PressureTotals {
  some: number;
  full: number | undefined;
}

const TOTAL = /^(some|full) .*\btotal=(\d+)\s*$/;

/** The totals of a pressure file's text; undefined when it has no `some` line. */
export function parsePressureTotals(text: string): PressureTotals | undefined {
  let some: number | undefined;
  let full: number | undefined;
  for (const line of text.split('\n')) {
    const match = TOTAL.exec(line);
    if (!match) continue;
    if (match[1] === 'some') some = Number(match[2]);
    else full = Number(match[2]);
  }
  return some === undefined ? undefined : { some, full };
}

/** An unsigned decimal as sscanf's %u takes it (leading blanks, optional +), within 32 bits. */
function scanUnsigned(word: string | undefined): number | undefined {
  const match = word === undefined ? null : /^\+?(\d+)/.exec(word);
  if (!match) return undefined;
  const value = Number(match[1]);
  return value <= 0xffff_ffff ? value : undefined;
}

/**
 * A written trigger, `some|full <threshold µs> <window µs>`, checked as the kernel checks it: the window
 * from 500 ms to 10 s, 0 < threshold ≤ window, and `full` only where the file has a full line (cpu
 * full exists for cgroups since Linux 5.13 and reads 0 at the system level; older kernels refuse it).
 * Returns the trigger or EINVAL.
 */
export function parseTrigger(data: Uint8Array, fileHasFull: boolean): TriggerSpec | number {
  let end = Math.min(data.length, TRIGGER_BYTES);
  const nul = data.subarray(0, end).indexOf(0);
  if (nul >= 0) end = nul;
  const text = Buffer.from(data.subarray(0, end)).toString('latin1').trim();
  const [kind, threshold, window] = text.split(/\s+/);
  if (kind !== 'some' && kind !== 'full') return Errno.EINVAL;
  if (kind === 'full' && !fileHasFull) return Errno.EINVAL;
  const thresholdUs = scanUnsigned(threshold);
  const windowUs = scanUnsigned(window);
  if (thresholdUs === undefined || windowUs === undefined) return Errno.EINVAL;
  if (windowUs < WINDOW_MIN_US || windowUs > WINDOW_MAX_US) return Errno.EINVAL;
  if (thresholdUs === 0 || thresholdUs > windowUs) return Errno.EINVAL;
  return { kind, thresholdUs, windowUs };
}

/** The stall total a trigger watches. */
export function totalOf(totals: PressureTotals, kind: StallKind): number | undefined {
  return kind === 'some' ? totals.some : totals.full;
}

/**
 * One trigger's window, updated with each sample of the total it watches, as psi.c's update_triggers:
 * the growth over the last window (the part of the previous window still inside it interpolated from that
 * window's growth, assumed linear) reaching the threshold arms an event, and events come at most once per
 * window; a breach inside the window after an event is kept and reported when the window has passed.
 * Times in µs of a monotonic clock.
 */
export class TriggerWindow {
  private startTime: number;
  private startValue: number;
  private prevGrowth = 0;
  private lastTotal: number;
  private lastEventTime: number;
  private pending = false;

  constructor(
    private readonly spec: Pick<TriggerSpec, 'thresholdUs' | 'windowUs'>,
    now: number,
    total: number,
  ) {
    this.startTime = now;
    this.startValue = total;
    this.lastTotal = total;
    // An event may come at once: the kernel's last event time starts at 0.
    this.lastEventTime = -Infinity;
  }

  /** Takes a sample; true when it generates an event. */
  update(now: number, total: number): boolean {
    const newStall = total !== this.lastTotal;
    this.lastTotal = total;
    if (!newStall && !this.pending) return false;
    if (newStall) {
      const growth = this.growth(now, total);
      if (!this.pending) {
        if (growth < this.spec.thresholdUs) return false;
        this.pending = true;
      }
    }
    if (now < this.lastEventTime + this.spec.windowUs) return false;
    this.lastEventTime = now;
    this.pending = false;
    return true;
  }

  private growth(now: number, value: number): number {
    const size = this.spec.windowUs;
    const elapsed = now - this.startTime;
    let growth = value - this.startValue;
    if (elapsed > size) {
      this.startTime = now;
      this.startValue = value;
      this.prevGrowth = growth;
    } else {
      growth += Math.floor((this.prevGrowth * (size - elapsed)) / size);
    }
    return growth;
  }
}

/** How often a trigger's total is sampled: a tenth of its window, like the kernel. */
export function samplePeriodUs(spec: Pick<TriggerSpec, 'windowUs'>): number {
  return Math.floor(spec.windowUs / UPDATES_PER_WINDOW);
}
