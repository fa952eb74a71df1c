// PSI trigger cost: a fresh lxcfs-ts --enable-psi-poll; its CPU (% of one CPU, the whole process tree)
// over a window with no trigger, then over one with psiTriggers armed triggers (`some 1000000 1000000`: a
// whole window of stall, never reached by an idle container) and a poll pending on each. The triggers are
// spread over psiContainers containers, each its own cgroup2 cgroup, so that every container's pressure
// file is sampled on its own. The daemon stays (and is sampled) until the end of the bench.

import path from 'node:path';
import { createCgroups } from '../../test/helpers/cgroups.js';
import { startPoller, stopPoller } from '../../test/helpers/psi-poller.js';
import { procTable, sampleDaemon } from './sampling.js';
import { type Bench, sleep, startTs } from './shared.js';

export interface PsiResult {
  triggers: number;
  containers: number;
  window_s: number;
  idle_cpu_pct: number;
  armed_cpu_pct: number;
  events: number;
}

export async function phasePsiCost(bench: Bench): Promise<PsiResult> {
  const { cfg, tmp, cleanup } = bench;
  const mnt = path.join(tmp, 'mnt-psi');
  const d = await startTs(
    cleanup,
    'ts-psi',
    'lxcfs-ts --enable-psi-poll',
    ['--enable-psi-poll', '-p', path.join(tmp, 'ts-psi.pid'), mnt],
    mnt,
    cfg.mountTimeoutMs,
  );
  const cpuOver = async (seconds: number): Promise<number> => {
    const before = sampleDaemon(d, procTable());
    await sleep(seconds * 1000);
    const after = sampleDaemon(d, procTable());
    if (!before || !after) throw new Error(`${d.label} exited (${d.exitInfo})`);
    return ((after.cpu - before.cpu) / seconds) * 100;
  };
  await sleep(cfg.psiTimes.warmup * 1000);
  const idlePct = await cpuOver(cfg.psiTimes.window);
  const perContainer = Math.ceil(cfg.psiTriggers / cfg.psiContainers);
  const pollers = Array.from({ length: cfg.psiContainers }, () =>
    startPoller(cleanup, mnt, {
      cgroups: createCgroups(cleanup, ['cpu', 'unified'], 'lxcfs-bench-psi').map((cgroup) => cgroup.dir),
      trigger: 'some 1000000 1000000',
      count: perContainer,
      // a poll() that never times out within the bench
      timeoutMs: 3_600_000,
    }),
  );
  await Promise.all(pollers.map((poller) => poller.waitFor(new RegExp(`^armed ${perContainer}$`), 20000)));
  await sleep(cfg.psiTimes.warmup * 1000);
  const armedPct = await cpuOver(cfg.psiTimes.window);
  const events = pollers.reduce((n, poller) => n + poller.results().filter(([, revents]) => revents !== 0).length, 0);
  await Promise.all(pollers.map(stopPoller));
  return {
    triggers: perContainer * cfg.psiContainers,
    containers: cfg.psiContainers,
    window_s: cfg.psiTimes.window,
    idle_cpu_pct: idlePct,
    armed_cpu_pct: armedPct,
    events,
  };
}

export function formatPsi(psi: PsiResult): string {
  return `PSI triggers: lxcfs-ts --enable-psi-poll, ${psi.triggers} armed idle triggers (1 s windows) in ${psi.containers} containers: ${psi.armed_cpu_pct.toFixed(2)}% of one CPU (${psi.idle_cpu_pct.toFixed(2)}% with none armed), over ${psi.window_s} s; target < 1%: ${psi.armed_cpu_pct < 1 ? 'met' : 'NOT met'}; events (should be 0): ${psi.events}`;
}
