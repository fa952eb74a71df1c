// Loadavg sampler cost: a fresh pair of daemons with -l (private mountpoints); N cgroups, each in cpu and
// cpuacct as container runtimes make them (children of the roots), each holding one python3 process with
// M sleeping threads; each daemon's CPU (sum of /proc/<tid>/schedstat run time over its process tree, ns)
// after one read of /proc/loadavg from inside every cgroup and a warm-up, over a window with all N
// tracked, then again with new processes in the cpu cgroups only (no CPU counter: lxcfs-ts's worst case),
// then over an idle window once the processes are gone and both daemons have dropped the empty cgroups;
// (window - idle) per 5 s = CPU per pass. Beside them, a Node.js process that does nothing but wake
// every 5 s (the serving process's runtime and flags): what any pass in Node costs before it does
// anything. Self-contained: its daemons, processes and cgroups are gone before the report.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CGROUP_ROOT, createCgroups, type TestCgroup } from '../../test/helpers/cgroups.js';
import { run } from '../../test/helpers/processes.js';
import { cpuNsOfTree } from './sampling.js';
import { type Bench, pinnedNode, readText, sleep, startPeer, startTs, step, which, withCleanup } from './shared.js';

export type SamplerResult =
  | { skipped: string }
  | {
      cgroups: number;
      threads_per_cgroup: number;
      threads: number;
      times_s: Bench['cfg']['samplerTimes'];
      idle_ms_per_s: { ts: number; lxcfs: number };
      cpu_ms_per_pass: { ts_runtime_layout: number; ts_cpu_only: number; lxcfs: number };
      ratio: number;
      ratio_cpu_only: number;
      /** CPU of a bare Node.js process per wake (its 5 s timer; both windows). */
      node_wake_ms: number;
    };

