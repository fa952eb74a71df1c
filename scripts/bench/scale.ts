// Scale: N simulated containers, each its own pid namespace (its client is the namespace's init) and its
// own memory, cpu, cpuacct and cpuset cgroups with different limits. Every container reads every file of
// both daemons in turn (ts/lxcfs interleaved, order reversed every other turn). First one container makes
// N x rounds turns alone, then all N make `rounds` turns each, round-robin; both after an untimed warm-up
// turn of every container. Same number of samples in both runs; p50/p99 per file, p99 growth, RSS, and a
// MemTotal check in three containers.

import type { Cleanup } from '../../test/helpers/processes.js';
import { series } from './sampling.js';
import {
  type Bench,
  type ContainerCgroups,
  containerCgroups,
  expandCpus,
  FILES,
  type LatencyUs,
  latencyUs,
  median,
  pathOf,
  sinceStart,
  sleep,
  spawnInContainer,
  step,
  type Target,
  type Usable,
  withCleanup,
} from './shared.js';

/** A long-lived `turns` client in its own container; one command per line, one answer per command. */
function startContainer(cleanup: Cleanup, bin: string, cg: ContainerCgroups, paths: string[]) {
  const child = spawnInContainer(cleanup, bin, cg, ['turns', ...paths]);
  let out = Buffer.alloc(0);
  let err = '';
  // what the next answer is: its length at the start of `out`, or -1 while it is incomplete
  let waiter: { want: (buf: Buffer) => number; resolve: (text: string) => void; reject: (err: Error) => void } | null =
    null;
  const poke = (): void => {
    if (!waiter) return;
    const used = waiter.want(out);
    if (used < 0) return;
    const w = waiter;
    waiter = null;
    const chunk = out.subarray(0, used);
    out = out.subarray(used);
    w.resolve(chunk.toString('utf8'));
  };
  child.stdout.on('data', (d: Buffer) => {
    out = Buffer.concat([out, d]);
    poke();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  void exited.then((code) => {
    waiter?.reject(new Error(`container client exited (${code}): ${err.trim() || 'no message'}`));
    waiter = null;
  });
  const expect = (want: (buf: Buffer) => number): Promise<string> =>
    new Promise((resolve, reject) => {
      waiter = { want, resolve, reject };
      poke();
    });
  const line = (buf: Buffer): number => {
    const nl = buf.indexOf(10);
    return nl < 0 ? -1 : nl + 1;
  };
  // "== P BYTES\n" then BYTES bytes
  const block = (buf: Buffer): number => {
    const nl = buf.indexOf(10);
    if (nl < 0) return -1;
    const bytes = Number(buf.subarray(0, nl).toString().split(' ')[2]);
    return buf.length >= nl + 1 + bytes ? nl + 1 + bytes : -1;
  };
  return {
    child,
    exited,
    ready: () => expect(line),
    turn: async (reversed: boolean): Promise<number[]> => {
      child.stdin.write(`go ${reversed ? 1 : 0}\n`);
      const text = await expect(line);
      if (!text.startsWith('t ')) throw new Error(`container client said ${JSON.stringify(text.slice(0, 80))}`);
      return text.trim().split(' ').slice(1).map(Number);
    },
    dump: async (index: number): Promise<string> => {
      child.stdin.write(`dump ${index}\n`);
      return (await expect(block)).replace(/^== \d+ \d+\n/, '');
    },
    quit: () => child.stdin.end('quit\n'),
  };
}

export interface ScaleCheck {
  ok: boolean;
  container?: number;
  target?: string;
  MemTotal_kB?: number;
  expected_kB?: number;
  note?: string;
}

export interface ScaleResult {
  containers: number;
  rounds: number;
  files: Record<string, Record<string, { single: LatencyUs; many: LatencyUs; p99_growth: number }>>;
  overall_p99_growth: Record<string, number>;
  rss_max: Record<string, number | null>;
  checks: ScaleCheck[];
}

export function phaseScale(bench: Bench, bin: string, usable: Usable): Promise<ScaleResult> {
  return withCleanup(bench.cleanup, async (cleanup) => {
    const { cfg } = bench;
    const N = cfg.scaleContainers;
    const targets = bench.targets.filter((t) => t.id !== 'host');
    const files = FILES.map(([f]) => f).filter((f) => targets.every((t) => usable[t.id]![f] === true));
    const cols: Array<[string, Target]> = files.flatMap((f) => targets.map((t): [string, Target] => [f, t]));
    const paths = cols.map(([f, t]) => pathOf(t, f));
    const containers: Array<ReturnType<typeof startContainer>> = [];
    try {
      const limits: number[] = [];
      for (let i = 0; i < N; i++) {
        limits[i] = (128 + i) * 1048576;
        const cg = containerCgroups(cleanup, `lxcfs-bench-c${i}`, {
          memLimit: limits[i]!,
          cpuQuota: 50000 * (1 + (i % 4)),
          cpuPeriod: 100000,
          // one CPU, the other, or all of them in turn
          pickCpus: (parentCpus) => {
            const all = [...expandCpus(parentCpus || '0')];
            return i % 3 === 2 || all.length === 1 ? all.join(',') : String(all[i % 3]);
          },
        });
        const c = startContainer(cleanup, bin, cg, paths);
        containers.push(c);
        await Promise.race([
          c.ready(),
          sleep(10000).then(() => Promise.reject(new Error('a container client did not start within 10 s'))),
        ]);
      }
      // Each container sees its own memory limit through both daemons (first, middle, last).
      const memIndex = cols.findIndex(([f]) => f === 'meminfo');
      const checks: ScaleCheck[] = [];
      for (const i of [...new Set([0, N >> 1, N - 1])]) {
        for (const [k, [f, t]] of cols.entries()) {
          if (f !== 'meminfo') continue;
          const text = await containers[i]!.dump(k);
          const kb = Number(text.match(/^MemTotal:\s+(\d+) kB/m)?.[1]);
          checks.push({
            container: i,
            target: t.id,
            MemTotal_kB: kb,
            expected_kB: limits[i]! / 1024,
            ok: kb === limits[i]! / 1024,
          });
        }
      }
      if (memIndex < 0) checks.push({ ok: false, note: 'meminfo not served by both daemons' });
      const warm = async (): Promise<void> => {
        for (const c of containers) await c.turn(false);
      };
      const collect = (): Record<string, Record<string, number[]>> =>
        Object.fromEntries(targets.map((t) => [t.id, Object.fromEntries(files.map((f) => [f, [] as number[]]))]));
      const record = (into: Record<string, Record<string, number[]>>, times: number[]): void =>
        cols.forEach(([f, t], k) => into[t.id]![f]!.push(times[k]!));

      await warm();
      step(`  scale: one container, ${N * cfg.scaleRounds} turns`);
      const single = collect();
      for (let i = 0; i < N * cfg.scaleRounds; i++) record(single, await containers[0]!.turn(i % 2 === 1));
      await warm();
      step(`  scale: ${N} containers, ${cfg.scaleRounds} turns each, round-robin`);
      const t1 = sinceStart();
      const many = collect();
      for (let r = 0; r < cfg.scaleRounds; r++) for (const c of containers) record(many, await c.turn(r % 2 === 1));
      const t2 = sinceStart();
      const rss: Record<string, number | null> = {};
      for (const t of targets) {
        const s = (series[t.id] || []).filter((x) => x.t >= t1 && x.t <= t2 + 0.3);
        rss[t.id] = s.length ? Math.max(...s.map((x) => x.rss)) : null;
      }
      const table: ScaleResult['files'] = {};
      for (const f of files) {
        table[f] = {};
        for (const t of targets) {
          const one = latencyUs(single[t.id]![f]!);
          const all = latencyUs(many[t.id]![f]!);
          table[f][t.id] = { single: one, many: all, p99_growth: all.p99_us / one.p99_us };
        }
      }
      const overall = Object.fromEntries(
        targets.map((t) => [t.id, median(files.map((f) => table[f]![t.id]!.p99_growth))]),
      );
      return {
        containers: N,
        rounds: cfg.scaleRounds,
        files: table,
        overall_p99_growth: overall,
        rss_max: rss,
        checks,
      };
    } finally {
      for (const c of containers) {
        c.quit();
        c.child.kill('SIGKILL');
      }
      await Promise.race([Promise.all(containers.map((c) => c.exited)), sleep(5000)]);
    }
  });
}
