// The bench's command line and what it sets: counts, durations and limits of every phase.

import { parseArgs } from 'node:util';

const USAGE = `usage: npm run bench -- [options]   (or: tsx scripts/bench/main.ts [options], after npm run build)
  --quick            small counts (smoke run, ~15 s)
  --json PATH        write raw results here (default: a temp file); the SVG goes next to it
  --targets LIST     comma list of ts,lxcfs,host (default: all three)
  --iters N          latency iterations per file and target (default 3000, quick 200)
  --seconds S        throughput seconds per (file, readers, target) (default 2, quick 0.4)
  --reads N          reads for the RSS-growth phase (default 1000000, quick 20000)
  --no-loadavg       start both daemons without -l (default: both with -l)
  --no-sampler-cost  skip the loadavg sampler cost phase (fresh daemons with -l, 20 cgroups x 50 threads)
  --containers N     simulated containers of the scale phase (default 200, quick 20)
  --no-scale         skip the scale phase
  --no-metrics-cost  skip the metrics cost phase (lxcfs-ts with --metrics next to one without)
  --no-gc            start the bench's lxcfs-ts without --metrics, and so without its GC count per phase
  --no-neighbour     skip the noisy-neighbour phase
  --no-webhook       skip the webhook phase (scripts/bench/webhook.ts: AdmissionReviews with 1 and 8 clients)
  --no-psi           skip the PSI trigger phase (lxcfs-ts --enable-psi-poll with 100 armed, idle triggers)
  --psi-only         run only the PSI trigger phase (~40 s, quick ~20 s)
  --no-remount       skip the remount phase (remount in a container with a nearly full mount table)
  --remount-only     run only the remount phase (~80 s, quick ~25 s)
  --sampler-only     run only the loadavg sampler cost phase (~4 min, quick ~1 min)
  --cfs              start both daemons with --enable-cfs
  --no-samples       leave the per-iteration samples out of the JSON
  -h, --help         this text`;

export type TargetId = 'ts' | 'lxcfs' | 'host';

