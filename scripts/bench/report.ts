// The results: their shape (written as JSON), the printed tables, the targets judged, and an SVG chart of
// per-file latency.

import fs from 'node:fs';
import type { TargetId } from './config.js';
import type { DaemonCost, MillionResult } from './cost.js';
import { formatGc, type GcResult } from './gc.js';
import { cellOf, type Cell, type LatencyResult, type LatencyRow, type View } from './latency.js';
import type { MetricsResult } from './metrics-cost.js';
import type { NeighbourResult } from './neighbour.js';
import type { PsiResult } from './psi.js';
import { formatRemount, type RemountResult } from './remount.js';
import { formatSampler, type SamplerResult } from './sampler-cost.js';
import type { SeriesPoint } from './sampling.js';
import type { ScaleResult } from './scale.js';
import { type Bench, FILES, FLOOR_FILE, LABELS, median } from './shared.js';
import type { ThroughputResult } from './throughput.js';
import { formatWebhook, type WebhookResult } from './webhook.js';

export interface TargetCheck {
  name: string;
  ok: boolean;
  value: string;
}

export interface Results {
  meta: {
    date: string;
    kernel: string;
    cpus: number;
    node: string;
    lxcfs_version: string | null;
    quick: boolean;
    config: Bench['cfg'];
    daemon_flags: string;
    host_loadavg_start: string;
    json: string;
    svg: string;
    seconds?: number;
    host_loadavg_end?: string;
  };
  cgroup: { name: string; dirs: Record<string, string>; cpus: string };
  cost: { daemons: Record<string, DaemonCost>; idle_seconds?: number; series?: Record<string, SeriesPoint[]> };
  views?: Record<string, View>;
  latency?: LatencyResult;
  /** The same, the client as pid 1 of its own pid namespace. */
  latency_pidns?: LatencyResult;
  throughput?: ThroughputResult;
  million?: MillionResult;
  scale?: ScaleResult;
  neighbour?: NeighbourResult;
  sampler?: SamplerResult;
  metrics?: MetricsResult;
  psi?: PsiResult;
  remount?: RemountResult;
  webhook?: WebhookResult;
  /** lxcfs-ts's garbage collections per phase (not with --no-gc). */
  gc?: GcResult;
  daemon_logs?: Record<string, string>;
  /** Per daemon: the lines of its output at warning level or above, and those that are not log records
   * (a crash's stack trace), the first 20. */
  daemon_problems?: Record<string, string[]>;
  targets?: TargetCheck[];
}

/** lxcfs-ts's RSS growth over the reads of the RSS phase. */
function rssGrowth(m: MillionResult): number {
  return (m.rss_after ?? NaN) - (m.rss_before ?? NaN);
}

/** lxcfs-ts's private memory growth over the reads of the RSS phase (settled 1 s after). */
function privateGrowth(m: MillionResult): number {
  return (m.private_after ?? NaN) - (m.private_before ?? NaN);
}

/** Why a target has no cell in a row of the latency table. */
function errorOf(row: LatencyRow, target: string): string | true | undefined {
  const cell = row[target];
  return typeof cell === 'object' && 'error' in cell ? cell.error : undefined;
}

const fmtUs = (v: number | undefined): string =>
  v !== undefined && Number.isFinite(v)
    ? v >= 1000
      ? v.toFixed(0)
      : v >= 100
        ? v.toFixed(0)
        : v >= 10
          ? v.toFixed(1)
          : v.toFixed(2)
    : '-';
const fmtX = (v: number | undefined): string => (v !== undefined && Number.isFinite(v) ? `${v.toFixed(2)}x` : '-');
const fmtMB = (b: number | undefined): string =>
  b !== undefined && Number.isFinite(b) ? `${(b / 1048576).toFixed(1)} MB` : '-';
const pad = (s: string | number, w: number): string => String(s).padStart(w);
const padR = (s: string | number, w: number): string => String(s).padEnd(w);

