// Noisy neighbour: two containers, each its own pid namespace and its own memory, cpu, cpuacct and cpuset
// cgroups (as container runtimes make them; the daemons stay where they were started). Per daemon in turn:
// the quiet container measures open + read + close of meminfo alone, then again while the noisy
// container's noiseProcs processes read the same daemon's meminfo one byte per read() (one request each)
// in a tight loop. p50/p99 of the quiet container, alone and loaded, and loaded/alone.

import type { Cleanup } from '../../test/helpers/processes.js';
import {
  type Bench,
  type ContainerCgroups,
  containerCgroups,
  type LatencyUs,
  latencyUs,
  pathOf,
  sleep,
  spawnInContainer,
  step,
  withCleanup,
} from './shared.js';

/** A client in a container that waits for "go"; killed after `timeoutMs`. */
function inContainer(
  cleanup: Cleanup,
  bin: string,
  cg: ContainerCgroups,
  args: Array<string | number>,
  timeoutMs: number,
) {
  const child = spawnInContainer(cleanup, bin, cg, args);
  let out = '';
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.startsWith('ready\n')) resolve();
    });
    child.on('close', () => reject(new Error(`container client (${args[0]}) exited before ready: ${err.trim()}`)));
  });
  ready.catch(() => {});
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
  return {
    ready,
    go: () => child.stdin.end('go\n'),
    kill: () => child.kill('SIGKILL'),
    result: async (): Promise<string> => {
      const code = await exited;
      if (code !== 0) throw new Error(`container client (${args.join(' ')}) failed: ${err.trim() || `exit ${code}`}`);
      return out.slice('ready\n'.length);
    },
    exited,
  };
}

export interface NeighbourResult {
  procs: number;
  sleep_us: number;
  iters: number;
  targets: Record<string, { alone: LatencyUs; loaded: LatencyUs; p50_ratio: number; p99_ratio: number }>;
}

export function phaseNeighbour(bench: Bench, bin: string): Promise<NeighbourResult> {
  const { cfg } = bench;
  return withCleanup(bench.cleanup, async (cleanup) => {
    const targets = bench.targets.filter((t) => t.id !== 'host');
    const cgroupFor = (role: string): ContainerCgroups =>
      containerCgroups(cleanup, `lxcfs-bench-${role}`, {
        memLimit: cfg.memLimit,
        cpuQuota: -1,
        cpuPeriod: 100000,
        pickCpus: (all) => all || '0',
      });
    const quietRun = async (cg: ContainerCgroups, file: string): Promise<LatencyUs> => {
      const c = inContainer(cleanup, bin, cg, ['lat', cfg.neighbourIters, cfg.latChunk, cfg.latWarmup, file], 300000);
      await c.ready;
      c.go();
      const line = (await c.result()).split('\n').find((l) => l.startsWith('lat '));
      if (!line) throw new Error('the quiet container printed no latencies');
      return latencyUs(line.split(' ').slice(2).map(Number));
    };
    const quiet = cgroupFor('quiet');
    const noisy = cgroupFor('noisy');
    const res: NeighbourResult = {
      procs: cfg.noiseProcs,
      sleep_us: cfg.noiseSleepUs,
      iters: cfg.neighbourIters,
      targets: {},
    };
    for (const t of targets) {
      const file = pathOf(t, 'meminfo');
      step(`  neighbour: ${t.label}, quiet container alone`);
      const alone = await quietRun(quiet, file);
      step(`  neighbour: ${t.label}, beside ${cfg.noiseProcs} noisy processes`);
      const noise = inContainer(cleanup, bin, noisy, ['noise', cfg.noiseProcs, 600, cfg.noiseSleepUs, file], 700000);
      await noise.ready;
      noise.go();
      await sleep(1000); // every noisy process running
      let loaded;
      try {
        loaded = await quietRun(quiet, file);
      } finally {
        noise.kill(); // the namespace's init: its processes die with it
        await noise.exited;
      }
      res.targets[t.id] = {
        alone,
        loaded,
        p50_ratio: loaded.p50_us / alone.p50_us,
        p99_ratio: loaded.p99_us / alone.p99_us,
      };
    }
    return res;
  });
}
