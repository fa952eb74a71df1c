// Cost of the two daemons: RSS (VmRSS summed over the daemon's process tree) and CPU seconds (utime+stime,
// plus reaped children), sampled throughout; the CPU of an idle window; CPU µs per read served; lxcfs-ts's
// RSS before and after 10^6 reads (4 clients in parallel).

import { pssOfTree, type Sample, sampleAll, series } from './sampling.js';
import { type Bench, daemons, pathOf, type Reader, runClients, sinceStart, sleep, type Target } from './shared.js';
import type { ThroughputResult } from './throughput.js';

/** The daemons' samples at the end of each phase, by phase. */
/** Samples at the ends of phases; tput_start: where the throughput phase began (the idle window ends
 * earlier: the GC counters are scraped in between, gc.ts). */
export type Checkpoints = Partial<Record<'start' | 'latency' | 'idle' | 'tput_start' | 'tput', Record<string, Sample>>>;

/** An idle window (with -l it includes one pass of lxcfs's loadavg sampler, which runs every 5 s). */
export async function phaseIdle(seconds: number): Promise<Record<string, Sample>> {
  await sleep(seconds * 1000);
  return sampleAll();
}

export interface MillionResult {
  target_reads: number;
  cut_short: boolean;
  reads: number;
  clients: number;
  files: string[];
  seconds: number;
  reads_per_s: number;
  rss_before: number | undefined;
  rss_after: number | undefined;
  rss_after_1s: number | undefined;
  rss_max: number;
  private_before: number | undefined;
  private_after: number | undefined;
  cpu_s: number | null;
}

/** lxcfs-ts's RSS over many reads, one client per file in parallel. */
export async function phaseMillion(bench: Bench, { bin, cg, usable }: Reader, ts: Target): Promise<MillionResult> {
  const { cfg } = bench;
  const files = cfg.millionFiles.filter((f) => usable.ts![f] === true);
  if (!files.length) throw new Error('no lxcfs-ts file usable for the RSS phase');
  const per = Math.ceil(cfg.millionReads / files.length);
  await sleep(300);
  const before = sampleAll()[ts.id];
  const startedAt = sinceStart();
  const t1 = Date.now();
  // capped in time so a slow build still finishes the bench in minutes (reported if cut short)
  const outs = await runClients(
    bench.cleanup,
    bin,
    cg,
    files.map((f) => ['count', per, pathOf(ts, f), cfg.millionMaxSeconds]),
    (cfg.millionMaxSeconds + 60) * 1000,
  );
  const secs = (Date.now() - t1) / 1000;
  const after = sampleAll()[ts.id];
  await sleep(1000);
  const settled = sampleAll()[ts.id];
  let total = 0;
  for (const o of outs) total += Number(o.match(/^count (\d+)/m)?.[1] || 0);
  const rssSeries = (series[ts.id] || []).filter((s) => s.t >= startedAt - 0.5);
  return {
    target_reads: per * files.length,
    cut_short: total < per * files.length,
    reads: total,
    clients: files.length,
    files,
    seconds: secs,
    reads_per_s: total / secs,
    rss_before: before?.rss,
    rss_after: after?.rss,
    rss_after_1s: settled?.rss,
    rss_max: Math.max(...rssSeries.map((s) => s.rss), after?.rss || 0),
    private_before: before?.private,
    private_after: settled?.private,
    cpu_s: after && before ? after.cpu - before.cpu : null,
  };
}

export interface DaemonCost {
  pid: number;
  procs: number | undefined;
  rss_start: number | undefined;
  rss_max: number;
  rss_end: number | undefined;
  pss_end: number | undefined;
  /** RssAnon + RssShmem, summed: after the warm-up and latency phase, at most, at the end */
  private_warm: number | undefined;
  private_max: number;
  private_end: number | undefined;
  /** what its own memory cgroup is charged (lxcfs-ts only: it runs alone in one) */
  charged_warm: number | undefined;
  charged_end: number | undefined;
  cpu_total_s: number | undefined;
  cpu_latency_s: number;
  idle_cpu_ms_per_s: number;
  cpu_tput_s: number;
  cpu_us_per_read: number;
  tput_reads: number | undefined;
}

/** Each running daemon's cost: memory now, CPU between the checkpoints. */
export function daemonCosts(
  at: Checkpoints,
  end: Record<string, Sample>,
  throughput: ThroughputResult,
  idleSeconds: number,
): Record<string, DaemonCost> {
  const costs: Record<string, DaemonCost> = {};
  for (const d of daemons) {
    const id = d.id;
    const pss = pssOfTree(d);
    const ser = series[id] || [];
    const c = (k: keyof Checkpoints): number => at[k]?.[id]?.cpu ?? NaN;
    costs[id] = {
      pid: d.pid,
      procs: end[id]?.procs,
      rss_start: at.start?.[id]?.rss,
      rss_max: Math.max(...ser.map((s) => s.rss)),
      rss_end: end[id]?.rss,
      pss_end: pss ?? undefined,
      private_warm: at.latency?.[id]?.private,
      private_max: Math.max(...ser.map((s) => s.private)),
      private_end: end[id]?.private,
      charged_warm: at.latency?.[id]?.charged,
      charged_end: end[id]?.charged,
      cpu_total_s: end[id]?.cpu,
      cpu_latency_s: c('latency') - c('start'),
      idle_cpu_ms_per_s: ((c('idle') - c('latency')) * 1000) / idleSeconds,
      cpu_tput_s: c('tput') - c('tput_start'),
      cpu_us_per_read: ((c('tput') - c('tput_start')) * 1e6) / (throughput.reads[id] || NaN),
      tput_reads: throughput.reads[id],
    };
  }
  return costs;
}
