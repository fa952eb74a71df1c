// lxcfs-ts benchmark: lxcfs-ts side by side with Debian's lxcfs and the host's own files.
//
//   npm run bench                          (build, then the full run: about 5 minutes, 2 of them the
//                                          loadavg sampler phase)
//   npm run bench -- --quick               (smoke run: small counts)
//   npm run bench -- --help
//   tsx scripts/bench/main.ts [options]    (after npm run build: the daemon runs from dist/)
//
// What it does, in order (one module of scripts/bench/ per phase; the daemons, cgroups and processes
// come from the tests' helpers in test/helpers/):
//  1. setup: a temp dir with private mountpoints; compiles scripts/bench/client.c with `cc -O2`;
//     starts Debian's lxcfs (`lxcfs [-l] -p <pidfile> <mnt>` on a private mountpoint, installing it with
//     apt-get if missing) and lxcfs-ts (`bin/lxcfs-ts --pidfile <tmp>/lxcfs-ts.pid --metrics
//     127.0.0.1:<free port> [-l] <tmp>/ts-mnt`: its GC counters are scraped around each phase, gc.ts);
//     waits until each serves, probing from child processes with timeouts only (a hung FUSE mount hangs
//     whoever touches it); creates uniquely named cgroups (memory 256 MiB beneath our own memory cgroup;
//     cpu quota 150000/100000, cpuset 0-1 and cpuacct as children of the root). Every client process
//     prints "ready", is moved into those cgroups by this script, and only then gets "go".
//  1b. warm-up (latency.ts): 3000 untimed reads of every file of both daemons.
//  2. latency (latency.ts): per file, open + read to EOF + close, N iterations each for lxcfs-ts, lxcfs
//     and the host file, interleaved; median and p99 per file and target, and the ratios. Then again with
//     the client as pid 1 of its own pid namespace, as a container's process is.
//  3. idle (cost.ts): daemon CPU over an idle window (includes lxcfs's loadavg sampler pass with -l).
//  4. throughput (throughput.ts): 1, 4 and 8 concurrent client processes reading one file.
//  5. cost (cost.ts): RSS and CPU of both daemons, sampled throughout (sampling.ts); CPU µs per read
//     served; lxcfs-ts RSS before and after 10^6 reads.
//  5b. loadavg sampler cost (sampler-cost.ts, also runnable alone: --sampler-only): fresh daemons with
//      -l, 20 cgroups x 50 threads.
//  5c. scale (scale.ts): N simulated containers (default 200), alone and round-robin.
//  5d. noisy neighbour (neighbour.ts): a quiet container alone and beside 300 noisy processes.
//  5e. metrics cost (metrics-cost.ts): lxcfs-ts with --metrics next to one without.
//  5f. PSI triggers (psi.ts): lxcfs-ts --enable-psi-poll with 100 armed idle triggers.
//  5g. remount (remount.ts, also runnable alone: --remount-only): `lxcfs-ts remount` in a container with
//      a nearly full mount table (up to 2,000 dead binds among 97,900 tmpfs mounts) beside a small one,
//      next to one read and parse of that table.
//  5h. webhook (webhook.ts, also runnable alone): AdmissionReviews with 1 and 8 clients.
//  Around each phase that reads from the bench's lxcfs-ts (1b to 5e): its garbage collections, count and
//  pause split minor/major, per 1,000 requests (gc.ts; not with --no-gc).
//  6. prints the tables (report.ts), writes raw JSON (--json PATH, default a temp file) and an SVG chart
//     of per-file latency next to it.
//  Cleanup (at the end, SIGINT, SIGTERM, SIGHUP): kills our clients, removes our cgroups, stops the
//  daemons by the pids we started, detaches our own mountpoints if still mounted, removes the temp dirs.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCgroup } from '../../test/helpers/cgroups.js';
import { Cleanup, REPO, run } from '../../test/helpers/processes.js';
import { type Config, makeConfig, type Options, parseOptions, parseTargets, type TargetId } from './config.js';
import { type Checkpoints, daemonCosts, phaseIdle, phaseMillion } from './cost.js';
import { GcPhases } from './gc.js';
import { phaseLatency, phaseWarmup, viewsFromCgroup } from './latency.js';
import { phaseMetricsCost } from './metrics-cost.js';
import { phaseNeighbour } from './neighbour.js';
import { formatPsi, phasePsiCost } from './psi.js';
import { daemonProblems, evaluateTargets, printReport, type Results, writeSvg } from './report.js';
import { formatRemount, phaseRemount } from './remount.js';
import { formatSampler, phaseSamplerCost } from './sampler-cost.js';
import { sampleAll, series } from './sampling.js';
import { phaseScale } from './scale.js';
import {
  type Bench,
  containerCgroups,
  daemons,
  describeCleanupError,
  expandCpus,
  FILES,
  freePort,
  LABELS,
  lastLines,
  log,
  MEASURED_FILES,
  pathOf,
  readText,
  SetupError,
  sinceStart,
  startPeer,
  startTs,
  step,
  type Target,
  type Usable,
  which,
} from './shared.js';
import { phaseThroughput } from './throughput.js';
import { benchWebhook } from './webhook.js';

