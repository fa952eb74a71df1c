// Metrics cost: what --metrics adds to the request path. A second lxcfs-ts, with --metrics on 127.0.0.1
// if the bench's own runs without (--no-gc), else without; the one with metrics is scraped every second
// meanwhile (as Prometheus would, only faster); the latency client interleaves the two on a few files;
// p50/p99 per file with metrics on / off. And the counting
// alone, outside any daemon, where the machine's noise does not drown it.

import path from 'node:path';
import { InHeader, Op } from '../../src/fuse/abi.js';
import { allocateRequestStats, RequestRecorder } from '../../src/fuse/request-stats.js';
import {
  type Bench,
  freePort,
  median,
  pathOf,
  percentile,
  type Reader,
  runClients,
  startTs,
  type Target,
  withCleanup,
} from './shared.js';

/** What a reader's RequestRecorder costs per request (begin and end), best of 5 rounds, ns: a READ is
 * timed (two clock reads), any other request only counted. */
function recordCostNs(): { read: number; other: number } {
  const recorder = new RequestRecorder(allocateRequestStats(1), 0);
  const request = (opcode: number): Buffer => {
    const header = Buffer.alloc(InHeader.SIZE);
    header.writeUInt32LE(opcode, 4);
    header.writeBigUInt64LE(6n, 16);
    return header;
  };
  const n = 1_000_000;
  const best = (req: Buffer): number => {
    let ns = Infinity;
    for (let round = 0; round < 5; round++) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < n; i++) {
        recorder.begin(req);
        recorder.end(0);
      }
      ns = Math.min(ns, Number(process.hrtime.bigint() - started) / n);
    }
    return ns;
  };
  return { read: best(request(Op.READ)), other: best(request(Op.OPEN)) };
}

export interface MetricsRow {
  off_p50_us: number;
  on_p50_us: number;
  off_p99_us: number;
  on_p99_us: number;
  ratio_p50: number;
  ratio_p99: number;
}

export interface MetricsResult {
  files: Record<string, MetricsRow>;
  overall: { ratio_p50: number; ratio_p99: number };
  scrapes: number;
  scrape_failures: number;
  record_ns: { read: number; other: number };
}

/** The same build with and without --metrics, read alternately by one client (chunks interleaved, as in
 * the latency phase) while the endpoint is scraped every second. `main` is the bench's lxcfs-ts, with
 * metrics on `mainMetricsPort` if given. */
export async function phaseMetricsCost(
  bench: Bench,
  { bin, cg }: Reader,
  main: Target,
  mainMetricsPort?: number,
): Promise<MetricsResult> {
  const { cfg, tmp } = bench;
  const port = mainMetricsPort ?? (await freePort());
  const mnt = path.join(tmp, 'ts-metrics-mnt');
  return withCleanup(bench.cleanup, async (cleanup) => {
    const args = [
      '--pidfile',
      path.join(tmp, 'ts-metrics.pid'),
      ...(mainMetricsPort ? [] : ['--metrics', `127.0.0.1:${port}`]),
      ...(cfg.loadavg ? ['-l'] : []),
      ...(cfg.cfs ? ['--enable-cfs'] : []),
      mnt,
    ];
    const label = mainMetricsPort ? 'lxcfs-ts (no --metrics)' : 'lxcfs-ts (--metrics)';
    const second = await startTs(cleanup, 'ts-metrics', label, args, mnt, cfg.mountTimeoutMs);
    const secondTarget: Target = { id: 'ts', label: second.label, root: second.mnt };
    const [off, onTarget] = mainMetricsPort ? [secondTarget, main] : [main, secondTarget];
    const paths = cfg.metricsFiles.flatMap((file) => [pathOf(off, file), pathOf(onTarget, file)]);
    await runClients(cleanup, bin, cg, [['lat', cfg.warmupReads, 25, 0, ...paths]], 600000);
    let scrapes = 0;
    let scrapeFailures = 0;
    const scraper = setInterval(() => {
      fetch(`http://127.0.0.1:${port}/metrics`).then(
        (r) => r.text().then(() => (r.ok ? scrapes++ : scrapeFailures++)),
        () => scrapeFailures++,
      );
    }, 1000);
    let outs: string[];
    try {
      outs = await runClients(
        cleanup,
        bin,
        cg,
        [['lat', cfg.latIters, cfg.latChunk, cfg.latWarmup, ...paths]],
        240000 + cfg.latIters * paths.length * 2,
      );
    } finally {
      clearInterval(scraper);
    }
    const samples: Record<number, number[]> = {};
    for (const line of outs[0]!.split('\n')) {
      const f = line.split(' ');
      if (f[0] === 'lat')
        samples[Number(f[1])] = f
          .slice(2)
          .map(Number)
          .sort((a, b) => a - b);
    }
    const files: Record<string, MetricsRow> = {};
    cfg.metricsFiles.forEach((file, i) => {
      const [a, b] = [samples[2 * i], samples[2 * i + 1]];
      if (!a?.length || !b?.length) return;
      const row = {
        off_p50_us: percentile(a, 0.5) / 1000,
        on_p50_us: percentile(b, 0.5) / 1000,
        off_p99_us: percentile(a, 0.99) / 1000,
        on_p99_us: percentile(b, 0.99) / 1000,
      };
      files[file] = { ...row, ratio_p50: row.on_p50_us / row.off_p50_us, ratio_p99: row.on_p99_us / row.off_p99_us };
    });
    return {
      files,
      overall: {
        ratio_p50: median(Object.values(files).map((r) => r.ratio_p50)),
        ratio_p99: median(Object.values(files).map((r) => r.ratio_p99)),
      },
      scrapes,
      scrape_failures: scrapeFailures,
      record_ns: recordCostNs(),
    };
  });
}