/** The options as given; exits with the usage on a bad one, or after printing it for --help. */
export function parseOptions(argv: string[]) {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean', default: false },
        containers: { type: 'string' },
        'no-scale': { type: 'boolean', default: false },
        'no-metrics-cost': { type: 'boolean', default: false },
        'no-gc': { type: 'boolean', default: false },
        'no-neighbour': { type: 'boolean', default: false },
        'no-webhook': { type: 'boolean', default: false },
        'no-psi': { type: 'boolean', default: false },
        'psi-only': { type: 'boolean', default: false },
        'no-remount': { type: 'boolean', default: false },
        'remount-only': { type: 'boolean', default: false },
        'sampler-only': { type: 'boolean', default: false },
        json: { type: 'string' },
        targets: { type: 'string', default: 'ts,lxcfs,host' },
        iters: { type: 'string' },
        seconds: { type: 'string' },
        reads: { type: 'string' },
        'no-loadavg': { type: 'boolean', default: false },
        'no-sampler-cost': { type: 'boolean', default: false },
        cfs: { type: 'boolean', default: false },
        'no-samples': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    });
    if (values.help) {
      console.log(USAGE);
      process.exit(0);
    }
    return values;
  } catch (err) {
    console.error(`bench: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
}

export type Options = ReturnType<typeof parseOptions>;

function num(value: string | undefined, dflt: number, what: string): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`bench: bad --${what}: ${value}`);
    process.exit(2);
  }
  return n;
}

/** The selected targets, in the report's order (ts, lxcfs, host); exits on an unknown one. */
export function parseTargets(list: string): TargetId[] {
  const ids = list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const id of ids) {
    if (id !== 'ts' && id !== 'lxcfs' && id !== 'host') {
      console.error(`bench: unknown target ${id} (expected ts, lxcfs, host)`);
      process.exit(2);
    }
  }
  return (['ts', 'lxcfs', 'host'] as const).filter((id) => ids.includes(id));
}

export function makeConfig(opts: Options) {
  const Q = opts.quick;
  return {
    latIters: Math.round(num(opts.iters, Q ? 200 : 3000, 'iters')),
    latChunk: Q ? 20 : 25, // iterations of one path before switching to the next
    latWarmup: Q ? 5 : 20,
    // untimed reads of every file of every daemon before the latency phase: V8 compiles lxcfs-ts's request
    // path over the first few thousand requests (p99 is several times higher until then), and a daemon
    // on a host serves millions; a fresh start is not the steady state to compare
    warmupReads: Q ? 300 : 3000,
    idleSeconds: Q ? 1 : 5, // lxcfs -l samples loadavg every 5 s
    tputFiles: ['uptime', 'meminfo'],
    tputReaders: [1, 4, 8],
    tputSeconds: num(opts.seconds, Q ? 0.4 : 2, 'seconds'),
    tputRounds: 2, // each (file, readers, target) cell is split into rounds, target order rotated
    millionReads: Math.round(num(opts.reads, Q ? 20000 : 1000000, 'reads')),
    millionFiles: ['uptime', 'meminfo', 'loadavg', 'online'], // one client per file, in parallel
    millionMaxSeconds: Q ? 30 : 150,
    // scale: simulated containers (own pid namespace and cgroups), every file in turn
    scale: !opts['no-scale'],
    scaleContainers: Math.round(num(opts.containers, Q ? 20 : 200, 'containers')),
    scaleRounds: Q ? 3 : 10, // turns of every container; the single-container run makes as many turns
    // noisy neighbour: a quiet container's latency alone and beside a container of noiseProcs processes
    // reading one byte per read() in a tight loop
    neighbour: !opts['no-neighbour'],
    neighbourIters: Q ? 300 : 2000,
    noiseProcs: Q ? 50 : 300,
    noiseSleepUs: 0,
    memLimit: 256 * 1024 * 1024,
    cpuQuota: 150000,
    cpuPeriod: 100000,
    cpus: '0-1',
    loadavg: !opts['no-loadavg'],
    // loadavg sampler cost: per-pass CPU of each daemon's -l sampler on N cgroups x M threads
    samplerCost: !opts['no-sampler-cost'],
    samplerCgroups: 20,
    samplerThreads: 50,
    // seconds: warm-up after registering (the first passes open what they keep, and V8 compiles the
    // sampler over about 6 passes), each measured window (12 passes: lxcfs-ts reads a quiet cgroup's
    // thread list once in 12 passes, so a shorter window counts that costlier pass or not, by chance),
    // warm-up after replacing the threads, settling after the last processes are gone, idle baseline
    // (last: both daemons warm)
    samplerTimes: Q
      ? { settle: 10, baseline: 10, warmup: 10, window: 10, rewarm: 8 }
      : { settle: 10, baseline: 10, warmup: 35, window: 60, rewarm: 30 },
    cfs: opts.cfs,
    metricsCost: !opts['no-metrics-cost'],
    // the bench's lxcfs-ts runs with --metrics, for its garbage collections per phase (gc.ts); what
    // --metrics costs it is the metrics cost phase's figure
    gc: !opts['no-gc'],
    metricsFiles: ['meminfo', 'uptime', 'stat'],
    webhook: !opts['no-webhook'],
    webhookReviews: Q ? 400 : 8000,
    // PSI triggers: the daemon's CPU (main and serving process) with psiTriggers armed triggers that never
    // fire, spread over psiContainers containers (a container may arm 32), each its own cgroup2 cgroup so
    // that every container's file is sampled on its own: every 100 ms with 1 s windows
    psi: !opts['no-psi'] || opts['psi-only'],
    psiContainers: 5,
    psiTriggers: 100,
    psiTimes: Q ? { warmup: 3, window: 8 } : { warmup: 5, window: 20 },
    // remount with a large mount table: [dead lxcfs binds, unrelated tmpfs mounts] in one container, each
    // case measured remountRuns times; the cases without unrelated mounts tell what the dead binds cost. 97,900 + 2,000 + the container's own mounts stay below the
    // kernel's default fs.mount-max (100,000 per namespace), with room for the one mount a heal adds
    // before it detaches the dead one.
    remount: !opts['no-remount'] || opts['remount-only'],
    remountCases: (Q
      ? [
          [8, 0],
          [200, 0],
          [8, 5_000],
          [200, 5_000],
        ]
      : [
          [8, 0],
          [2_000, 0],
          [8, 97_900],
          [2_000, 97_900],
        ]
    ).map(([dead, other]) => ({ dead: dead!, other: other! })),
    remountRuns: Q ? 2 : 5,
    mountTimeoutMs: 20000,
    sampleMs: 250,
  };
}

export type Config = ReturnType<typeof makeConfig>;