const CLIENT_SRC = path.join(import.meta.dirname, 'client.c');

function compileClient(tmp: string): string {
  const cc = which('cc') || which('gcc') || which('clang');
  if (!cc) throw new SetupError('no C compiler (cc) found; install build-essential');
  const bin = path.join(tmp, 'bench-client');
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', bin, CLIENT_SRC], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0)
    throw new SetupError(`cc -O2 ${CLIENT_SRC} failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`);
  return bin;
}

function ensureLxcfs(): void {
  if (which('lxcfs')) return;
  step('lxcfs not installed: apt-get install -y lxcfs');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args: string[]) =>
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=180', ...args], { stdio: ['ignore', 2, 2], env, timeout: 240000 });
  if (apt(['install', '-y', 'lxcfs']).status !== 0) {
    apt(['update']);
    apt(['install', '-y', 'lxcfs']);
  }
  if (!which('lxcfs')) throw new SetupError('lxcfs is not installed and `apt-get install -y lxcfs` failed');
}

function lxcfsVersion(): string | null {
  const r = run('lxcfs', ['--version'], { timeout: 5000 });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').pop()?.replace(/"/g, '').slice(0, 80) || null;
}

/** Whether `file` of `target` can be read at all (to EOF, within 5 s), or why not. */
function readable(target: Target, file: string): true | string {
  const r = run('cat', [pathOf(target, file)], { timeout: 5000 });
  if (r.status === 0) return true;
  const error: NodeJS.ErrnoException | undefined = r.error;
  const code = error?.code;
  if (code === 'ENOBUFS' || (code === 'ETIMEDOUT' && r.stdout?.length)) return 'no EOF';
  if (code === 'ETIMEDOUT') return 'timeout';
  return (r.stderr ?? '').trim().split(': ').pop()?.slice(0, 30) || `exit ${r.status}`;
}