export async function phaseSamplerCost(bench: Bench): Promise<SamplerResult> {
  const { cfg, tmp } = bench;
  const N = cfg.samplerCgroups;
  const M = cfg.samplerThreads;
  const T = cfg.samplerTimes;
  const python = which('python3');
  if (!python) return { skipped: 'python3 not found' };
  if (!['cpu', 'cpuacct'].every((c) => fs.existsSync(path.join(CGROUP_ROOT, c))))
    return { skipped: 'no cgroup v1 cpu and cpuacct hierarchies' };
  return withCleanup(bench.cleanup, async (cleanup) => {
    const tsMnt = path.join(tmp, 'ts-sampler-mnt');
    const daemons = {
      ts: await startTs(
        cleanup,
        'ts-sampler',
        'lxcfs-ts (sampler)',
        ['--pidfile', path.join(tmp, 'ts-sampler.pid'), '-l', tsMnt],
        tsMnt,
        cfg.mountTimeoutMs,
      ),
      lxcfs: await startPeer(cleanup, 'lxcfs-sampler', 'lxcfs (sampler)', ['-l'], cfg.mountTimeoutMs),
    };
    // cpu and cpuacct cgroups of the same name, as container runtimes make them on v1
    const cgroups: Array<[TestCgroup, TestCgroup]> = [];
    for (let i = 0; i < N; i++)
      cgroups.push(createCgroups(cleanup, ['cpu', 'cpuacct'], 'lxcfs-bench-la') as [TestCgroup, TestCgroup]);
    const script = `import threading, time\nfor _ in range(${M - 1}): threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\nprint('ready', flush=True)\ntime.sleep(3600)\n`;
    let procs: ChildProcess[] = [];
    const killProcs = async (): Promise<void> => {
      for (const child of procs) child.kill('SIGKILL');
      await Promise.all(
        procs.map((child) =>
          child.exitCode === null && child.signalCode === null
            ? new Promise((resolve) => child.once('exit', resolve))
            : Promise.resolve(),
        ),
      );
      procs = [];
    };
    // one python3 process of M sleeping threads per cgroup, moved (the whole thread group) into `into`
    const populate = async (into: (pair: [TestCgroup, TestCgroup]) => TestCgroup[]): Promise<void> => {
      await killProcs();
      for (const pair of cgroups) {
        const child = spawn(python, ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
        cleanup.own(child);
        procs.push(child);
        await new Promise((resolve, reject) => {
          child.stdout.once('data', resolve);
          child.once('exit', () => reject(new Error('python3 thread holder exited early')));
        });
        for (const cgroup of into(pair)) cgroup.add(child.pid!);
      }
    };
    const bareNode = spawn(
      pinnedNode(),
      ['--max-semi-space-size=1', '--no-memory-reducer', '-e', 'setInterval(() => {}, 5000)'],
      {
        stdio: 'ignore',
      },
    );
    cleanup.own(bareNode);
    const cpuNow = () => ({
      ts: cpuNsOfTree(daemons.ts.pid),
      lxcfs: cpuNsOfTree(daemons.lxcfs.pid),
      node: cpuNsOfTree(bareNode.pid!),
    });
    const window = async (seconds: number) => {
      const a = cpuNow();
      await sleep(seconds * 1000);
      const b = cpuNow();
      return { ts: (b.ts - a.ts) / seconds, lxcfs: (b.lxcfs - a.lxcfs) / seconds, node: (b.node - a.node) / seconds }; // ns per s
    };
    await populate((pair) => pair);
    const threads = cgroups.reduce(
      (n, [cpu]) => n + (readText(path.join(cpu.dir, 'tasks')) || '').trim().split('\n').length,
      0,
    );
    // one read of /proc/loadavg from inside each cgroup registers it with both daemons
    for (const [cpu] of cgroups) {
      const files = [daemons.ts.mnt, daemons.lxcfs.mnt].map((m) => path.join(m, 'proc', 'loadavg')).join(' ');
      const r = run('sh', ['-c', `echo $$ > ${cpu.dir}/cgroup.procs && exec cat ${files}`], { timeout: 5000 });
      if (r.status !== 0 || r.stdout.trim().split('\n').length !== 2)
        throw new Error(`reading loadavg from ${cpu.dir} failed: ${r.stderr || r.stdout}`);
    }
    // the first passes open what they keep and the JIT compiles the sampler: steady state after that
    await sleep(T.warmup * 1000);
    step(`  sampler cost: ${T.window} s with ${N} cgroups x ${M} threads tracked (cpu + cpuacct cgroups)`);
    const runtime = await window(T.window);
    // the same threads counts, but the processes only in the cpu cgroups: no CPU time counter for them,
    // so every thread is probed on every pass (the worst case)
    await populate(([cpu]) => [cpu]);
    await sleep(T.rewarm * 1000);
    step(`  sampler cost: ${T.window} s with the threads in cpu cgroups only`);
    const cpuOnly = await window(T.window);
    // The baseline last, when both daemons are warm: once the processes are gone, both drop the empty
    // cgroups at their next pass and track nothing.
    await killProcs();
    await sleep(T.settle * 1000);
    step(`  sampler cost: idle baseline ${T.baseline} s (nothing tracked)`);
    const idle = await window(T.baseline);
    const perPass = (w: { ts: number; lxcfs: number }, id: 'ts' | 'lxcfs'): number =>
      (Math.max(0, w[id] - idle[id]) * 5) / 1e6; // ms per 5 s pass
    const cpuMsPerPass = {
      ts_runtime_layout: perPass(runtime, 'ts'),
      ts_cpu_only: perPass(cpuOnly, 'ts'),
      lxcfs: (perPass(runtime, 'lxcfs') + perPass(cpuOnly, 'lxcfs')) / 2,
    };
    return {
      cgroups: N,
      threads_per_cgroup: M,
      threads,
      times_s: T,
      idle_ms_per_s: { ts: idle.ts / 1e6, lxcfs: idle.lxcfs / 1e6 },
      cpu_ms_per_pass: cpuMsPerPass,
      ratio: cpuMsPerPass.ts_runtime_layout / cpuMsPerPass.lxcfs,
      ratio_cpu_only: cpuMsPerPass.ts_cpu_only / cpuMsPerPass.lxcfs,
      node_wake_ms: (((runtime.node + cpuOnly.node) / 2) * 5) / 1e6,
    };
  });
}

export function formatSampler(sc: SamplerResult): string[] {
  if ('skipped' in sc) return [`loadavg sampler cost: skipped (${sc.skipped})`];
  const ms = sc.cpu_ms_per_pass;
  return [
    `loadavg sampler (-l): CPU per 5 s pass on ${sc.cgroups} cgroups x ${sc.threads_per_cgroup} threads (${sc.threads} threads; ${sc.times_s.window} s windows minus an idle one)`,
    `  lxcfs ${ms.lxcfs.toFixed(2)} ms; lxcfs-ts ${ms.ts_runtime_layout.toFixed(2)} ms with cpu + cpuacct cgroups (${(sc.ratio * 100).toFixed(1)} %), ${ms.ts_cpu_only.toFixed(2)} ms with cpu cgroups only (${(sc.ratio_cpu_only * 100).toFixed(1)} %: every thread probed)`,
    `  floor: a Node.js process that only wakes every 5 s (the serving process's runtime and flags) costs ${sc.node_wake_ms.toFixed(2)} ms per wake (${((sc.node_wake_ms / ms.lxcfs) * 100).toFixed(1)} % of lxcfs's pass)`,
  ];
}
