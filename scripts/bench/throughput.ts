// Throughput: 1, 4 and 8 concurrent client processes reading one file for a fixed time, split into rounds
// with the target order rotating; reads/s per target and the ratio lxcfs-ts/lxcfs.

import { type Bench, pathOf, type Reader, runClients, step } from './shared.js';

export interface ThroughputRow {
  file: string;
  readers: number;
  rps: Record<string, number>;
  rounds: Record<string, number[]>;
  ratio?: number;
}

export interface ThroughputResult {
  seconds_per_cell: number;
  rounds: number;
  rows: ThroughputRow[];
  /** Per target, the reads it served in this phase. */
  reads: Record<string, number>;
}

export async function phaseThroughput(bench: Bench, { bin, cg, usable }: Reader): Promise<ThroughputResult> {
  const { cfg } = bench;
  const rows: ThroughputRow[] = [];
  const reads: Record<string, number> = {};
  const secs = cfg.tputSeconds / cfg.tputRounds;
  for (const file of cfg.tputFiles) {
    for (const n of cfg.tputReaders) {
      const row: ThroughputRow = { file, readers: n, rps: {}, rounds: {} };
      const tg = bench.targets.filter((t) => usable[t.id]![file] === true);
      for (let r = 0; r < cfg.tputRounds; r++) {
        const order = tg.map((_, i) => tg[(i + r) % tg.length]!);
        for (const t of order) {
          const outs = await runClients(
            bench.cleanup,
            bin,
            cg,
            Array.from({ length: n }, () => ['tput', secs, pathOf(t, file)]),
            30000 + secs * 4000,
          );
          let rps = 0;
          let count = 0;
          for (const o of outs) {
            const m = o.match(/^tput (\d+) (\d+)$/m);
            if (!m) throw new Error(`bad client output: ${o.slice(0, 100)}`);
            rps += Number(m[1]) / (Number(m[2]) / 1e9);
            count += Number(m[1]);
          }
          (row.rounds[t.id] ??= []).push(rps);
          reads[t.id] = (reads[t.id] || 0) + count;
        }
      }
      for (const t of tg) row.rps[t.id] = row.rounds[t.id]!.reduce((a, b) => a + b, 0) / row.rounds[t.id]!.length;
      if (row.rps.ts && row.rps.lxcfs) row.ratio = row.rps.ts / row.rps.lxcfs;
      rows.push(row);
      step(`  ${file} x${n}: ${tg.map((t) => `${t.label} ${Math.round(row.rps[t.id]!)}/s`).join(', ')}`);
    }
  }
  return { seconds_per_cell: cfg.tputSeconds, rounds: cfg.tputRounds, rows, reads };
}