async function main(opts: Options, cfg: Config, bench: Bench): Promise<void> {
  const { has, cleanup, tmp } = bench;
  if (process.getuid?.() !== 0) throw new SetupError('must run as root (mounts FUSE filesystems and creates cgroups)');
  if (has('ts') && !fs.existsSync(path.join(REPO, 'dist', 'cli.js')))
    throw new SetupError(
      `dist/cli.js not found: run \`npm run build\` (or \`npm run bench\`), or pass --targets lxcfs,host`,
    );
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const jsonPath = path.resolve(opts.json || path.join(os.tmpdir(), `lxcfs-bench-${stamp}.json`));
  const svgPath = jsonPath.replace(/\.json$/i, '') + '.svg';
  fs.mkdirSync(path.dirname(jsonPath), { recursive: true });

  if (opts['psi-only']) {
    step(`PSI triggers only: ${cfg.psiTriggers} armed idle triggers in ${cfg.psiContainers} containers`);
    const psi = await phasePsiCost(bench);
    fs.writeFileSync(jsonPath, JSON.stringify({ psi }) + '\n');
    console.log(formatPsi(psi));
    return;
  }
  if (opts['remount-only']) {
    step('remount with a large mount table only');
    const remount = await phaseRemount(bench);
    fs.writeFileSync(jsonPath, JSON.stringify({ remount }) + '\n');
    console.log(formatRemount(remount));
    return;
  }
  if (opts['sampler-only']) {
    ensureLxcfs();
    step(`loadavg sampler cost only: ${cfg.samplerCgroups} cgroups x ${cfg.samplerThreads} threads`);
    const sampler = await phaseSamplerCost(bench);
    fs.writeFileSync(jsonPath, JSON.stringify({ sampler }) + '\n');
    console.log(formatSampler(sampler).join('\n'));
    return;
  }
  step(`temp dir ${tmp}; compiling the client`);
  const bin = compileClient(tmp);

  const flags = [...(cfg.loadavg ? ['-l'] : []), ...(cfg.cfs ? ['--enable-cfs'] : [])];
  if (has('lxcfs')) ensureLxcfs();

  // both daemons: started in parallel, each on its private mountpoint with its own pid file
  step(`starting ${bench.targets.flatMap((t) => (t.id === 'host' ? [] : [t.label])).join(' and ') || 'no daemons'}`);
  const tsMnt = path.join(tmp, 'ts-mnt');
  // lxcfs-ts alone in a fresh memory cgroup (beneath ours), as a systemd unit would be: what it is charged
  const tsMemory = has('ts') ? createCgroup(cleanup, 'memory', 'lxcfs-bench-daemon').dir : undefined;
  const tsMetricsPort = has('ts') && cfg.gc ? await freePort() : undefined;
  const [lxcfs, ts] = await Promise.all([
    has('lxcfs') ? startPeer(cleanup, 'lxcfs', 'lxcfs', flags, cfg.mountTimeoutMs) : undefined,
    has('ts')
      ? startTs(
          cleanup,
          'ts',
          'lxcfs-ts',
          [
            '--pidfile',
            path.join(tmp, 'lxcfs-ts.pid'),
            ...(tsMetricsPort ? ['--metrics', `127.0.0.1:${tsMetricsPort}`] : []),
            ...flags,
            tsMnt,
          ],
          tsMnt,
          cfg.mountTimeoutMs,
          tsMemory,
        )
      : undefined,
  ]);
  for (const d of [lxcfs, ts]) {
    if (!d) continue;
    bench.targets.find((t) => t.id === d.id)!.root = d.mnt;
    step(`  ${d.label} up: pid ${d.pid}, ${d.cmdline}`);
  }
  const meta: Results['meta'] = {
    date: new Date().toISOString(),
    kernel: `${os.type()} ${os.release()}`,
    cpus: os.cpus().length,
    node: process.version,
    lxcfs_version: has('lxcfs') ? lxcfsVersion() : null,
    quick: opts.quick,
    config: cfg,
    daemon_flags: flags.join(' '),
    host_loadavg_start: (readText('/proc/loadavg') || '').trim(),
    json: jsonPath,
    svg: svgPath,
  };

  const cg = containerCgroups(cleanup, 'lxcfs-bench', {
    memLimit: cfg.memLimit,
    cpuQuota: cfg.cpuQuota,
    cpuPeriod: cfg.cpuPeriod,
    pickCpus: (parentCpus) =>
      [...expandCpus(cfg.cpus)].every((c) => expandCpus(parentCpus).has(c)) ? cfg.cpus : parentCpus,
  });
  step(`cgroup ${cg.name}: ${Object.values(cg.dirs).join(' ')}`);

  // which (target, file) pairs are readable at all; a failing pair is reported, not fatal
  const usable: Usable = {};
  for (const t of bench.targets) {
    const row: Usable[string] = (usable[t.id] = {});
    for (const [file] of MEASURED_FILES) row[file] = readable(t, file);
    const bad = FILES.filter(([f]) => row[f] !== true).map(([f]) => `${f} (${row[f]})`);
    if (bad.length) log(`warning: ${t.label} cannot serve: ${bad.join(', ')}`);
  }
  const reader = { bin, cg, usable };

  const R: Results = { meta, cgroup: { name: cg.name, dirs: cg.dirs, cpus: cg.cpus }, cost: { daemons: {} } };
  R.views = await viewsFromCgroup(bench, reader);
  // Every phase that reads from the bench's lxcfs-ts runs inside `phase`, which counts its GCs.
  const gc = tsMetricsPort ? new GcPhases(tsMetricsPort) : undefined;
  if (gc) R.gc = gc.result;
  const phase = <T>(name: string, body: () => Promise<T>): Promise<T> => (gc ? gc.measure(name, body) : body());
  const at: Checkpoints = {};
  const sampler = setInterval(sampleAll, cfg.sampleMs);
  cleanup.add(() => clearInterval(sampler));
  at.start = sampleAll();

  step(`warm-up: ${cfg.warmupReads} untimed reads of every file of each daemon`);
  await phase('warm-up', () => phaseWarmup(bench, reader));
  step(`latency: ${cfg.latIters} iterations x ${FILES.length} files x ${bench.targets.length} targets`);
  const keepSamples = !opts['no-samples'];
  R.latency = await phase('latency', () => phaseLatency(bench, reader, { keepSamples, ownPidNamespace: false }));
  step('latency again, the client as pid 1 of its own pid namespace (as in a container)');
  R.latency_pidns = await phase('latency, own pid ns', () =>
    phaseLatency(bench, reader, { keepSamples: false, ownPidNamespace: true }),
  );

  step(`idle window ${cfg.idleSeconds} s`);
  // The CPU windows (cost.ts) are sampled inside the phases: the scrapes around them are no one's cost.
  at.idle = await phase('idle', () => {
    at.latency = sampleAll();
    return phaseIdle(cfg.idleSeconds);
  });

  step(`throughput: ${cfg.tputFiles.join(', ')} with ${cfg.tputReaders.join('/')} readers, ${cfg.tputSeconds} s each`);
  const throughput = (R.throughput = await phase('throughput', async () => {
    at.tput_start = sampleAll();
    const result = await phaseThroughput(bench, reader);
    at.tput = sampleAll();
    return result;
  }));

  const tsTarget = bench.targets.find((t) => t.id === 'ts');
  if (tsTarget) {
    step(`lxcfs-ts RSS over ${cfg.millionReads} reads`);
    R.million = await phase('RSS reads', () => phaseMillion(bench, reader, tsTarget));
  }
  if (cfg.scale && has('ts') && has('lxcfs')) {
    step(`scale: ${cfg.scaleContainers} simulated containers (own pid namespace and cgroups), every file in turn`);
    R.scale = await phase('scale', () => phaseScale(bench, bin, usable));
  }
  if (cfg.neighbour && has('ts')) {
    step(
      `noisy neighbour: a quiet container alone and beside ${cfg.noiseProcs} processes of another reading one byte per request`,
    );
    R.neighbour = await phase('neighbour', () => phaseNeighbour(bench, bin));
  }
  R.cost.daemons = daemonCosts(at, sampleAll(), throughput, cfg.idleSeconds);
  R.cost.idle_seconds = cfg.idleSeconds;
  if (cfg.samplerCost && cfg.loadavg && has('ts') && has('lxcfs')) {
    step(`loadavg sampler cost: ${cfg.samplerCgroups} cgroups x ${cfg.samplerThreads} threads, fresh daemons with -l`);
    R.sampler = await phaseSamplerCost(bench);
  }
  if (cfg.metricsCost && tsTarget) {
    step(
      `metrics cost: lxcfs-ts with --metrics (scraped every second) next to lxcfs-ts without, ${cfg.metricsFiles.join(', ')}`,
    );
    R.metrics = await phase('metrics cost', () => phaseMetricsCost(bench, reader, tsTarget, tsMetricsPort));
  }
  if (cfg.psi && has('ts')) {
    step(`PSI triggers: ${cfg.psiTriggers} armed idle triggers in ${cfg.psiContainers} containers`);
    R.psi = await phasePsiCost(bench);
    console.log(formatPsi(R.psi));
  }
  if (cfg.remount && has('ts')) {
    step('remount with a large mount table: a container with up to 100,000 mounts beside a small one');
    R.remount = await phaseRemount(bench);
  }
  if (cfg.webhook) {
    step(`webhook: ${cfg.webhookReviews} AdmissionReviews with 1 client, then with 8`);
    R.webhook = await benchWebhook({ reviews: cfg.webhookReviews, idleSamples: opts.quick ? 1 : 3 });
  }
  R.daemon_logs = Object.fromEntries(daemons.map((d) => [d.id, d.output().slice(0, 8192)]));
  // lxcfs-ts logs JSON records; lxcfs's plain lines would all look like problems.
  R.daemon_problems = Object.fromEntries(
    daemons.filter((d) => d.cmdline.startsWith('lxcfs-ts')).map((d) => [d.label, daemonProblems(d.output())]),
  );
  R.cost.series = series;
  R.targets = evaluateTargets(bench, R);
  meta.seconds = sinceStart();
  meta.host_loadavg_end = (readText('/proc/loadavg') || '').trim();

  fs.writeFileSync(jsonPath, JSON.stringify(R) + '\n');
  writeSvg(bench, svgPath, R);
  printReport(bench, R);
}