/** The latency table: p50 and p99 per file and target, the ratios, and the floor row. */
function formatLatency(bench: Bench, lat: LatencyResult): string[] {
  const { has } = bench;
  const tg = bench.targets;
  const L: string[] = [];
  L.push('');
  L.push(
    `Latency: open + read to EOF + close, µs (${lat.iters} per file and target, interleaved in chunks of ${lat.chunk}; the client ${lat.own_pid_namespace ? 'as pid 1 of its own pid namespace' : "in the host's pid namespace"})`,
  );
  let h = padR('file', 10);
  for (const t of tg) h += ` | ${pad(t.label + ' p50', 13)} ${pad('p99', 7)}`;
  if (has('ts') && has('lxcfs')) h += ` | ${pad('ts/lxcfs p50', 12)} ${pad('p99', 6)}`;
  h += ` | ${pad('bytes ' + tg.map((t) => t.id).join('/'), 22)}`;
  L.push(h);
  L.push('-'.repeat(h.length));
  for (const [file] of FILES) {
    const row = lat.files[file]!;
    let s = padR(file, 10);
    for (const t of tg) {
      const c = cellOf(row, t.id);
      if (!c) s += ` | ${pad(('ERR ' + String(errorOf(row, t.id))).slice(0, 21), 21)}`;
      else s += ` | ${pad(fmtUs(c.p50_us), 13)} ${pad(fmtUs(c.p99_us), 7)}`;
    }
    if (has('ts') && has('lxcfs')) s += ` | ${pad(fmtX(row.ratio_p50), 12)} ${pad(fmtX(row.ratio_p99), 6)}`;
    s += ` | ${pad(tg.map((t) => cellOf(row, t.id)?.bytes ?? '-').join('/'), 22)}`;
    L.push(s);
  }
  if (has('ts') && has('lxcfs')) {
    L.push('-'.repeat(h.length));
    let s = padR('overall', 10);
    for (let i = 0; i < tg.length; i++) s += ` | ${pad('', 21)}`;
    s += ` | ${pad(fmtX(lat.overall.ratio_p50), 12)} ${pad(fmtX(lat.overall.ratio_p99), 6)}`;
    L.push(s + '   (median of per-file ratios)');
  }
  const floor = lat.files[FLOOR_FILE[0]];
  if (floor) {
    let s = padR('(floor)', 10);
    for (const t of tg) {
      const c = cellOf(floor, t.id);
      s += c?.p50_us ? ` | ${pad(fmtUs(c.p50_us), 13)} ${pad(fmtUs(c.p99_us), 7)}` : ` | ${pad('-', 21)}`;
    }
    if (has('ts') && has('lxcfs')) s += ` | ${pad(fmtX(floor.ratio_p50), 12)} ${pad(fmtX(floor.ratio_p99), 6)}`;
    L.push(
      s +
        `   ${FLOOR_FILE[1]}: passed through by both, no view (the protocol's round trips + one host read); not in the ratios`,
    );
  }
  L.push(
    `p99 breakdown, µs (medians over the files): the first read of each chunk, after ${lat.chunk * (tg.length - 1)} reads of the other targets with this one idle (threads asleep, caches cold: what a container that reads now and then meets), and the ${lat.chunk - 1} later reads`,
  );
  for (const t of tg) {
    const cells = FILES.map(([file]) => cellOf(lat.files[file], t.id)).filter((c) => c !== undefined);
    const [firstP50, firstP99, laterP99] = [
      (c: Cell) => c.first_p50_us,
      (c: Cell) => c.first_p99_us,
      (c: Cell) => c.later_p99_us,
    ].map((pick) => pad(fmtUs(median(cells.map(pick))), 6));
    L.push(`  ${padR(t.label, 10)} first p50 ${firstP50}  first p99 ${firstP99}  later p99 ${laterP99}`);
  }

  return L;
}

const PROBLEMS_KEPT = 20;

/** The lines of a daemon's output at warning level or above (pino's 40), and those that are not log
 * records at all (what Node prints when a process dies of an exception). */
export function daemonProblems(output: string): string[] {
  const problems: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.trim()) continue;
    let level: unknown;
    try {
      level = (JSON.parse(line) as { level?: unknown }).level;
    } catch {
      level = undefined;
    }
    if (typeof level === 'number' && level < 40) continue;
    problems.push(line);
    if (problems.length === PROBLEMS_KEPT) break;
  }
  return problems;
}

