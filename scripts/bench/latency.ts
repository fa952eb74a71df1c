// Latency: per file, open + read to EOF + close, for lxcfs-ts, lxcfs and the host file, in one client
// that interleaves small chunks of every path round-robin (the starting path rotates each round) so that
// machine drift hits all targets alike; after a warm-up, and with a look at what the cgroup sees.

import {
  type Bench,
  FILES,
  MEASURED_FILES,
  median,
  pathOf,
  percentile,
  type Reader,
  runClients,
  type Target,
} from './shared.js';

export interface View {
  MemTotal_kB: number | null;
  MemAvailable_kB: number | null;
  SwapTotal_kB: number | null;
  cpuinfo_processors: number | null;
  online: string | null;
  swaps_lines: number | null;
}

/** What a client inside the cgroup sees: a sanity check that both daemons virtualize alike. */
export async function viewsFromCgroup(bench: Bench, { bin, cg, usable }: Reader): Promise<Record<string, View>> {
  const views: Record<string, View> = {};
  for (const t of bench.targets) {
    const files = ['meminfo', 'cpuinfo', 'online', 'swaps'].filter((f) => usable[t.id]![f] === true);
    if (!files.length) continue;
    const [out] = await runClients(bench.cleanup, bin, cg, [['dump', ...files.map((f) => pathOf(t, f))]], 20000);
    const content: Record<string, string> = {};
    const parts = out!.split(/^== (\d+) \d+\n/m);
    for (let i = 1; i < parts.length; i += 2) content[files[Number(parts[i])]!] = parts[i + 1]!;
    const kb = (k: string): number | null => {
      const found = content.meminfo?.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1];
      return found ? Number(found) : null;
    };
    views[t.id] = {
      MemTotal_kB: kb('MemTotal'),
      MemAvailable_kB: kb('MemAvailable'),
      SwapTotal_kB: kb('SwapTotal'),
      cpuinfo_processors:
        content.cpuinfo !== undefined ? (content.cpuinfo.match(/^processor\s*:/gm) || []).length : null,
      online: content.online?.trim() ?? null,
      swaps_lines: content.swaps !== undefined ? content.swaps.trim().split('\n').length : null,
    };
  }
  return views;
}

/** Untimed reads of every file of both daemons: V8 compiles lxcfs-ts's request path over the first few
 * thousand requests; the comparison is of daemons in their steady state. */
export async function phaseWarmup(bench: Bench, { bin, cg, usable }: Reader): Promise<void> {
  const paths = [];
  for (const [file] of MEASURED_FILES)
    for (const t of bench.targets) if (t.id !== 'host' && usable[t.id]![file] === true) paths.push(pathOf(t, file));
  // the latency client's interleaving, output discarded
  if (paths.length) await runClients(bench.cleanup, bin, cg, [['lat', bench.cfg.warmupReads, 25, 0, ...paths]], 600000);
}

export interface Cell {
  n: number;
  bytes: number | undefined;
  p50_us: number;
  p90_us: number;
  p99_us: number;
  min_us: number;
  mean_us: number;
  /** The p99's breakdown: the first read of each chunk comes after the other targets' chunks, with this
   * daemon idle meanwhile (its threads asleep, its code and data pushed out of the CPU caches: what a
   * container that reads now and then meets); the others follow a read of the same file. */
  first_p50_us: number;
  first_p99_us: number;
  later_p99_us: number;
  samples_ns: number[] | undefined;
}

/** A file's row: a cell per target (or why it has none), and the ratios lxcfs-ts/lxcfs. */
export interface LatencyRow {
  [target: string]: Cell | { error: string | true | undefined } | number | undefined;
  ratio_p50?: number;
  ratio_p99?: number;
}

export interface LatencyResult {
  /** The client was pid 1 of its own pid namespace (the daemons resolve it through the namespace's
   * init, as in a container), or a process of the host's. */
  own_pid_namespace: boolean;
  iters: number;
  chunk: number;
  warmup: number;
  files: Record<string, LatencyRow>;
  overall: { ratio_p50: number; ratio_p99: number };
}

