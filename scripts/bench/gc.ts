// Garbage collection in lxcfs-ts per phase: the bench's lxcfs-ts runs with --metrics on a loopback port,
// and its GC counters (lxcfs_ts_gc_total, lxcfs_ts_gc_pause_seconds_total, by thread and kind) and
// request counters are scraped at each phase's start and end; a phase's figures are the differences.

const KINDS = ['minor', 'major', 'incremental', 'weak_callbacks', 'fold'] as const;
const THREADS = ['reader', 'main'] as const;
type Kind = (typeof KINDS)[number];
type Thread = (typeof THREADS)[number];

/** Counts and pause (ms) by kind, by thread. */
type ByKind = Record<Kind, { count: number; ms: number }>;

interface Scrape {
  gc: Record<Thread, ByKind>;
  /** FUSE requests answered, every file, operation and outcome. */
  requests: number;
}

export interface GcPhase {
  phase: string;
  seconds: number;
  requests: number;
  /** Summed over threads. */
  total: ByKind;
  /** Pause ms per thread, every kind. */
  pause_ms_by_thread: Record<Thread, number>;
  count_by_thread: Record<Thread, number>;
}

export interface GcResult {
  port: number;
  phases: GcPhase[];
  /** Why a checkpoint failed, if one did (its phase is left out). */
  errors: string[];
}

const emptyByKind = (): ByKind => Object.fromEntries(KINDS.map((kind) => [kind, { count: 0, ms: 0 }])) as ByKind;

function parse(text: string): Scrape {
  const gc = Object.fromEntries(THREADS.map((thread) => [thread, emptyByKind()])) as Record<Thread, ByKind>;
  let requests = 0;
  for (const line of text.split('\n')) {
    const m = /^(lxcfs_ts_gc_total|lxcfs_ts_gc_pause_seconds_total|lxcfs_ts_requests_total)\{([^}]*)\} (\S+)$/.exec(
      line,
    );
    if (!m) continue;
    const value = Number(m[3]);
    if (m[1] === 'lxcfs_ts_requests_total') {
      requests += value;
      continue;
    }
    const labels: Record<string, string> = {};
    for (const [, key, label] of m[2]!.matchAll(/(\w+)="([^"]*)"/g)) labels[key!] = label!;
    const cell = gc[labels.thread as Thread]?.[labels.kind as Kind] as ByKind[Kind] | undefined;
    if (!cell) continue;
    if (m[1] === 'lxcfs_ts_gc_total') cell.count += value;
    else cell.ms += value * 1000;
  }
  return { gc, requests };
}

/** Checkpoints of one lxcfs-ts's GC counters around each phase. */
export class GcPhases {
  readonly result: GcResult;

  constructor(private readonly port: number) {
    this.result = { port, phases: [], errors: [] };
  }

  private async scrape(): Promise<Scrape> {
    const response = await fetch(`http://127.0.0.1:${this.port}/metrics`, { signal: AbortSignal.timeout(10000) });
    if (!response.ok) throw new Error(`scrape: HTTP ${response.status}`);
    return parse(await response.text());
  }

  /** Runs `body` between two checkpoints and records the difference as `phase`. */
  async measure<T>(phase: string, body: () => Promise<T>): Promise<T> {
    let start: Scrape | undefined;
    try {
      start = await this.scrape();
    } catch (err) {
      this.result.errors.push(`${phase} start: ${(err as Error).message}`);
    }
    const started = performance.now();
    const value = await body();
    const seconds = (performance.now() - started) / 1000;
    if (!start) return value;
    let end: Scrape;
    try {
      end = await this.scrape();
    } catch (err) {
      this.result.errors.push(`${phase} end: ${(err as Error).message}`);
      return value;
    }
    // Counters that went down were reset: the serving process was replaced (a crash or an upgrade).
    if (end.requests < start.requests) {
      this.result.errors.push(`${phase}: the counters went down, so lxcfs-ts's serving process restarted`);
      return value;
    }
    const total = emptyByKind();
    const pause = {} as Record<Thread, number>;
    const counts = {} as Record<Thread, number>;
    for (const thread of THREADS) {
      pause[thread] = 0;
      counts[thread] = 0;
      for (const kind of KINDS) {
        const count = end.gc[thread][kind].count - start.gc[thread][kind].count;
        const ms = end.gc[thread][kind].ms - start.gc[thread][kind].ms;
        total[kind].count += count;
        total[kind].ms += ms;
        // What serving costs; the folds (what counting costs) have a column of their own.
        if (kind === 'fold') continue;
        pause[thread] += ms;
        counts[thread] += count;
      }
    }
    this.result.phases.push({
      phase,
      seconds,
      requests: end.requests - start.requests,
      total,
      pause_ms_by_thread: pause,
      count_by_thread: counts,
    });
    return value;
  }
}

const pad = (s: string | number, w: number): string => String(s).padStart(w);
const ms = (v: number): string => (v >= 100 ? v.toFixed(0) : v.toFixed(1));

/** The table: per phase, GC count and total pause split minor / major (other: incremental marking and
 * weak callbacks), GCs per 1,000 requests, and pause per request (what GC adds to a request's time on
 * average); apart from these, the full collections the counting itself ran (folds). */
export function formatGc(gc: GcResult): string[] {
  const L: string[] = [];
  L.push(
    `GC in lxcfs-ts per phase (every thread of the serving process; its --metrics counters at the phase's start and end; other = incremental marking steps + weak callbacks; folds = full collections the GC counting ran, in the phase's first requests after a checkpoint's scrape, not in the other columns)`,
  );
  const h = `${'phase'.padEnd(14)} ${pad('requests', 10)} | ${pad('GCs', 6)} ${pad('minor', 6)} ${pad('major', 6)} ${pad('other', 6)} | ${pad('pause ms', 9)} ${pad('minor', 8)} ${pad('major', 8)} | ${pad('GC/1k req', 9)} ${pad('µs/req', 7)} | pause ms reader/main | folds n/ms`;
  L.push(h);
  L.push('-'.repeat(h.length));
  for (const p of gc.phases) {
    const other = p.total.incremental.count + p.total.weak_callbacks.count;
    const count = p.total.minor.count + p.total.major.count + other;
    const pauseMs = KINDS.reduce((sum, kind) => sum + (kind === 'fold' ? 0 : p.total[kind].ms), 0);
    // Per request only where requests made the garbage (the idle window has only the scrapes' wake-ups).
    const perK = p.requests >= 1000 ? ((1000 * count) / p.requests).toFixed(2) : '-';
    const usPerReq = p.requests >= 1000 ? ((1000 * pauseMs) / p.requests).toFixed(2) : '-';
    const byThread = THREADS.map((thread) => ms(p.pause_ms_by_thread[thread])).join('/');
    L.push(
      `${p.phase.padEnd(14)} ${pad(p.requests.toLocaleString('en-US'), 10)} | ${pad(count, 6)} ${pad(p.total.minor.count, 6)} ${pad(p.total.major.count, 6)} ${pad(other, 6)} | ${pad(ms(pauseMs), 9)} ${pad(ms(p.total.minor.ms), 8)} ${pad(ms(p.total.major.ms), 8)} | ${pad(perK, 9)} ${pad(usPerReq, 7)} | ${byThread} | ${p.total.fold.count}/${ms(p.total.fold.ms)}`,
    );
  }
  L.push(
    `  lxcfs-ts runs with --metrics for these counts (--no-gc: without); its memory and CPU figures below include what --metrics costs (prom-client in both processes, the counters, the GC profilers)`,
  );
  for (const error of gc.errors) L.push(`  not measured: ${error}`);
  return L;
}
