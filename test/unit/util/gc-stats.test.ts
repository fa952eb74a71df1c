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

/** Runs `body` in a child process with the serving process's V8 flags, after `memory` (one slot) and
 * `profiled` (its ProfiledGc) are set up; `body` prints what the test checks as JSON. */
function inChild<T>(body: string): T {
  const script = `
    import { allocateGcStats, foldsDue, gcTotals, ProfiledGc, requestFold } from ${JSON.stringify(GC_STATS)};
    const memory = allocateGcStats(1);
    const profiled = new ProfiledGc(memory, 0);
    const count = (kind) => gcTotals(memory, 0).find((t) => t.kind === kind).count;
    let kept;
    const churn = () => { for (let i = 0; i < 100000; i++) kept = { i, text: 'x' + i }; };
    ${body}
  `;
  const result = spawnSync(
    process.execPath,
    ['--expose-gc', '--max-semi-space-size=1', '--input-type=module', '-e', script],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout) as T;
}

/** `folds` folds asked for by the main thread, each after 1024 requests and enough garbage for a few
 * young collections, as a busy reader thread has. */
function foldUnderChurn(folds: number): FoldRun {
  return inChild<FoldRun>(`
    const rssBefore = process.memoryUsage().rss;
    for (let fold = 0; fold < ${folds}; fold++) {
      churn();
      for (let request = 1; request < 1024; request++) profiled.tick();
      requestFold(memory);
      profiled.tick();
    }
    const growthMiB = (process.memoryUsage().rss - rssBefore) / 1048576;
    console.log(JSON.stringify({ growthMiB, totals: gcTotals(memory, 0), kept: kept.i }));
  `);
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

  it('is due to fold after 1024 requests, not before; asked before, it answers without a full collection', () => {
    const run = inChild<{ quiet: number[]; busy: number[]; due: number[][] }>(`
      const due = [];
      churn();
      for (let request = 1; request < 10; request++) profiled.tick();
      due.push(foldsDue(memory, [0]));
      let folded = requestFold(memory);
      profiled.tick();
      const quiet = [Number(folded([0])), count('fold'), count('minor')];
      for (let request = 0; request < 1024; request++) profiled.tick();
      due.push(foldsDue(memory, [0]));
      folded = requestFold(memory);
      profiled.tick();
      due.push(foldsDue(memory, [0]));
      const busy = [Number(folded([0])), count('fold'), count('minor')];
      console.log(JSON.stringify({ quiet, busy, due, kept: kept.i }));
    `);
    // Answered at once, nothing folded yet: the churn's young collections are still in the profiler.
    expect(run.quiet).toEqual([1, 0, 0]);
    expect(run.busy[0]).toBe(1);
    expect(run.busy[1]).toBe(1);
    expect(run.busy[2]).toBeGreaterThan(0);
    // Due (worth waking for a scrape) only between its 1024th request and its fold.
    expect(run.due).toEqual([[], [0], []]);
  });
});