/** The cell of `target` in a row of the latency table, if it was measured. */
export function cellOf(row: LatencyRow | undefined, target: string): Cell | undefined {
  const cell = row?.[target];
  return typeof cell === 'object' && 'p50_us' in cell ? cell : undefined;
}

/** Median and p99 per file and target; ratio lxcfs-ts/lxcfs per file and overall (median of the per-file
 * ratios). One client reads them all, in the host's pid namespace or as pid 1 of its own. */
export async function phaseLatency(
  bench: Bench,
  { bin, cg, usable }: Reader,
  { keepSamples, ownPidNamespace }: { keepSamples: boolean; ownPidNamespace: boolean },
): Promise<LatencyResult> {
  const { cfg } = bench;
  const cols: Array<[string, Target]> = [];
  for (const [file] of MEASURED_FILES)
    for (const t of bench.targets) if (usable[t.id]![file] === true) cols.push([file, t]);
  const args = ['lat', cfg.latIters, cfg.latChunk, cfg.latWarmup, ...cols.map(([f, t]) => pathOf(t, f))];
  const [out] = await runClients(bench.cleanup, bin, cg, [args], 240000 + cfg.latIters * cols.length * 2, {
    ownPidNamespace,
  });
  const res: Record<string, Record<string, { bytes?: number; samples?: number[] }>> = {};
  for (const line of out!.split('\n')) {
    const f = line.split(' ');
    if (f[0] !== 'bytes' && f[0] !== 'lat') continue;
    const [file, t] = cols[Number(f[1])]!;
    const r = ((res[file] ??= {})[t.id] ??= {});
    if (f[0] === 'bytes') r.bytes = Number(f[2]);
    else r.samples = f.slice(2).map(Number);
  }
  const table: Record<string, LatencyRow> = {};
  for (const [file] of MEASURED_FILES) {
    const row: LatencyRow = (table[file] = {});
    for (const t of bench.targets) {
      const r = res[file]?.[t.id];
      if (!r?.samples) {
        row[t.id] = { error: usable[t.id]![file] === true ? 'no output' : usable[t.id]![file] };
        continue;
      }
      const sorted = [...r.samples].sort((a, b) => a - b);
      const first = r.samples.filter((_, i) => i % cfg.latChunk === 0).sort((a, b) => a - b);
      const later = r.samples.filter((_, i) => i % cfg.latChunk !== 0).sort((a, b) => a - b);
      row[t.id] = {
        n: sorted.length,
        bytes: r.bytes,
        p50_us: percentile(sorted, 0.5) / 1000,
        p90_us: percentile(sorted, 0.9) / 1000,
        p99_us: percentile(sorted, 0.99) / 1000,
        min_us: sorted[0]! / 1000,
        mean_us: sorted.reduce((a, b) => a + b, 0) / sorted.length / 1000,
        first_p50_us: percentile(first, 0.5) / 1000,
        first_p99_us: percentile(first, 0.99) / 1000,
        later_p99_us: percentile(later, 0.99) / 1000,
        samples_ns: keepSamples ? r.samples : undefined,
      };
    }
    const ts = cellOf(row, 'ts');
    const lxcfs = cellOf(row, 'lxcfs');
    if (ts?.p50_us && lxcfs?.p50_us) {
      row.ratio_p50 = ts.p50_us / lxcfs.p50_us;
      row.ratio_p99 = ts.p99_us / lxcfs.p99_us;
    }
  }
  const overall = {
    ratio_p50: median(FILES.map(([f]) => table[f]!.ratio_p50)),
    ratio_p99: median(FILES.map(([f]) => table[f]!.ratio_p99)),
  };
  return {
    own_pid_namespace: ownPidNamespace,
    iters: cfg.latIters,
    chunk: cfg.latChunk,
    warmup: cfg.latWarmup,
    files: table,
    overall,
  };
}