const opts = parseOptions(process.argv.slice(2));
const cfg = makeConfig(opts);
const targetIds = parseTargets(opts.targets);
const cleanup = new Cleanup();
const bench: Bench = {
  cfg,
  cleanup,
  tmp: cleanup.tempDir('lxcfs-bench-'),
  targets: targetIds.map((id) => ({ id, label: LABELS[id], root: id === 'host' ? '/' : '' })),
  has: (id: TargetId) => targetIds.includes(id),
};

const runCleanup = (): Promise<void> =>
  cleanup.run().catch((err: unknown) => log(`warning: cleanup: ${describeCleanupError(err)}`));

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: cleaning up`);
    void runCleanup().finally(() => process.exit(130));
  });
}

let code = 0;
try {
  await main(opts, cfg, bench);
} catch (e) {
  code = 1;
  if (!interrupted) {
    const err = e as Error;
    if (!(err instanceof SetupError) && process.env.BENCH_DEBUG) console.error(err);
    const died = daemons.filter((d) => d.exitInfo && !(err instanceof SetupError));
    const why = died
      .map((d) => `; ${d.label} died (${d.exitInfo}): ${lastLines(d.output(), 2) || 'no output'}`)
      .join('');
    console.error(`bench: ${err instanceof SetupError ? 'setup failed: ' : ''}${err.message}${why}`);
  }
} finally {
  if (!interrupted) await runCleanup();
}
if (!interrupted) process.exit(code);