export function printReport(bench: Bench, R: Results): void {
  const { cfg, has } = bench;
  const L: string[] = [];
  const tg = bench.targets;
  const lat = R.latency!;
  L.push('');
  const la = (x: string | undefined): string => (x || '').split(' ').slice(0, 3).join(' ');
  L.push(
    `lxcfs-ts vs lxcfs ${R.meta.lxcfs_version || ''} vs host  (${R.meta.kernel}, ${R.meta.cpus} cpus, node ${R.meta.node}; host load ${la(R.meta.host_loadavg_start)} at start, ${la(R.meta.host_loadavg_end)} at end)`,
  );
  L.push(
    `clients in cgroup ${R.cgroup.name}: memory ${cfg.memLimit / 1048576} MiB, cpu ${cfg.cpuQuota}/${cfg.cpuPeriod}, cpuset ${R.cgroup.cpus}; daemons: ${R.meta.daemon_flags || 'no flags'}`,
  );
  if (R.views && Object.keys(R.views).length) {
    const v = (id: string): Partial<View> => R.views![id] || {};
    const fmtMem = (k: number | null | undefined): string =>
      typeof k === 'number' && Number.isFinite(k) ? `${(k / 1024).toFixed(0)} MiB` : '-';
    L.push(
      'seen from the cgroup: ' +
        Object.keys(R.views)
          .map(
            (id) =>
              `${LABELS[id as TargetId]}: MemTotal ${fmtMem(v(id).MemTotal_kB)}, SwapTotal ${fmtMem(v(id).SwapTotal_kB)}, ${v(id).cpuinfo_processors ?? '-'} cpus in cpuinfo, online ${v(id).online ?? '-'}`,
          )
          .join('; '),
    );
  }
  if (R.views?.ts && R.views?.lxcfs) {
    const [ts, lxcfs] = [R.views.ts, R.views.lxcfs];
    const diff = (['MemTotal_kB', 'SwapTotal_kB', 'cpuinfo_processors', 'online'] as const).filter(
      (k) => ts[k] !== lxcfs[k],
    );
    if (diff.length)
      L.push(
        `NOTE: lxcfs-ts and lxcfs show the cgroup different views (${diff.map((k) => `${k} ${ts[k]} vs ${lxcfs[k]}`).join(', ')}): the ratios compare unequal work`,
      );
  }
  L.push(...formatLatency(bench, lat));
  if (R.latency_pidns) L.push(...formatLatency(bench, R.latency_pidns));

  if (R.gc) {
    L.push('');
    L.push(...formatGc(R.gc));
  }

  if (R.throughput) {
    L.push('');
    L.push(
      `Throughput: reads/s, N client processes for ${R.throughput.seconds_per_cell} s each (${R.throughput.rounds} rounds, order rotated)`,
    );
    let h2 = `${padR('file', 10)} ${pad('readers', 7)}`;
    for (const t of tg) h2 += ` | ${pad(t.label, 10)}`;
    if (has('ts') && has('lxcfs')) h2 += ` | ${pad('ts/lxcfs', 8)}`;
    L.push(h2);
    L.push('-'.repeat(h2.length));
    for (const r of R.throughput.rows) {
      let s = `${padR(r.file, 10)} ${pad(r.readers, 7)}`;
      for (const t of tg) s += ` | ${pad(r.rps[t.id] ? Math.round(r.rps[t.id]!) : '-', 10)}`;
      if (has('ts') && has('lxcfs')) s += ` | ${pad(fmtX(r.ratio), 8)}`;
      L.push(s);
    }
  }

  const daemons = R.cost.daemons;
  if (Object.keys(daemons).length) {
    L.push('');
    L.push(
      'Cost of the daemons (RSS = VmRSS, private = RssAnon + RssShmem, each summed over the process tree; CPU = utime+stime)',
    );
    const h3 = `${padR('daemon', 10)} | ${pad('RSS start', 10)} ${pad('RSS max', 10)} ${pad('RSS end', 10)} ${pad('PSS end', 10)} ${pad('private', 10)} | ${pad('CPU s total', 11)} ${pad('latency', 8)} ${pad('tput', 8)} | ${pad('idle ms/s', 9)} | ${pad('CPU µs/read', 11)}`;
    L.push(h3);
    L.push('-'.repeat(h3.length));
    for (const [id, c] of Object.entries(daemons)) {
      L.push(
        `${padR(LABELS[id as TargetId], 10)} | ${pad(fmtMB(c.rss_start), 10)} ${pad(fmtMB(c.rss_max), 10)} ${pad(fmtMB(c.rss_end), 10)} ${pad(fmtMB(c.pss_end), 10)} ${pad(fmtMB(c.private_end), 10)} | ` +
          `${pad(c.cpu_total_s?.toFixed(2) ?? '-', 11)} ${pad(c.cpu_latency_s?.toFixed(2) ?? '-', 8)} ${pad(c.cpu_tput_s?.toFixed(2) ?? '-', 8)} | ` +
          `${pad(c.idle_cpu_ms_per_s?.toFixed(2) ?? '-', 9)} | ${pad(c.cpu_us_per_read?.toFixed(1) ?? '-', 11)}`,
      );
    }
    L.push(
      `  RSS counts the node binary's resident pages (about 34 MB) once per process: lxcfs-ts runs two (supervisor and serving process); the kernel keeps them once, PSS shares them out, private leaves them out`,
    );
    const ts = daemons.ts;
    if (ts) {
      L.push(
        `  lxcfs-ts private: ${fmtMB(ts.private_warm)} after warm-up and the latency phase, ${fmtMB(ts.private_max)} at most, ${fmtMB(ts.private_end)} at the end; ` +
          `its own memory cgroup (what systemd would show): ${fmtMB(ts.charged_warm)} after warm-up, ${fmtMB(ts.charged_end)} at the end`,
      );
    }
    L.push(
      `  idle: ${R.cost.idle_seconds} s window after the latency phase (includes one lxcfs -l loadavg pass); CPU µs/read: daemon CPU during the throughput phase / reads it served`,
    );
  }
  if (R.metrics) {
    const m = R.metrics;
    const per = Object.entries(m.files).map(
      ([file, r]) => `${file} ${r.on_p50_us.toFixed(0)}/${r.off_p50_us.toFixed(0)} µs (${r.ratio_p50.toFixed(2)}x)`,
    );
    L.push(
      `metrics cost (--metrics on / off, p50): ${per.join(', ')}; overall p50 ${m.overall.ratio_p50.toFixed(2)}x, p99 ${m.overall.ratio_p99.toFixed(2)}x; ${m.scrapes} scrapes meanwhile, ${m.scrape_failures} failed`,
    );
    L.push(
      `  counting, measured alone: ${m.record_ns.read.toFixed(0)} ns per READ (two clock reads and the counters' stores), ${m.record_ns.other.toFixed(0)} ns per other request; a file read (open, 2 reads, release) adds ${(2 * m.record_ns.read + 2 * m.record_ns.other).toFixed(0)} ns to the (floor) file's p50 of ${cellOf(R.latency?.files.floor, 'ts')?.p50_us.toFixed(0) ?? '?'} µs`,
    );
  }
  if (R.sampler) {
    L.push('');
    L.push(...formatSampler(R.sampler));
  }
  if (R.million) {
    const m = R.million;
    L.push('');
    L.push(
      `lxcfs-ts RSS over ${m.reads.toLocaleString('en-US')} reads (${m.clients} clients: ${m.files.join(', ')}; ${m.seconds.toFixed(1)} s, ${Math.round(m.reads_per_s)}/s): ` +
        `${m.cut_short ? `[CUT SHORT after ${cfg.millionMaxSeconds} s, target ${m.target_reads.toLocaleString('en-US')}] ` : ''}before ${fmtMB(m.rss_before)}, after ${fmtMB(m.rss_after)}, 1 s later ${fmtMB(m.rss_after_1s)}, max ${fmtMB(m.rss_max)}, growth ${fmtMB(rssGrowth(m))}; private ${fmtMB(m.private_before)} -> ${fmtMB(m.private_after)}`,
    );
  }
  if (R.neighbour) {
    const nb = R.neighbour;
    L.push('');
    L.push(
      `noisy neighbour: quiet container reading meminfo (${nb.iters} reads), alone and beside ${nb.procs} processes of another container reading it one byte per request`,
    );
    L.push(
      `  ${padR('daemon', 10)} ${pad('alone p50', 10)} ${pad('p99', 9)} | ${pad('loaded p50', 10)} ${pad('p99', 9)} | ${pad('p50 x', 7)} ${pad('p99 x', 7)}  (us)`,
    );
    for (const [id, r] of Object.entries(nb.targets)) {
      L.push(
        `  ${padR(LABELS[id as TargetId], 10)} ${pad(fmtUs(r.alone.p50_us), 10)} ${pad(fmtUs(r.alone.p99_us), 9)} | ${pad(fmtUs(r.loaded.p50_us), 10)} ${pad(fmtUs(r.loaded.p99_us), 9)} | ${pad(fmtX(r.p50_ratio), 7)} ${pad(fmtX(r.p99_ratio), 7)}`,
      );
    }
  }
  if (R.scale) {
    const sc = R.scale;
    L.push('');
    L.push(
      `Scale: ${sc.containers} simulated containers (own pid namespace and cgroups, MemTotal ${
        sc.checks.every((c) => c.ok)
          ? 'checked'
          : 'WRONG in ' +
            sc.checks
              .filter((c) => !c.ok)
              .map((c) => `${c.target}#${c.container}`)
              .join(' ')
      }), every file in turn; µs`,
    );
    L.push(
      `  1 container: ${sc.containers * sc.rounds} turns alone; ${sc.containers} containers: ${sc.rounds} turns each, round-robin`,
    );
    let h4 = padR('file', 10);
    for (const id of ['ts', 'lxcfs'] as const)
      h4 += ` | ${pad(LABELS[id] + ' 1:p50', 15)} ${pad('p99', 6)} ${pad(`${sc.containers}:p50`, 7)} ${pad('p99', 6)} ${pad('growth', 6)}`;
    L.push(h4);
    L.push('-'.repeat(h4.length));
    for (const [f, row] of Object.entries(sc.files)) {
      let line = padR(f, 10);
      for (const id of ['ts', 'lxcfs']) {
        const c = row[id]!;
        line += ` | ${pad(fmtUs(c.single.p50_us), 15)} ${pad(fmtUs(c.single.p99_us), 6)} ${pad(fmtUs(c.many.p50_us), 7)} ${pad(fmtUs(c.many.p99_us), 6)} ${pad(fmtX(c.p99_growth), 6)}`;
      }
      L.push(line);
    }
    L.push(
      `  p99 growth (median over files): lxcfs-ts ${fmtX(sc.overall_p99_growth.ts)}, lxcfs ${fmtX(sc.overall_p99_growth.lxcfs)}; RSS max during the ${sc.containers}-container run: lxcfs-ts ${fmtMB(sc.rss_max.ts ?? undefined)}, lxcfs ${fmtMB(sc.rss_max.lxcfs ?? undefined)}`,
    );
  }
  if (R.remount) {
    L.push('');
    L.push(formatRemount(R.remount));
  }
  if (R.webhook) {
    L.push('');
    L.push(formatWebhook(R.webhook));
  }
  for (const [id, lines] of Object.entries(R.daemon_problems ?? {})) {
    if (!lines.length) continue;
    L.push('');
    L.push(
      `${id} logged ${lines.length}${lines.length === PROBLEMS_KEPT ? ' or more' : ''} warnings or errors; the first:`,
    );
    for (const line of lines.slice(0, 8)) L.push(`  ${line.slice(0, 300)}`);
  }
  if (R.targets?.length) {
    L.push('');
    L.push('Targets (this host, this run, lxcfs side by side)');
    for (const t of R.targets) L.push(`  ${padR(t.ok ? 'met' : 'MISSED', 6)}  ${padR(t.name, 44)} ${t.value}`);
  }
  L.push('');
  L.push(`raw JSON: ${R.meta.json}`);
  L.push(`chart:    ${R.meta.svg}`);
  L.push(`total:    ${(R.meta.seconds ?? NaN).toFixed(0)} s`);
  console.log(L.join('\n'));
}

export function evaluateTargets(bench: Bench, R: Results): TargetCheck[] {
  const { has } = bench;
  const out: TargetCheck[] = [];
  if (!(has('ts') && has('lxcfs')) || !R.latency) return out;
  // Judged on both latency runs: the client in the host's pid namespace and in its own.
  const runs = [R.latency, R.latency_pidns].filter((run) => run !== undefined);
  const tag = (run: LatencyResult): string =>
    runs.length > 1 ? (run.own_pid_namespace ? 'own ns: ' : 'host ns: ') : '';
  const perFile = (failed: (ratio: number) => boolean, key: 'ratio_p50' | 'ratio_p99') =>
    runs.map((run) => {
      const bad = FILES.filter(([f]) => failed(run.files[f]![key] ?? NaN)).map(
        ([f]) => `${f} ${fmtX(run.files[f]![key])}`,
      );
      return { ok: bad.length === 0, text: `${tag(run)}${bad.length ? bad.join(', ') : 'none'}` };
    });
  const slowerP50 = perFile((ratio) => !(ratio < 1), 'ratio_p50');
  out.push({
    name: 'p50 below lxcfs on every file',
    ok: slowerP50.every((r) => r.ok),
    value: `not below: ${slowerP50.map((r) => r.text).join('; ')}`,
  });
  const slowerP99 = perFile((ratio) => !(ratio <= 1), 'ratio_p99');
  out.push({
    name: 'p99 <= lxcfs on every file',
    ok: slowerP99.every((r) => r.ok),
    value: `above: ${slowerP99.map((r) => r.text).join('; ')}`,
  });
  const overall = runs.map((run) => `${tag(run)}${fmtX(run.overall.ratio_p50)}`).join(', ');
  const worstOverall = Math.max(...runs.map((run) => run.overall.ratio_p50));
  out.push({ name: 'p50 <= 0.5x lxcfs overall', ok: worstOverall <= 0.5, value: overall });
  out.push({ name: 'stretch: p50 <= 0.4x overall', ok: worstOverall <= 0.4, value: overall });
  const ts = R.cost.daemons.ts;
  const peer = R.cost.daemons.lxcfs;
  if (ts && peer) {
    const ratio = ts.cpu_us_per_read / peer.cpu_us_per_read;
    out.push({
      name: 'daemon CPU per read <= 0.4x lxcfs',
      ok: ratio <= 0.4,
      value: `${fmtX(ratio)} (${ts.cpu_us_per_read.toFixed(1)} / ${peer.cpu_us_per_read.toFixed(1)} µs)`,
    });
  }
  if (R.throughput) {
    const r8 = R.throughput.rows.filter((r) => r.readers === 8);
    const worst = Math.min(...r8.map((r) => r.ratio ?? NaN));
    out.push({
      name: '8-reader throughput >= 2x lxcfs on both files',
      ok: worst >= 2,
      value: r8.map((r) => `${r.file} ${fmtX(r.ratio)}`).join(', '),
    });
  }
  if (ts) {
    out.push({
      name: 'private memory <= 32 MB after warm-up',
      ok: (ts.private_warm ?? Infinity) <= 32e6,
      value: `${fmtMB(ts.private_warm)} (end ${fmtMB(ts.private_end)}, cgroup ${fmtMB(ts.charged_end)})`,
    });
    out.push({ name: 'RSS <= 96 MB', ok: ts.rss_max <= 96e6, value: `max ${fmtMB(ts.rss_max)}` });
  }
  if (R.million) {
    const g = privateGrowth(R.million);
    const n = R.million.reads >= 1e6 ? '10^6' : R.million.reads.toLocaleString('en-US');
    out.push({
      name: `private memory flat over ${n} reads (< 2 MB)`,
      ok: g < 2 * 1048576 && R.million.reads >= 1e6,
      value: `${fmtMB(g)}${R.million.reads < 1e6 ? ' (fewer than 10^6 reads: not judged)' : ''}`,
    });
  }
  if (R.sampler && !('skipped' in R.sampler)) {
    const sc = R.sampler;
    const pct = (ratio: number): string => `${(ratio * 100).toFixed(1)} %`;
    out.push({
      name: 'loadavg sampler CPU/pass <= 10% of lxcfs, both layouts',
      ok: Math.max(sc.ratio, sc.ratio_cpu_only) <= 0.1,
      value: `${pct(sc.ratio)} (cpu+cpuacct), ${pct(sc.ratio_cpu_only)} (cpu only)`,
    });
  }
  if (R.scale) {
    const grown = Object.entries(R.scale.files)
      .filter(([, r]) => !((r.ts?.p99_growth ?? NaN) <= 1.3))
      .map(([f, r]) => `${f} ${fmtX(r.ts?.p99_growth)}`);
    out.push({
      name: `scale: ${R.scale.containers} containers' p99 <= 1.3x one's, every file`,
      ok: grown.length === 0 && R.scale.checks.every((x) => x.ok),
      value: `${grown.length ? `above: ${grown.join(', ')}` : 'none above'}${R.scale.checks.every((x) => x.ok) ? '' : '; WRONG MemTotal seen'}`,
    });
  }
  if (R.neighbour?.targets.ts) {
    const r = R.neighbour.targets.ts;
    out.push({
      name: 'noisy neighbour: quiet container p50 <= 3x alone',
      ok: r.p50_ratio <= 3,
      value: `${fmtX(r.p50_ratio)} (${fmtUs(r.alone.p50_us)} -> ${fmtUs(r.loaded.p50_us)} us)`,
    });
  }
  return out;
}

export function writeSvg(bench: Bench, file: string, R: Results): void {
  const tg = bench.targets;
  const colors: Record<TargetId, string> = { ts: '#1f77b4', lxcfs: '#ff7f0e', host: '#8c8c8c' };
  const rows = FILES.map(([f]): [string, LatencyRow] => [f, R.latency!.files[f]!]);
  // scale to the largest p99, but never past 3x the largest median (quick runs have wild p99s)
  const maxP50 = Math.max(1, ...rows.flatMap(([, r]) => tg.map((t) => cellOf(r, t.id)?.p50_us || 0)));
  const maxP99 = Math.max(1, ...rows.flatMap(([, r]) => tg.map((t) => cellOf(r, t.id)?.p99_us || 0)));
  const maxV = Math.min(maxP99, 3 * maxP50) * 1.05;
  const left = 80;
  const plotW = 520;
  const barH = 10;
  const groupH = tg.length * (barH + 2) + 10;
  const top = 46;
  const height = top + rows.length * groupH + 34;
  const width = left + plotW + 170;
  const x = (v: number): number => left + (Math.min(v, maxV) / maxV) * plotW;
  const esc = (s: string | true): string =>
    String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
  const o: string[] = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
  );
  o.push(`<rect width="100%" height="100%" fill="white"/>`);
  o.push(
    `<text x="${left}" y="16" font-size="13" font-weight="bold">open+read+close latency per file: bar median, line to p99 (µs)</text>`,
  );
  tg.forEach((t, i) => {
    const lx = left + i * 110;
    o.push(
      `<rect x="${lx}" y="26" width="10" height="10" fill="${colors[t.id]}"/><text x="${lx + 14}" y="35">${esc(t.label)}</text>`,
    );
  });
  const raw = maxV / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const tick = [1, 2, 5, 10].map((k) => k * mag).find((k) => k >= raw)!;
  for (let v = 0; v <= maxV; v += tick) {
    const xx = x(v).toFixed(1);
    o.push(`<line x1="${xx}" y1="${top - 4}" x2="${xx}" y2="${height - 30}" stroke="#eee"/>`);
    o.push(`<text x="${xx}" y="${height - 18}" text-anchor="middle" fill="#555">${+v.toPrecision(6)}</text>`);
  }
  o.push(`<text x="${left + plotW / 2}" y="${height - 4}" text-anchor="middle" fill="#555">µs</text>`);
  rows.forEach(([f, r], gi) => {
    const gy = top + gi * groupH;
    o.push(`<text x="${left - 6}" y="${gy + (tg.length * (barH + 2)) / 2 + 4}" text-anchor="end">${esc(f)}</text>`);
    tg.forEach((t, i) => {
      const c = cellOf(r, t.id);
      const y = gy + i * (barH + 2);
      if (!c || !Number.isFinite(c.p50_us)) {
        o.push(`<text x="${left + 2}" y="${y + barH - 1}" fill="#c00">${esc(errorOf(r, t.id) || 'n/a')}</text>`);
        return;
      }
      o.push(
        `<rect x="${left}" y="${y}" width="${Math.max(1, x(c.p50_us) - left).toFixed(1)}" height="${barH}" fill="${colors[t.id]}"/>`,
      );
      const px = x(c.p99_us);
      o.push(
        `<line x1="${x(c.p50_us).toFixed(1)}" y1="${y + barH / 2}" x2="${px.toFixed(1)}" y2="${y + barH / 2}" stroke="${colors[t.id]}" stroke-width="1"/>`,
      );
      const label = `${fmtUs(c.p50_us)} (p99 ${fmtUs(c.p99_us)})${t.id === 'ts' && Number.isFinite(r.ratio_p50) ? ` ${fmtX(r.ratio_p50)}` : ''}`;
      o.push(
        `<text x="${(Math.max(x(c.p50_us), Math.min(px, left + plotW)) + 4).toFixed(1)}" y="${y + barH - 1}" fill="#333">${esc(label)}</text>`,
      );
    });
  });
  o.push('</svg>');
  fs.writeFileSync(file, o.join('\n') + '\n');
}
