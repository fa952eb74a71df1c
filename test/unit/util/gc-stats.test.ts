// The reader threads' GC counters (ProfiledGc): what a fold counts, and what folding costs in memory.
// Run in a child process: the serving process's V8 flags (--expose-gc, a 1 MB young generation) are not
// vitest's.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const GC_STATS = path.resolve(import.meta.dirname, '../../../dist/util/gc-stats.js');

interface FoldRun {
  growthMiB: number;
  totals: Array<{ kind: string; count: number; seconds: number }>;
}

/** `folds` folds, each after enough garbage for a few young collections, as a busy reader thread has. */
function foldUnderChurn(folds: number): FoldRun {
  const script = `
    import { allocateGcStats, gcTotals, ProfiledGc, requestFold } from ${JSON.stringify(GC_STATS)};
    const memory = allocateGcStats(1);
    const profiled = new ProfiledGc(memory, 0);
    const rssBefore = process.memoryUsage().rss;
    let kept;
    for (let fold = 0; fold < ${folds}; fold++) {
      for (let i = 0; i < 100000; i++) kept = { i, text: 'x' + i };
      requestFold(memory);
      profiled.tick();
    }
    const growthMiB = (process.memoryUsage().rss - rssBefore) / 1048576;
    console.log(JSON.stringify({ growthMiB, totals: gcTotals(memory, 0), kept: kept.i }));
  `;
  const result = spawnSync(
    process.execPath,
    ['--expose-gc', '--max-semi-space-size=1', '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout) as FoldRun;
}

describe('ProfiledGc', () => {
  it('folds 300 times under churn without keeping what the stopped profilers recorded', () => {
    const run = foldUnderChurn(300);
    // Before folds collected their stopped profilers, this grew by about 1.8 GB.
    expect(run.growthMiB).toBeLessThan(64);
    const count = (kind: string): number => run.totals.find((t) => t.kind === kind)!.count;
    expect(count('minor')).toBeGreaterThan(300);
    // Every fold's own full collection is counted, apart from those serving needed.
    expect(count('fold')).toBe(300);
  });
});
