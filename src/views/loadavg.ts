// /proc/loadavg for a container (lxcfs -l): the kernel's fixed-point load averages, computed by the
// sampler (src/lxcfs/loadavg-sampler.ts) from the container's runnable and uninterruptible threads.

/** 1.0 in fixed point: 11 bits of fraction, as the kernel's and lxcfs's FIXED_1. */
export const FIXED_1 = 2048;

/** Decay per 5 s sample of the 1, 5 and 15 minute averages: 2048 / e^(5 s / window), rounded. */
export const EXP_1 = 1884;
export const EXP_5 = 2014;
export const EXP_15 = 2037;

/** Seconds between two samples: lxcfs's (and the kernel's) LOAD_FREQ. The constants above depend on it. */
export const SAMPLE_SECONDS = 5;

/**
 * One step of an exponentially decaying average in fixed point, as the kernel's and lxcfs's calc_load:
 * `(load·e + active·(1−e) [+ 1−ε when rising]) / 1`, integer division. `active` is the number of R and D
 * threads times FIXED_1.
 */
export function calcLoad(load: number, exp: number, active: number): number {
  let next = load * exp + active * (FIXED_1 - exp);
  if (active >= load) next += FIXED_1 - 1;
  return Math.floor(next / FIXED_1);
}

/** The three averages after one sample of `running` (R + D) threads. */
export function nextLoads(loads: readonly [number, number, number], running: number): [number, number, number] {
  const active = running * FIXED_1;
  return [calcLoad(loads[0], EXP_1, active), calcLoad(loads[1], EXP_5, active), calcLoad(loads[2], EXP_15, active)];
}

/**
 * `a.bb` from a fixed-point load, rounded to two decimals the way lxcfs does (and the kernel's
 * /proc/loadavg): add FIXED_1/200 (integer: 10), then the integer part and two truncated decimals.
 */
export function formatLoad(load: number): string {
  const rounded = load + Math.floor(FIXED_1 / 200);
  const whole = Math.floor(rounded / FIXED_1);
  const hundredths = Math.floor(((rounded % FIXED_1) * 100) / FIXED_1);
  return `${whole}.${String(hundredths).padStart(2, '0')}`;
}

export interface LoadavgValues {
  /** Fixed-point averages (FIXED_1 = 1.0). */
  readonly load1: number;
  readonly load5: number;
  readonly load15: number;
  /** R + D threads of the container at the last sample. */
  readonly running: number;
  /** All threads of the container at the last sample. */
  readonly total: number;
  /** The largest thread id of the container at the last sample (lxcfs's stand-in for the last pid). */
  readonly last: number;
}

/** lxcfs's line: `%lu.%02lu %lu.%02lu %lu.%02lu %d/%d %d\n`. */
export function renderLoadavg(values: LoadavgValues): string {
  return `${formatLoad(values.load1)} ${formatLoad(values.load5)} ${formatLoad(values.load15)} ${values.running}/${values.total} ${values.last}\n`;
}

/** What lxcfs shows for a cgroup it has not sampled yet: `0.00 0.00 0.00 0/1 <pid>`. */
export function firstSight(pid: number): LoadavgValues {
  return { load1: 0, load5: 0, load15: 0, running: 0, total: 1, last: pid };
}
