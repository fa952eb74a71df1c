#!/usr/bin/env node
// lxcfs-ts benchmark: lxcfs-ts side by side with Debian's lxcfs and the host's own files.
//
//   npm run bench                      (build, then the full run: about 5 minutes, 2 of them the
//                                      loadavg sampler phase)
//   node scripts/bench.mjs --quick     (smoke run: small counts)
//   node scripts/bench.mjs --help
//
// What it does, in order:
//  1. setup: a temp dir with private mountpoints; compiles scripts/bench-client.c with `cc -O2`;
//     starts Debian's lxcfs (`lxcfs [-l] -p <tmp>/lxcfs.pid <tmp>/lxcfs-mnt`, installing it with
//     apt-get if missing) and lxcfs-ts (`bin/lxcfs-ts --pidfile <tmp>/lxcfs-ts.pid
//     --log-level warn [-l] <tmp>/ts-mnt`); waits until <mnt>/proc/uptime is readable, probing
//     from child processes with timeouts only (a hung FUSE mount hangs whoever touches it);
//     creates uniquely named cgroups (memory 256 MiB beneath our own memory cgroup; cpu quota
//     150000/100000, cpuset 0-1 and cpuacct as children of the root). Every client process
//     prints "ready", is moved into those cgroups by this script, and only then gets "go".
//  1b. warm-up: 3000 untimed reads of every file of both daemons (V8 compiles the request path over the
//     first few thousand requests; the comparison is of daemons in their steady state).
//  2. latency: per file, open + read to EOF + close, N iterations each for lxcfs-ts, lxcfs and
//     the host file, in one client that interleaves small chunks of every path round-robin
//     (the starting path rotates each round) so machine drift hits all targets alike.
//     Median and p99 per file and target; ratio lxcfs-ts/lxcfs per file and overall (median of
//     the per-file ratios).
//  3. idle: daemon CPU over an idle window (includes lxcfs's loadavg sampler pass with -l).
//  4. throughput: 1, 4 and 8 concurrent client processes reading one file for a fixed time,
//     split into rounds with the target order rotating; reads/s and the ratio.
//  5. cost: RSS (VmRSS summed over the daemon's process tree) and CPU seconds (utime+stime,
//     plus reaped children) of both daemons, sampled throughout; CPU µs per read served;
//     lxcfs-ts RSS before and after 10^6 reads (4 clients in parallel).
//  5b. loadavg sampler cost: a fresh pair of daemons with -l (private mountpoints); 20 cgroups, each
//     in cpu and cpuacct as container runtimes make them (children of the roots), each holding one
//     python3 process with 50 sleeping threads; each daemon's CPU (sum of /proc/<tid>/schedstat run
//     time over its process tree, ns) after one read of /proc/loadavg from inside every cgroup and a
//     warm-up, over a window with all 20 tracked, then again with new processes in the cpu cgroups only
//     (no CPU counter: lxcfs-ts's worst case), then over an idle window once the processes are gone
//     and both daemons have dropped the empty cgroups; (window - idle) per 5 s = CPU per pass. The phase removes its processes, cgroups and
//     daemons before the report.
//  5c. scale: N simulated containers (default 200), each a long-lived client that is the init of its own
//     pid namespace, in its own memory, cpu, cpuacct and cpuset cgroups (different limits); it reads every
//     file of both daemons in turn on command. One container alone, then all round-robin, the same number
//     of samples each; p50/p99 per file, p99 growth, RSS, and a MemTotal check in three containers.
//  5d. webhook (scripts/bench-webhook.mjs): `lxcfs-ts webhook` on a free port, AdmissionReviews of a
//     3-container pod over kept-alive HTTPS from 1 client, then 8 concurrent client threads; p50/p99
//     per review and reviews per second, the webhook's CPU time per review and its wait for a CPU;
//     then reviews after 6 s idle (kept connection or not) and on a new TLS connection each.
//  5e. metrics cost: a second lxcfs-ts with --metrics on 127.0.0.1 (scraped every second meanwhile, as
//     Prometheus would, only faster); the latency client interleaves it with the first (metrics off) on
//     meminfo, uptime and stat; p50/p99 per file with metrics on / off.
//  5f. noisy neighbour: two containers (own pid namespace and memory, cpu, cpuacct, cpuset cgroups
//     each); per daemon, a quiet one's open + read + close latency of meminfo alone, then beside the
//     other's 300 processes reading the same file one byte per read() in a tight loop; p50/p99 and
//     loaded/alone side by side for lxcfs-ts and lxcfs.
//  6. prints the tables, writes raw JSON (--json PATH, default a temp file) and an SVG chart
//     of per-file latency next to it.
//  Cleanup (finally, SIGINT, SIGTERM): kills our clients, removes our cgroups, stops the two
//  daemons by the pids we started, `umount -l` our own mountpoints if still mounted, removes
//  the temp dir.
//
// Only node built-ins; the client is plain C compiled at run time (never committed).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchWebhook, formatWebhook } from './bench-webhook.mjs';

/** The daemon's list of served files; the bench is run after `npm run build` (as `npm run bench` does). */
async function servedFiles() {
  try {
    return (await import('../dist/lxcfs/paths.js')).SERVED_FILES;
  } catch (err) {
    console.error(`bench: cannot load the list of served files from dist/lxcfs/paths.js (${err.message}): run \`npm run build\` first, or \`npm run bench\``);
    process.exit(2);
  }
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CLI = path.join(ROOT, 'bin', 'lxcfs-ts');
const CLIENT_SRC = path.join(HERE, 'bench-client.c');

// ---------------------------------------------------------------------------------------------
// options

const USAGE = `usage: node scripts/bench.mjs [options]
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
  --no-neighbour     skip the noisy-neighbour phase
  --no-webhook       skip the webhook phase (scripts/bench-webhook.mjs: AdmissionReviews with 1 and 8 clients)
  --no-psi           skip the PSI trigger phase (lxcfs-ts --enable-psi-poll with 100 armed, idle triggers)
  --psi-only         run only the PSI trigger phase (~40 s, quick ~20 s)
  --cfs              start both daemons with --enable-cfs
  --no-samples       leave the per-iteration samples out of the JSON
  -h, --help         this text`;

let opts;
try {
  opts = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      containers: { type: 'string' },
      'no-scale': { type: 'boolean', default: false },
      'no-metrics-cost': { type: 'boolean', default: false },
      'no-neighbour': { type: 'boolean', default: false },
      'no-webhook': { type: 'boolean', default: false },
      'no-psi': { type: 'boolean', default: false },
      'psi-only': { type: 'boolean', default: false },
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
  }).values;
} catch (e) {
  console.error(`bench: ${e.message}\n${USAGE}`);
  process.exit(2);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}

function num(v, dflt, what) {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`bench: bad --${what}: ${v}`);
    process.exit(2);
  }
  return n;
}

const Q = opts.quick;
const CFG = {
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
  // scale: simulated containers (own pid namespace and cgroups each), every file in turn
  scale: !opts['no-scale'],
  scaleContainers: Math.round(num(opts.containers, Q ? 20 : 200, 'containers')),
  scaleRounds: Q ? 3 : 10, // turns of every container; the single-container run makes as many turns
  // noisy neighbour: a quiet container's latency alone and beside a container of NOISE_PROCS processes
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
  // loadavg sampler cost (issue 5): per-pass CPU of each daemon's -l sampler on N cgroups x M threads
  samplerCost: !opts['no-sampler-cost'],
  samplerCgroups: 20,
  samplerThreads: 50,
  // seconds: warm-up after registering (the first passes open what they keep, and V8 compiles the
  // sampler over about 6 passes), each measured window (5 passes), warm-up after replacing the threads,
  // settling after the last processes are gone, idle baseline (last: both daemons warm)
  samplerTimes: Q ? { settle: 10, baseline: 10, warmup: 10, window: 10, rewarm: 8 } : { settle: 10, baseline: 10, warmup: 35, window: 25, rewarm: 30 },
  cfs: opts.cfs,
  metricsCost: !opts['no-metrics-cost'],
  metricsFiles: ['meminfo', 'uptime', 'stat'],
  webhook: !opts['no-webhook'],
  webhookReviews: Q ? 400 : 8000,
  // PSI triggers: the daemon's CPU (main and serving process) with PSI_TRIGGERS armed triggers that never
  // fire, spread over PSI_CONTAINERS containers (a container may arm 32), each its own cgroup2 cgroup so
  // that every container's file is sampled on its own: every 100 ms with 1 s windows
  psi: !opts['no-psi'] || opts['psi-only'],
  psiContainers: 5,
  psiTriggers: 100,
  psiTimes: Q ? { warmup: 3, window: 8 } : { warmup: 5, window: 20 },
  mountTimeoutMs: 20000,
  sampleMs: 250,
};

// The served files, from the daemon's own table (src/lxcfs/paths.ts, built into dist/), keyed by their
// base name. Not measured: slabinfo (a header on both daemons unless a v1 cgroup has kmem slabinfo) and
// pressure/* (Debian's lxcfs 5.0.3 passes them through from the host).
const UNMEASURED = new Set(['proc/slabinfo', 'proc/pressure/cpu', 'proc/pressure/io', 'proc/pressure/memory']);
const FILES = (await servedFiles()).filter((file) => !UNMEASURED.has(file)).map((file) => [path.basename(file), file]);
// The protocol's own cost: a file both daemons pass through from the host with no view (one host read),
// measured with the others but kept out of the ratios.
const FLOOR_FILE = ['floor', 'sys/devices/system/cpu/kernel_max'];
const FILE_PATH = Object.fromEntries([...FILES, FLOOR_FILE]);

const ALL_TARGETS = {
  ts: { id: 'ts', label: 'lxcfs-ts', root: null },
  lxcfs: { id: 'lxcfs', label: 'lxcfs', root: null },
  host: { id: 'host', label: 'host', root: '/' },
};
const targetIds = opts.targets.split(',').map((s) => s.trim()).filter(Boolean);
for (const t of targetIds) {
  if (!ALL_TARGETS[t]) {
    console.error(`bench: unknown target ${t} (expected ts, lxcfs, host)`);
    process.exit(2);
  }
}
const TARGETS = ['ts', 'lxcfs', 'host'].filter((t) => targetIds.includes(t)).map((t) => ALL_TARGETS[t]);
const has = (id) => TARGETS.some((t) => t.id === id);

// ---------------------------------------------------------------------------------------------
// small helpers

class SetupError extends Error {}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (msg) => process.stderr.write(`bench: ${msg}\n`);
const t0 = Date.now();
const elapsed = () => ((Date.now() - t0) / 1000).toFixed(1);
const step = (msg) => log(`[${elapsed()}s] ${msg}`);

function which(cmd) {
  for (const dir of (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {}
  }
  return null;
}

function readText(p) {
  try {
    return fs.readFileSync(p, 'utf8');
  } catch {
    return null;
  }
}

function lastLines(file, n = 3) {
  const s = readText(file);
  if (!s) return '';
  return s.trim().split('\n').slice(-n).join(' | ').slice(0, 400);
}

function percentile(sorted, q) {
  if (!sorted.length) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

function median(xs) {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// mountinfo: the mount points currently mounted (octal escapes decoded); reading it never
// touches a FUSE mount
function mountedPaths() {
  const s = readText('/proc/self/mountinfo') || '';
  const set = new Set();
  for (const line of s.split('\n')) {
    const f = line.split(' ');
    if (f.length > 4) set.add(f[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
  }
  return set;
}

// run a command in a child, with a hard timeout (SIGKILL); never hangs the bench
function run(cmd, args, { timeoutMs = 10000, input } = {}) {
  return new Promise((resolve) => {
    let out = '';
    let err = '';
    let done = false;
    let child;
    try {
      child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    } catch (e) {
      resolve({ code: -1, out, err: e.message, timedOut: false });
      return;
    }
    const timer = setTimeout(() => {
      if (!done) {
        try {
          child.kill('SIGKILL');
        } catch {}
        done = true;
        resolve({ code: -1, out, err: err || 'timed out', timedOut: true });
      }
    }, timeoutMs);
    child.stdout.on('data', (d) => {
      if (out.length < (4 << 20)) out += d;
      else if (!done) {
        // a file that never reaches EOF (a daemon bug): stop reading it
        try {
          child.kill('SIGKILL');
        } catch {}
        done = true;
        clearTimeout(timer);
        resolve({ code: -1, out, err: `no EOF after ${out.length} bytes`, timedOut: false, overflow: true });
      }
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code: -1, out, err: e.message, timedOut: false });
    });
    child.on('close', (code, sig) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : -1), out, err, timedOut: false });
    });
    if (input !== undefined) child.stdin.end(input);
  });
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // a zombie is not alive for our purposes
  const st = readText(`/proc/${pid}/stat`);
  if (!st) return false;
  return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
}

// ---------------------------------------------------------------------------------------------
// state and cleanup

const state = {
  tmp: null,
  daemons: [], // { id, label, pid, child, mnt, log, exited }
  cgroupDirs: [], // created dirs, removed in reverse order
  clients: new Set(), // live client ChildProcess objects
  sampler: null,
  cleaning: null,
};

// rmdir retried for a while: a cgroup stays busy for a moment after its last task exits.
async function removeCgroupDir(dir) {
  for (let i = 0; i < 20; i++) {
    try {
      fs.rmdirSync(dir);
      return;
    } catch (e) {
      if (e.code === 'ENOENT') return;
      if (i === 19) log(`warning: could not remove cgroup ${dir}: ${e.code}`);
      else await sleep(100);
    }
  }
}

async function cleanup() {
  if (state.cleaning) return state.cleaning;
  state.cleaning = (async () => {
    if (state.sampler) clearInterval(state.sampler);
    // 1. our clients
    for (const c of state.clients) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {}
    }
    for (let i = 0; i < 40 && [...state.clients].some((c) => pidAlive(c.pid)); i++) await sleep(50);
    // 2. our cgroups (only the dirs we created; empty once the clients are gone)
    for (const dir of [...state.cgroupDirs].reverse()) await removeCgroupDir(dir);
    state.cgroupDirs = [];
    // 3. the daemons we started, by pid
    await Promise.all(state.daemons.map(stopDaemon));
    // 4. leftover mounts of our own mountpoints
    if (state.tmp) {
      let mounted = mountedPaths();
      for (const d of state.daemons) {
        if (mounted.has(d.mnt)) {
          log(`${d.label} left ${d.mnt} mounted: umount -l`);
          await run('umount', ['-l', d.mnt], { timeoutMs: 5000 });
        }
      }
      mounted = mountedPaths();
      const still = [...mounted].filter((m) => m === state.tmp || m.startsWith(state.tmp + '/'));
      if (still.length) log(`warning: still mounted, leaving ${state.tmp} in place: ${still.join(' ')}`);
      else {
        try {
          fs.rmSync(state.tmp, { recursive: true, force: true });
        } catch (e) {
          log(`warning: could not remove ${state.tmp}: ${e.message}`);
        }
      }
    }
  })();
  return state.cleaning;
}

async function stopDaemon(d) {
  if (!d.pid) return;
  if (!d.exited && pidAlive(d.pid)) {
    try {
      process.kill(d.pid, 'SIGTERM');
    } catch {}
    // lxcfs -l needs up to ~5 s: its loadavg thread sleeps between passes and is joined on exit
    for (let i = 0; i < 160 && !d.exited && pidAlive(d.pid); i++) {
      // a FUSE loop blocked in read(/dev/fuse) may only notice the signal on the next request:
      // after 1 s, send one from a child process (with a timeout; never from this process)
      if (i === 20 && mountedPaths().has(d.mnt)) run('cat', [path.join(d.mnt, 'proc', 'uptime')], { timeoutMs: 1000 });
      await sleep(50);
    }
    if (!d.exited && pidAlive(d.pid)) {
      log(`${d.label} (pid ${d.pid}) still running 8 s after SIGTERM: SIGKILL`);
      try {
        process.kill(d.pid, 'SIGKILL');
      } catch {}
      for (let i = 0; i < 40 && !d.exited && pidAlive(d.pid); i++) await sleep(50);
    }
  }
}

let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    log(`${sig}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------
// setup

function compileClient() {
  const cc = which('cc') || which('gcc') || which('clang');
  if (!cc) throw new SetupError('no C compiler (cc) found; install build-essential');
  const bin = path.join(state.tmp, 'bench-client');
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', bin, CLIENT_SRC], { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new SetupError(`cc -O2 ${CLIENT_SRC} failed: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`);
  return bin;
}

function ensureLxcfs() {
  let bin = which('lxcfs');
  if (bin) return bin;
  step('lxcfs not installed: apt-get install -y lxcfs');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const apt = (args) =>
    spawnSync('apt-get', ['-o', 'DPkg::Lock::Timeout=180', ...args], { stdio: ['ignore', 2, 2], env, timeout: 240000 });
  let r = apt(['install', '-y', 'lxcfs']);
  if (r.status !== 0) {
    apt(['update']);
    r = apt(['install', '-y', 'lxcfs']);
  }
  bin = which('lxcfs');
  if (!bin) throw new SetupError('lxcfs is not installed and `apt-get install -y lxcfs` failed');
  return bin;
}

async function versionOf(cmd, args) {
  const r = await run(cmd, args, { timeoutMs: 5000 });
  return (r.out + r.err).trim().split('\n').pop()?.replace(/"/g, '').slice(0, 80) || null;
}

async function startDaemon({ id, label, cmd, args, mnt }) {
  fs.mkdirSync(mnt, { recursive: true });
  const logFile = path.join(state.tmp, `${id}.log`);
  const fd = fs.openSync(logFile, 'a');
  const d = { id, label, pid: null, child: null, mnt, log: logFile, exited: false, exitInfo: null, cmdline: [cmd, ...args].join(' ') };
  state.daemons.push(d);
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], detached: true, cwd: ROOT });
  fs.closeSync(fd);
  d.child = child;
  d.pid = child.pid ?? null;
  let spawnErr = null;
  child.on('error', (e) => (spawnErr = e));
  child.on('exit', (code, sig) => {
    d.exited = true;
    d.exitInfo = sig ? `signal ${sig}` : `code ${code}`;
  });
  const probeFile = path.join(mnt, 'proc', 'uptime');
  const deadline = Date.now() + CFG.mountTimeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (spawnErr) throw new SetupError(`cannot start ${label}: ${spawnErr.message}`);
    if (d.exited) throw new SetupError(`${label} exited (${d.exitInfo}) before its mount was up: ${lastLines(logFile) || 'no output'}`);
    // only probe once the kernel lists the mount; the probe runs in a child with a timeout
    if (mountedPaths().has(mnt)) {
      const r = await run('cat', [probeFile], { timeoutMs: 2000 });
      if (r.code === 0 && r.out.trim()) return d;
      last = r.overflow || (r.timedOut && r.out.length)
        ? `reading it did not reach EOF (${r.out.length} bytes so far)`
        : r.timedOut ? 'probe timed out after 2 s' : r.err.trim();
    }
    await sleep(100);
  }
  throw new SetupError(`${label} did not serve ${probeFile} within ${CFG.mountTimeoutMs / 1000} s (${last || 'not mounted'}): ${lastLines(logFile)}`);
}

// --- cgroups (v1 hierarchies)

function cgroupV1Mounts() {
  const s = readText('/proc/self/mountinfo') || '';
  const byCtrl = {};
  for (const line of s.split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const [fstype, , superOpts] = post.split(' ');
    if (fstype !== 'cgroup') continue;
    const mnt = pre.split(' ')[4];
    for (const o of (superOpts || '').split(',')) byCtrl[o] ??= mnt;
  }
  return byCtrl;
}

function ownCgroupPath(ctrl) {
  for (const line of (readText('/proc/self/cgroup') || '').split('\n')) {
    const m = line.match(/^\d+:([^:]*):(.*)$/);
    if (m && m[1].split(',').includes(ctrl)) return m[2];
  }
  return '/';
}

function expandCpus(list) {
  const out = new Set();
  for (const part of list.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number);
    for (let i = a; i <= (b ?? a); i++) out.add(i);
  }
  return out;
}

// One container's cgroups, `name` in memory (beneath our own), cpu, cpuacct and cpuset (children of the
// roots), with a memory limit, a CFS quota, and the cpuset `pickCpus` chooses from its parent's CPUs.
function createCgroups(name, { memLimit, cpuQuota, cpuPeriod, pickCpus }) {
  const mounts = cgroupV1Mounts();
  const dirs = new Map(); // mount dir -> created dir (co-mounted controllers share one)
  const info = { name, dirs: {} };
  for (const ctrl of ['memory', 'cpu', 'cpuacct', 'cpuset']) {
    const m = mounts[ctrl];
    if (!m) throw new SetupError(`no cgroup v1 hierarchy for ${ctrl} (this bench needs cgroup v1 or hybrid)`);
    if (!dirs.has(m)) {
      // memory: beneath our own cgroup (the root is not ours); the others: children of the root
      const base = ctrl === 'memory' ? ownCgroupPath('memory') : '/';
      const dir = path.join(m, base, name);
      try {
        fs.mkdirSync(dir);
      } catch (e) {
        throw new SetupError(`cannot create cgroup ${dir}: ${e.code}`);
      }
      state.cgroupDirs.push(dir);
      dirs.set(m, dir);
    }
    const dir = dirs.get(m);
    info.dirs[ctrl] = dir;
    const w = (file, val) => {
      try {
        fs.writeFileSync(path.join(dir, file), String(val));
      } catch (e) {
        throw new SetupError(`cannot write ${val} to ${path.join(dir, file)}: ${e.code}`);
      }
    };
    if (ctrl === 'memory') w('memory.limit_in_bytes', memLimit);
    if (ctrl === 'cpu') {
      w('cpu.cfs_period_us', cpuPeriod);
      w('cpu.cfs_quota_us', cpuQuota);
    }
    if (ctrl === 'cpuset') {
      const parent = path.dirname(dir);
      const want = pickCpus((readText(path.join(parent, 'cpuset.cpus')) || '').trim());
      w('cpuset.cpus', want);
      w('cpuset.mems', (readText(path.join(parent, 'cpuset.mems')) || '0').trim());
      info.cpus = want;
    }
  }
  info.unique = [...dirs.values()];
  return info;
}

function moveIntoCgroups(cg, pid) {
  for (const dir of cg.unique) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid));
  const own = readText(`/proc/${pid}/cgroup`) || '';
  if (!own.includes(cg.name)) throw new Error(`client ${pid} did not land in cgroup ${cg.name}`);
}

// ---------------------------------------------------------------------------------------------
// clients

// Start every client, wait for all "ready" lines, move each into the cgroups, then "go" to all.
// Resolves with the stdout of each; rejects on any failure or the timeout.
async function runClients(bin, cg, argLists, timeoutMs) {
  const clients = argLists.map((args) => {
    const child = spawn(bin, args.map(String), { stdio: ['pipe', 'pipe', 'pipe'] });
    state.clients.add(child);
    const c = { child, out: '', err: '', ready: null, exit: null };
    c.ready = new Promise((res, rej) => {
      child.stdout.on('data', (d) => {
        c.out += d;
        if (c.out.startsWith('ready\n')) res();
      });
      child.on('error', rej);
      child.on('exit', () => rej(new Error(`client exited before ready: ${c.err.trim()}`)));
    });
    c.ready.catch(() => {}); // observed through Promise.all below; avoid unhandled rejections
    child.stderr.on('data', (d) => (c.err += d));
    child.stdin.on('error', () => {});
    c.exit = new Promise((res) => child.on('close', (code, sig) => res({ code, sig })));
    c.exit.then(() => state.clients.delete(child));
    return c;
  });
  let timer;
  const timeout = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`clients timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.all(clients.map((c) => c.ready)), timeout]);
    for (const c of clients) moveIntoCgroups(cg, c.child.pid);
    for (const c of clients) c.child.stdin.end('go\n');
    const results = await Promise.race([Promise.all(clients.map((c) => c.exit)), timeout]);
    results.forEach((r, i) => {
      if (r.code !== 0) {
        const c = clients[i];
        throw new Error(`client (${argLists[i].join(' ')}) failed: ${c.err.trim() || (r.sig ? `signal ${r.sig}` : `exit ${r.code}`)}`);
      }
    });
    return clients.map((c) => c.out.slice('ready\n'.length));
  } finally {
    clearTimeout(timer);
    for (const c of clients) {
      if (state.clients.has(c.child)) {
        try {
          process.kill(c.child.pid, 'SIGKILL');
        } catch {}
      }
    }
    await Promise.all(clients.map((c) => c.exit));
  }
}

// ---------------------------------------------------------------------------------------------
// daemon cost sampling

let CLK_TCK = 100;

function procTable() {
  const rows = new Map(); // pid -> ppid
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const st = readText(`/proc/${e}/stat`);
    if (!st) continue;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    rows.set(Number(e), Number(f[1]));
  }
  return rows;
}

function treeOf(pid, table) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) for (const [p, pp] of table) if (pp === out[i]) out.push(p);
  return out;
}

// RSS in bytes (VmRSS summed over the process tree) and CPU seconds (utime+stime+cutime+cstime)
function sampleDaemon(d, table) {
  if (!d.pid || d.exited) return null;
  let rss = 0;
  let ticks = 0;
  let n = 0;
  for (const p of treeOf(d.pid, table)) {
    const status = readText(`/proc/${p}/status`);
    const st = readText(`/proc/${p}/stat`);
    if (!status || !st) continue;
    const m = status.match(/^VmRSS:\s+(\d+)\s+kB/m);
    if (m) rss += Number(m[1]) * 1024;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    n++;
  }
  return n ? { rss, cpu: ticks / CLK_TCK, procs: n } : null;
}

// PSS and private memory (smaps_rollup) summed over the process tree, taken once at the end, not in the
// 250 ms series: smaps_rollup walks every mapping under the daemon's mmap lock. RSS counts the pages of
// the node binary once per process that maps them; PSS shares them out, private counts only one's own.
function memoryOfTree(d) {
  if (!d.pid || d.exited) return null;
  let pss = 0;
  let priv = 0;
  for (const p of treeOf(d.pid, procTable())) {
    const text = readText(`/proc/${p}/smaps_rollup`) || '';
    const kb = (key) => Number(text.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))?.[1] || 0) * 1024;
    pss += kb('Pss');
    priv += kb('Private_Clean') + kb('Private_Dirty');
  }
  return { pss, private: priv };
}

const series = {}; // id -> [{t, rss, cpu}]
function sampleAll() {
  const table = procTable();
  const out = {};
  for (const d of state.daemons) {
    const s = sampleDaemon(d, table);
    if (!s) continue;
    out[d.id] = s;
    (series[d.id] ??= []).push({ t: +((Date.now() - t0) / 1000).toFixed(2), rss: s.rss, cpu: s.cpu });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// phases

function pathOf(target, file) {
  return path.join(target.root, FILE_PATH[file]);
}

// What a client inside the cgroup sees: a sanity check that both daemons virtualize alike.
async function viewsFromCgroup(bin, cg, usable) {
  const views = {};
  for (const t of TARGETS) {
    const files = ['meminfo', 'cpuinfo', 'online', 'swaps'].filter((f) => usable[t.id][f] === true);
    if (!files.length) continue;
    const [out] = await runClients(bin, cg, [['dump', ...files.map((f) => pathOf(t, f))]], 20000);
    const content = {};
    const parts = out.split(/^== (\d+) \d+\n/m);
    for (let i = 1; i < parts.length; i += 2) content[files[Number(parts[i])]] = parts[i + 1];
    const kb = (k) => content.meminfo?.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1];
    views[t.id] = {
      MemTotal_kB: kb('MemTotal') ? Number(kb('MemTotal')) : null,
      MemAvailable_kB: kb('MemAvailable') ? Number(kb('MemAvailable')) : null,
      SwapTotal_kB: kb('SwapTotal') ? Number(kb('SwapTotal')) : null,
      cpuinfo_processors: content.cpuinfo !== undefined ? (content.cpuinfo.match(/^processor\s*:/gm) || []).length : null,
      online: content.online?.trim() ?? null,
      swaps_lines: content.swaps !== undefined ? content.swaps.trim().split('\n').length : null,
    };
  }
  return views;
}

async function phaseWarmup(bin, cg, usable) {
  const paths = [];
  for (const [file] of [...FILES, FLOOR_FILE]) for (const t of TARGETS) if (t.id !== 'host' && usable[t.id][file] === true) paths.push(pathOf(t, file));
  // the latency client's interleaving, output discarded
  if (paths.length) await runClients(bin, cg, [['lat', CFG.warmupReads, 25, 0, ...paths]], 600000);
}

async function phaseLatency(bin, cg, usable) {
  const cols = []; // [file, target]
  for (const [file] of [...FILES, FLOOR_FILE]) for (const t of TARGETS) if (usable[t.id][file] === true) cols.push([file, t]);
  const args = ['lat', CFG.latIters, CFG.latChunk, CFG.latWarmup, ...cols.map(([f, t]) => pathOf(t, f))];
  const [out] = await runClients(bin, cg, [args], 240000 + CFG.latIters * cols.length * 2);
  const res = {};
  for (const line of out.split('\n')) {
    const f = line.split(' ');
    if (f[0] !== 'bytes' && f[0] !== 'lat') continue;
    const [file, t] = cols[Number(f[1])];
    const r = ((res[file] ??= {})[t.id] ??= {});
    if (f[0] === 'bytes') r.bytes = Number(f[2]);
    else r.samples = f.slice(2).map(Number);
  }
  const table = {};
  for (const [file] of [...FILES, FLOOR_FILE]) {
    const row = (table[file] = {});
    for (const t of TARGETS) {
      const r = res[file]?.[t.id];
      if (!r?.samples) {
        row[t.id] = { error: usable[t.id][file] === true ? 'no output' : usable[t.id][file] };
        continue;
      }
      const sorted = [...r.samples].sort((a, b) => a - b);
      row[t.id] = {
        n: sorted.length,
        bytes: r.bytes,
        p50_us: percentile(sorted, 0.5) / 1000,
        p90_us: percentile(sorted, 0.9) / 1000,
        p99_us: percentile(sorted, 0.99) / 1000,
        min_us: sorted[0] / 1000,
        mean_us: sorted.reduce((a, b) => a + b, 0) / sorted.length / 1000,
        samples_ns: opts['no-samples'] ? undefined : r.samples,
      };
    }
    if (row.ts?.p50_us && row.lxcfs?.p50_us) {
      row.ratio_p50 = row.ts.p50_us / row.lxcfs.p50_us;
      row.ratio_p99 = row.ts.p99_us / row.lxcfs.p99_us;
    }
  }
  const overall = {
    ratio_p50: median(FILES.map(([f]) => table[f].ratio_p50)),
    ratio_p99: median(FILES.map(([f]) => table[f].ratio_p99)),
  };
  return { iters: CFG.latIters, chunk: CFG.latChunk, warmup: CFG.latWarmup, files: table, overall };
}

async function phaseThroughput(bin, cg, usable) {
  const rows = [];
  const reads = {}; // target -> total reads served in this phase
  const secs = CFG.tputSeconds / CFG.tputRounds;
  for (const file of CFG.tputFiles) {
    for (const n of CFG.tputReaders) {
      const row = { file, readers: n, rps: {}, rounds: {} };
      const tg = TARGETS.filter((t) => usable[t.id][file] === true);
      for (let r = 0; r < CFG.tputRounds; r++) {
        const order = tg.map((_, i) => tg[(i + r) % tg.length]);
        for (const t of order) {
          const outs = await runClients(bin, cg, Array.from({ length: n }, () => ['tput', secs, pathOf(t, file)]), 30000 + secs * 4000);
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
      for (const t of tg) row.rps[t.id] = row.rounds[t.id].reduce((a, b) => a + b, 0) / row.rounds[t.id].length;
      if (row.rps.ts && row.rps.lxcfs) row.ratio = row.rps.ts / row.rps.lxcfs;
      rows.push(row);
      step(`  ${file} x${n}: ${tg.map((t) => `${t.label} ${Math.round(row.rps[t.id])}/s`).join(', ')}`);
    }
  }
  return { seconds_per_cell: CFG.tputSeconds, rounds: CFG.tputRounds, rows, reads };
}

async function phaseMillion(bin, cg, ts, usable) {
  const files = CFG.millionFiles.filter((f) => usable.ts[f] === true);
  if (!files.length) throw new Error('no lxcfs-ts file usable for the RSS phase');
  const per = Math.ceil(CFG.millionReads / files.length);
  await sleep(300);
  const before = sampleAll()[ts.id];
  const t1 = Date.now();
  // capped in time so a slow build still finishes the bench in minutes (reported if cut short)
  const outs = await runClients(bin, cg, files.map((f) => ['count', per, pathOf(ALL_TARGETS.ts, f), CFG.millionMaxSeconds]), (CFG.millionMaxSeconds + 60) * 1000);
  const secs = (Date.now() - t1) / 1000;
  const after = sampleAll()[ts.id];
  await sleep(1000);
  const settled = sampleAll()[ts.id];
  let total = 0;
  for (const o of outs) total += Number(o.match(/^count (\d+)/m)?.[1] || 0);
  const rssSeries = (series[ts.id] || []).filter((s) => s.t >= (t1 - t0) / 1000 - 0.5);
  return {
    target_reads: per * files.length,
    cut_short: total < per * files.length,
    reads: total,
    clients: files.length,
    files,
    seconds: secs,
    reads_per_s: total / secs,
    rss_before: before?.rss,
    rss_after: after?.rss,
    rss_after_1s: settled?.rss,
    rss_max: Math.max(...rssSeries.map((s) => s.rss), after?.rss || 0),
    cpu_s: after && before ? after.cpu - before.cpu : null,
  };
}

// A long-lived `turns` client in its own pid namespace (it is that namespace's init, as a container's
// init is) and its own cgroups; one command per line, one answer per command.
function startContainer(bin, procsFiles, paths) {
  const child = spawn('unshare', ['--pid', '--fork', '--kill-child', bin, 'turns', ...paths], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_CGROUP_PROCS: procsFiles.join(':') },
  });
  state.clients.add(child);
  let out = Buffer.alloc(0);
  let err = '';
  let waiter = null; // { want: (buf) => consumed length or -1, resolve, reject }
  const poke = () => {
    if (!waiter) return;
    const used = waiter.want(out);
    if (used < 0) return;
    const w = waiter;
    waiter = null;
    const chunk = out.subarray(0, used);
    out = out.subarray(used);
    w.resolve(chunk.toString('utf8'));
  };
  child.stdout.on('data', (d) => {
    out = Buffer.concat([out, d]);
    poke();
  });
  child.stderr.on('data', (d) => (err += d));
  child.stdin.on('error', () => {});
  const exited = new Promise((res) => child.on('close', (code) => res(code)));
  exited.then((code) => {
    state.clients.delete(child);
    waiter?.reject(new Error(`container client exited (${code}): ${err.trim() || 'no message'}`));
    waiter = null;
  });
  const expect = (want) =>
    new Promise((resolve, reject) => {
      waiter = { want, resolve, reject };
      poke();
    });
  const line = (buf) => {
    const nl = buf.indexOf(10);
    return nl < 0 ? -1 : nl + 1;
  };
  // "== P BYTES\n" then BYTES bytes
  const block = (buf) => {
    const nl = buf.indexOf(10);
    if (nl < 0) return -1;
    const bytes = Number(buf.subarray(0, nl).toString().split(' ')[2]);
    return buf.length >= nl + 1 + bytes ? nl + 1 + bytes : -1;
  };
  return {
    child,
    exited,
    ready: () => expect(line),
    turn: async (reversed) => {
      child.stdin.write(`go ${reversed ? 1 : 0}\n`);
      const text = await expect(line);
      if (!text.startsWith('t ')) throw new Error(`container client said ${JSON.stringify(text.slice(0, 80))}`);
      return text.trim().split(' ').slice(1).map(Number);
    },
    dump: async (index) => {
      child.stdin.write(`dump ${index}\n`);
      return (await expect(block)).replace(/^== \d+ \d+\n/, '');
    },
    quit: () => child.stdin.end('quit\n'),
  };
}

// Scale (issue 8): N simulated containers, each its own pid namespace (its client is the namespace's
// init) and its own memory, cpu, cpuacct and cpuset cgroups with different limits. Every container
// reads every file of both daemons in turn (ts/lxcfs interleaved, order reversed every other turn).
// First one container makes N x rounds turns alone, then all N make `rounds` turns each, round-robin;
// both after an untimed warm-up turn of every container. Same number of samples in both runs.
async function phaseScale(bin, usable) {
  const N = CFG.scaleContainers;
  const targets = TARGETS.filter((t) => t.id !== 'host');
  const files = FILES.map(([f]) => f).filter((f) => targets.every((t) => usable[t.id][f] === true));
  const cols = files.flatMap((f) => targets.map((t) => [f, t]));
  const paths = cols.map(([f, t]) => pathOf(t, f));
  const before = { dirs: state.cgroupDirs.length };
  const containers = [];
  try {
    const limits = [];
    for (let i = 0; i < N; i++) {
      limits[i] = (128 + i) * 1048576;
      const cg = createCgroups(`lxcfs-bench-${process.pid}-c${i}`, {
        memLimit: limits[i],
        cpuQuota: 50000 * (1 + (i % 4)),
        cpuPeriod: 100000,
        // one CPU, the other, or all of them in turn
        pickCpus: (parentCpus) => {
          const all = [...expandCpus(parentCpus || '0')];
          return i % 3 === 2 || all.length === 1 ? all.join(',') : String(all[i % 3]);
        },
      });
      const c = startContainer(bin, cg.unique.map((dir) => path.join(dir, 'cgroup.procs')), paths);
      containers.push(c);
      await Promise.race([c.ready(), sleep(10000).then(() => Promise.reject(new Error('a container client did not start within 10 s')))]);
    }
    // Each container sees its own memory limit through both daemons (first, middle, last).
    const memIndex = cols.findIndex(([f]) => f === 'meminfo');
    const checks = [];
    for (const i of [...new Set([0, N >> 1, N - 1])]) {
      for (const [k, [f, t]] of cols.entries()) {
        if (f !== 'meminfo') continue;
        const text = await containers[i].dump(k);
        const kb = Number(text.match(/^MemTotal:\s+(\d+) kB/m)?.[1]);
        checks.push({ container: i, target: t.id, MemTotal_kB: kb, expected_kB: limits[i] / 1024, ok: kb === limits[i] / 1024 });
      }
    }
    if (memIndex < 0) checks.push({ ok: false, note: 'meminfo not served by both daemons' });
    const warm = async () => {
      for (const c of containers) await c.turn(false);
    };
    const collect = () => Object.fromEntries(targets.map((t) => [t.id, Object.fromEntries(files.map((f) => [f, []]))]));
    const record = (into, times) => cols.forEach(([f, t], k) => into[t.id][f].push(times[k]));

    await warm();
    step(`  scale: one container, ${N * CFG.scaleRounds} turns`);
    const single = collect();
    for (let i = 0; i < N * CFG.scaleRounds; i++) record(single, await containers[0].turn(i % 2 === 1));
    await warm();
    step(`  scale: ${N} containers, ${CFG.scaleRounds} turns each, round-robin`);
    const t1 = (Date.now() - t0) / 1000;
    const many = collect();
    for (let r = 0; r < CFG.scaleRounds; r++) for (const c of containers) record(many, await c.turn(r % 2 === 1));
    const t2 = (Date.now() - t0) / 1000;
    const rss = {};
    for (const t of targets) {
      const s = (series[t.id] || []).filter((x) => x.t >= t1 && x.t <= t2 + 0.3);
      rss[t.id] = s.length ? Math.max(...s.map((x) => x.rss)) : null;
    }
    const stats = (xs) => {
      const sorted = [...xs].sort((a, b) => a - b);
      return { n: sorted.length, p50_us: percentile(sorted, 0.5) / 1000, p99_us: percentile(sorted, 0.99) / 1000 };
    };
    const table = {};
    for (const f of files) {
      table[f] = {};
      for (const t of targets) {
        const one = stats(single[t.id][f]);
        const all = stats(many[t.id][f]);
        table[f][t.id] = { single: one, many: all, p99_growth: all.p99_us / one.p99_us };
      }
    }
    const overall = Object.fromEntries(targets.map((t) => [t.id, median(files.map((f) => table[f][t.id].p99_growth))]));
    return { containers: N, rounds: CFG.scaleRounds, files: table, overall_p99_growth: overall, rss_max: rss, checks };
  } finally {
    for (const c of containers) {
      c.quit();
      try {
        process.kill(c.child.pid, 'SIGKILL');
      } catch {}
    }
    await Promise.race([Promise.all(containers.map((c) => c.exited)), sleep(5000)]);
    for (const dir of state.cgroupDirs.splice(before.dirs).reverse()) await removeCgroupDir(dir);
  }
}

// Noisy neighbour: two containers, each its own pid namespace and its own memory, cpu, cpuacct and
// cpuset cgroups (as container runtimes make them; the daemons stay where they were started). Per daemon
// in turn: the quiet container measures open + read + close of meminfo alone, then again while the noisy
// container's NOISE_PROCS processes read the same daemon's meminfo one byte per read() (one request
// each) in a tight loop. p50/p99 of the quiet container, alone and loaded, and loaded/alone.
async function phaseNeighbour(bin) {
  const targets = TARGETS.filter((t) => t.id !== 'host');
  const before = state.cgroupDirs.length;
  const cgroupFor = (role) =>
    createCgroups(`lxcfs-bench-${process.pid}-${role}`, { memLimit: CFG.memLimit, cpuQuota: -1, cpuPeriod: 100000, pickCpus: (all) => all || '0' });
  const procsOf = (cg) => cg.unique.map((dir) => path.join(dir, 'cgroup.procs')).join(':');
  // A client as the init of a new pid namespace, joining the container's cgroups before "ready".
  const inContainer = (cg, args, timeoutMs) => {
    const child = spawn('unshare', ['--pid', '--fork', '--kill-child', bin, ...args.map(String)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, BENCH_CGROUP_PROCS: procsOf(cg) },
    });
    state.clients.add(child);
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdin.on('error', () => {});
    const ready = new Promise((res, rej) => {
      child.stdout.on('data', (d) => {
        out += d;
        if (out.startsWith('ready\n')) res();
      });
      child.on('close', () => rej(new Error(`container client (${args[0]}) exited before ready: ${err.trim()}`)));
    });
    ready.catch(() => {});
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const exited = new Promise((res) => child.on('close', (code) => (state.clients.delete(child), clearTimeout(timer), res(code))));
    return {
      ready,
      go: () => child.stdin.end('go\n'),
      kill: () => child.kill('SIGKILL'),
      result: () => exited.then((code) => {
        if (code !== 0) throw new Error(`container client (${args.join(' ')}) failed: ${err.trim() || `exit ${code}`}`);
        return out.slice('ready\n'.length);
      }),
      exited,
    };
  };
  const quietRun = async (cg, file) => {
    const c = inContainer(cg, ['lat', CFG.neighbourIters, CFG.latChunk, CFG.latWarmup, file], 300000);
    await c.ready;
    c.go();
    const line = (await c.result()).split('\n').find((l) => l.startsWith('lat '));
    if (!line) throw new Error('the quiet container printed no latencies');
    const sorted = line.split(' ').slice(2).map(Number).sort((a, b) => a - b);
    return { n: sorted.length, p50_us: percentile(sorted, 0.5) / 1000, p99_us: percentile(sorted, 0.99) / 1000 };
  };
  try {
    const quiet = cgroupFor('quiet');
    const noisy = cgroupFor('noisy');
    const res = { procs: CFG.noiseProcs, sleep_us: CFG.noiseSleepUs, iters: CFG.neighbourIters, targets: {} };
    for (const t of targets) {
      const file = pathOf(t, 'meminfo');
      step(`  neighbour: ${t.label}, quiet container alone`);
      const alone = await quietRun(quiet, file);
      step(`  neighbour: ${t.label}, beside ${CFG.noiseProcs} noisy processes`);
      const noise = inContainer(noisy, ['noise', CFG.noiseProcs, 600, CFG.noiseSleepUs, file], 700000);
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
      res.targets[t.id] = { alone, loaded, p50_ratio: loaded.p50_us / alone.p50_us, p99_ratio: loaded.p99_us / alone.p99_us };
    }
    return res;
  } finally {
    for (const dir of state.cgroupDirs.splice(before).reverse()) await removeCgroupDir(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// output

const fmtUs = (v) => (Number.isFinite(v) ? (v >= 1000 ? v.toFixed(0) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) : '-');
const fmtX = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : '-');
const fmtMB = (b) => (Number.isFinite(b) ? `${(b / 1048576).toFixed(1)} MB` : '-');
const pad = (s, w) => String(s).padStart(w);
const padR = (s, w) => String(s).padEnd(w);

function printReport(R) {
  const L = [];
  const tg = TARGETS;
  const lat = R.latency;
  L.push('');
  const la = (x) => (x || '').split(' ').slice(0, 3).join(' ');
  L.push(`lxcfs-ts vs lxcfs ${R.meta.lxcfs_version || ''} vs host  (${R.meta.kernel}, ${R.meta.cpus} cpus, node ${R.meta.node}; host load ${la(R.meta.host_loadavg_start)} at start, ${la(R.meta.host_loadavg_end)} at end)`);
  L.push(`clients in cgroup ${R.cgroup.name}: memory ${CFG.memLimit / 1048576} MiB, cpu ${CFG.cpuQuota}/${CFG.cpuPeriod}, cpuset ${R.cgroup.cpus}; daemons: ${R.meta.daemon_flags || 'no flags'}`);
  if (R.views && Object.keys(R.views).length) {
    const v = (id) => R.views[id] || {};
    const fmtMem = (k) => (Number.isFinite(k) ? `${(k / 1024).toFixed(0)} MiB` : '-');
    L.push(
      'seen from the cgroup: ' +
        Object.keys(R.views)
          .map((id) => `${ALL_TARGETS[id].label}: MemTotal ${fmtMem(v(id).MemTotal_kB)}, SwapTotal ${fmtMem(v(id).SwapTotal_kB)}, ${v(id).cpuinfo_processors ?? '-'} cpus in cpuinfo, online ${v(id).online ?? '-'}`)
          .join('; '),
    );
  }
  if (R.views?.ts && R.views?.lxcfs) {
    const diff = ['MemTotal_kB', 'SwapTotal_kB', 'cpuinfo_processors', 'online'].filter((k) => R.views.ts[k] !== R.views.lxcfs[k]);
    if (diff.length)
      L.push(`NOTE: lxcfs-ts and lxcfs show the cgroup different views (${diff.map((k) => `${k} ${R.views.ts[k]} vs ${R.views.lxcfs[k]}`).join(', ')}): the ratios compare unequal work`);
  }
  L.push('');
  L.push(`Latency: open + read to EOF + close, µs (${lat.iters} per file and target, interleaved in chunks of ${lat.chunk})`);
  let h = padR('file', 10);
  for (const t of tg) h += ` | ${pad(t.label + ' p50', 13)} ${pad('p99', 7)}`;
  if (has('ts') && has('lxcfs')) h += ` | ${pad('ts/lxcfs p50', 12)} ${pad('p99', 6)}`;
  h += ` | ${pad('bytes ' + tg.map((t) => t.id).join('/'), 22)}`;
  L.push(h);
  L.push('-'.repeat(h.length));
  for (const [file] of FILES) {
    const row = lat.files[file];
    let s = padR(file, 10);
    for (const t of tg) {
      const c = row[t.id];
      if (c.error) s += ` | ${pad(('ERR ' + c.error).slice(0, 21), 21)}`;
      else s += ` | ${pad(fmtUs(c.p50_us), 13)} ${pad(fmtUs(c.p99_us), 7)}`;
    }
    if (has('ts') && has('lxcfs')) s += ` | ${pad(fmtX(row.ratio_p50), 12)} ${pad(fmtX(row.ratio_p99), 6)}`;
    s += ` | ${pad(tg.map((t) => row[t.id].bytes ?? '-').join('/'), 22)}`;
    L.push(s);
  }
  if (has('ts') && has('lxcfs')) {
    L.push('-'.repeat(h.length));
    let s = padR('overall', 10);
    for (const t of tg) s += ` | ${pad('', 21)}`;
    s += ` | ${pad(fmtX(lat.overall.ratio_p50), 12)} ${pad(fmtX(lat.overall.ratio_p99), 6)}`;
    L.push(s + '   (median of per-file ratios)');
  }
  const floor = lat.files[FLOOR_FILE[0]];
  if (floor) {
    let s = padR('(floor)', 10);
    for (const t of tg) s += floor[t.id]?.p50_us ? ` | ${pad(fmtUs(floor[t.id].p50_us), 13)} ${pad(fmtUs(floor[t.id].p99_us), 7)}` : ` | ${pad('-', 21)}`;
    if (has('ts') && has('lxcfs')) s += ` | ${pad(fmtX(floor.ratio_p50), 12)} ${pad(fmtX(floor.ratio_p99), 6)}`;
    L.push(s + `   ${FLOOR_FILE[1]}: passed through by both, no view (the protocol's round trips + one host read); not in the ratios`);
  }

  if (R.throughput) {
    L.push('');
    L.push(`Throughput: reads/s, N client processes for ${R.throughput.seconds_per_cell} s each (${R.throughput.rounds} rounds, order rotated)`);
    let h2 = `${padR('file', 10)} ${pad('readers', 7)}`;
    for (const t of tg) h2 += ` | ${pad(t.label, 10)}`;
    if (has('ts') && has('lxcfs')) h2 += ` | ${pad('ts/lxcfs', 8)}`;
    L.push(h2);
    L.push('-'.repeat(h2.length));
    for (const r of R.throughput.rows) {
      let s = `${padR(r.file, 10)} ${pad(r.readers, 7)}`;
      for (const t of tg) s += ` | ${pad(r.rps[t.id] ? Math.round(r.rps[t.id]) : '-', 10)}`;
      if (has('ts') && has('lxcfs')) s += ` | ${pad(fmtX(r.ratio), 8)}`;
      L.push(s);
    }
  }

  const daemons = R.cost.daemons;
  if (Object.keys(daemons).length) {
    L.push('');
    L.push('Cost of the daemons (RSS = VmRSS summed over the process tree; CPU = utime+stime)');
    const h3 = `${padR('daemon', 10)} | ${pad('RSS start', 10)} ${pad('RSS max', 10)} ${pad('RSS end', 10)} ${pad('PSS end', 10)} ${pad('private', 10)} | ${pad('CPU s total', 11)} ${pad('latency', 8)} ${pad('tput', 8)} | ${pad('idle ms/s', 9)} | ${pad('CPU µs/read', 11)}`;
    L.push(h3);
    L.push('-'.repeat(h3.length));
    for (const [id, c] of Object.entries(daemons)) {
      L.push(
        `${padR(ALL_TARGETS[id].label, 10)} | ${pad(fmtMB(c.rss_start), 10)} ${pad(fmtMB(c.rss_max), 10)} ${pad(fmtMB(c.rss_end), 10)} ${pad(fmtMB(c.pss_end), 10)} ${pad(fmtMB(c.private_end), 10)} | ` +
          `${pad(c.cpu_total_s?.toFixed(2) ?? '-', 11)} ${pad(c.cpu_latency_s?.toFixed(2) ?? '-', 8)} ${pad(c.cpu_tput_s?.toFixed(2) ?? '-', 8)} | ` +
          `${pad(c.idle_cpu_ms_per_s?.toFixed(2) ?? '-', 9)} | ${pad(c.cpu_us_per_read?.toFixed(1) ?? '-', 11)}`,
      );
    }
    L.push(`  RSS counts the node binary's resident pages (about 40 MB) once per process: lxcfs-ts runs two (supervisor and serving process); PSS shares them out, private is each process's own`);
    L.push(`  idle: ${R.cost.idle_seconds} s window after the latency phase (includes one lxcfs -l loadavg pass); CPU µs/read: daemon CPU during the throughput phase / reads it served`);
  }
  if (R.metrics) {
    const m = R.metrics;
    const per = Object.entries(m.files).map(([file, r]) => `${file} ${r.on_p50_us.toFixed(0)}/${r.off_p50_us.toFixed(0)} µs (${r.ratio_p50.toFixed(2)}x)`);
    L.push(`metrics cost (--metrics on / off, p50): ${per.join(', ')}; overall p50 ${m.overall.ratio_p50.toFixed(2)}x, p99 ${m.overall.ratio_p99.toFixed(2)}x; ${m.scrapes} scrapes meanwhile, ${m.scrape_failures} failed`);
    L.push(`  counting, measured alone: ${m.record_ns.read.toFixed(0)} ns per READ (two clock reads and the counters' stores), ${m.record_ns.other.toFixed(0)} ns per other request; a file read (open, 2 reads, release) adds ${(2 * m.record_ns.read + 2 * m.record_ns.other).toFixed(0)} ns to the (floor) file's p50 of ${R.latency?.files?.floor?.ts?.p50_us?.toFixed(0) ?? '?'} µs`);
  }
  if (R.sampler) {
    const sc = R.sampler;
    L.push('');
    if (sc.skipped) L.push(`loadavg sampler cost: skipped (${sc.skipped})`);
    else {
      const ms = sc.cpu_ms_per_pass;
      L.push(`loadavg sampler (-l): CPU per 5 s pass on ${sc.cgroups} cgroups x ${sc.threads_per_cgroup} threads (${sc.threads} threads; ${sc.times_s.window} s windows minus an idle one)`);
      L.push(`  lxcfs ${ms.lxcfs.toFixed(2)} ms; lxcfs-ts ${ms.ts_runtime_layout.toFixed(2)} ms with cpu + cpuacct cgroups (${(sc.ratio * 100).toFixed(1)} %), ${ms.ts_cpu_only.toFixed(2)} ms with cpu cgroups only (${(sc.ratio_cpu_only * 100).toFixed(1)} %: every thread probed)`);
    }
  }
  if (R.million) {
    const m = R.million;
    L.push('');
    L.push(
      `lxcfs-ts RSS over ${m.reads.toLocaleString('en-US')} reads (${m.clients} clients: ${m.files.join(', ')}; ${m.seconds.toFixed(1)} s, ${Math.round(m.reads_per_s)}/s): ` +
        `${m.cut_short ? `[CUT SHORT after ${CFG.millionMaxSeconds} s, target ${m.target_reads.toLocaleString('en-US')}] ` : ''}before ${fmtMB(m.rss_before)}, after ${fmtMB(m.rss_after)}, 1 s later ${fmtMB(m.rss_after_1s)}, max ${fmtMB(m.rss_max)}, growth ${fmtMB(m.rss_after - m.rss_before)}`,
    );
  }
  if (R.neighbour) {
    const nb = R.neighbour;
    L.push('');
    L.push(`noisy neighbour: quiet container reading meminfo (${nb.iters} reads), alone and beside ${nb.procs} processes of another container reading it one byte per request`);
    L.push(`  ${padR('daemon', 10)} ${pad('alone p50', 10)} ${pad('p99', 9)} | ${pad('loaded p50', 10)} ${pad('p99', 9)} | ${pad('p50 x', 7)} ${pad('p99 x', 7)}  (us)`);
    for (const [id, r] of Object.entries(nb.targets)) {
      L.push(`  ${padR(ALL_TARGETS[id].label, 10)} ${pad(fmtUs(r.alone.p50_us), 10)} ${pad(fmtUs(r.alone.p99_us), 9)} | ${pad(fmtUs(r.loaded.p50_us), 10)} ${pad(fmtUs(r.loaded.p99_us), 9)} | ${pad(fmtX(r.p50_ratio), 7)} ${pad(fmtX(r.p99_ratio), 7)}`);
    }
  }
  if (R.scale) {
    const sc = R.scale;
    L.push('');
    L.push(`Scale: ${sc.containers} simulated containers (own pid namespace and cgroups, MemTotal ${sc.checks.every((c) => c.ok) ? 'checked' : 'WRONG in ' + sc.checks.filter((c) => !c.ok).map((c) => `${c.target}#${c.container}`).join(' ')}), every file in turn; µs`);
    L.push(`  1 container: ${sc.containers * sc.rounds} turns alone; ${sc.containers} containers: ${sc.rounds} turns each, round-robin`);
    let h4 = padR('file', 10);
    for (const id of ['ts', 'lxcfs']) h4 += ` | ${pad(ALL_TARGETS[id].label + ' 1:p50', 15)} ${pad('p99', 6)} ${pad(`${sc.containers}:p50`, 7)} ${pad('p99', 6)} ${pad('growth', 6)}`;
    L.push(h4);
    L.push('-'.repeat(h4.length));
    for (const [f, row] of Object.entries(sc.files)) {
      let line = padR(f, 10);
      for (const id of ['ts', 'lxcfs']) {
        const c = row[id];
        line += ` | ${pad(fmtUs(c.single.p50_us), 15)} ${pad(fmtUs(c.single.p99_us), 6)} ${pad(fmtUs(c.many.p50_us), 7)} ${pad(fmtUs(c.many.p99_us), 6)} ${pad(fmtX(c.p99_growth), 6)}`;
      }
      L.push(line);
    }
    L.push(`  p99 growth (median over files): lxcfs-ts ${fmtX(sc.overall_p99_growth.ts)}, lxcfs ${fmtX(sc.overall_p99_growth.lxcfs)}; RSS max during the ${sc.containers}-container run: lxcfs-ts ${fmtMB(sc.rss_max.ts)}, lxcfs ${fmtMB(sc.rss_max.lxcfs)}`);
  }
  if (R.webhook) {
    L.push('');
    L.push(formatWebhook(R.webhook));
  }
  if (R.targets?.length) {
    L.push('');
    L.push('Targets (issue 8)');
    for (const t of R.targets) L.push(`  ${padR(t.ok ? 'met' : 'MISSED', 6)}  ${padR(t.name, 44)} ${t.value}`);
  }
  L.push('');
  L.push(`raw JSON: ${R.meta.json}`);
  L.push(`chart:    ${R.meta.svg}`);
  L.push(`total:    ${R.meta.seconds.toFixed(0)} s`);
  console.log(L.join('\n'));
}

function evaluateTargets(R) {
  const out = [];
  if (!(has('ts') && has('lxcfs'))) return out;
  const ov = R.latency.overall.ratio_p50;
  out.push({ name: 'median latency <= 0.6x lxcfs overall', ok: ov <= 0.6, value: fmtX(ov) });
  out.push({ name: 'stretch: <= 0.4x overall', ok: ov <= 0.4, value: fmtX(ov) });
  const slow = FILES.filter(([f]) => !(R.latency.files[f].ratio_p50 <= 1)).map(([f]) => f);
  out.push({ name: 'no file slower than lxcfs (p50)', ok: slow.length === 0, value: slow.length ? `slower: ${slow.join(', ')}` : 'none slower' });
  if (R.throughput) {
    const r8 = R.throughput.rows.filter((r) => r.readers === 8);
    const worst = Math.min(...r8.map((r) => r.ratio ?? NaN));
    out.push({ name: '8-reader throughput >= 2x lxcfs', ok: worst >= 2, value: r8.map((r) => `${r.file} ${fmtX(r.ratio)}`).join(', ') });
  }
  if (R.sampler && !R.sampler.skipped) {
    const sc = R.sampler;
    const pct = (ratio) => `${(ratio * 100).toFixed(1)} %`;
    const both = `${pct(sc.ratio)} (cpu+cpuacct), ${pct(sc.ratio_cpu_only)} (cpu only)`;
    out.push({ name: 'loadavg sampler CPU/pass <= 25% of lxcfs (issue 5)', ok: Math.max(sc.ratio, sc.ratio_cpu_only) <= 0.25, value: both });
    out.push({ name: 'stretch: <= 10% of lxcfs (cpu+cpuacct cgroups)', ok: sc.ratio <= 0.1, value: pct(sc.ratio) });
  }
  const c = R.cost.daemons.ts;
  if (c) out.push({ name: 'RSS <= 80 MB', ok: c.rss_max <= 80e6, value: `max ${fmtMB(c.rss_max)}` });
  if (R.scale) {
    const g = R.scale.overall_p99_growth.ts;
    out.push({ name: `scale: ${R.scale.containers} containers p99 <= 2x one container's`, ok: g <= 2 && R.scale.checks.every((x) => x.ok), value: `${fmtX(g)} (median over files)${R.scale.checks.every((x) => x.ok) ? '' : '; WRONG MemTotal seen'}` });
  }
  if (R.neighbour?.targets.ts) {
    const r = R.neighbour.targets.ts;
    out.push({ name: 'noisy neighbour: quiet container p50 <= 3x alone', ok: r.p50_ratio <= 3, value: `${fmtX(r.p50_ratio)} (${fmtUs(r.alone.p50_us)} -> ${fmtUs(r.loaded.p50_us)} us)` });
  }
  if (R.million) {
    const g = R.million.rss_after - R.million.rss_before;
    const n = R.million.reads >= 1e6 ? '10^6' : R.million.reads.toLocaleString('en-US');
    out.push({ name: `RSS flat over ${n} reads (growth < 5 MB)`, ok: g < 5 * 1048576 && R.million.reads >= 1e6, value: `${fmtMB(g)}${R.million.reads < 1e6 ? ' (fewer than 10^6 reads: not judged)' : ''}` });
  }
  return out;
}

function writeSvg(file, R) {
  const tg = TARGETS;
  const colors = { ts: '#1f77b4', lxcfs: '#ff7f0e', host: '#8c8c8c' };
  const rows = FILES.map(([f]) => [f, R.latency.files[f]]);
  // scale to the largest p99, but never past 3x the largest median (quick runs have wild p99s)
  const maxP50 = Math.max(1, ...rows.flatMap(([, r]) => tg.map((t) => r[t.id]?.p50_us || 0)));
  const maxP99 = Math.max(1, ...rows.flatMap(([, r]) => tg.map((t) => r[t.id]?.p99_us || 0)));
  const maxV = Math.min(maxP99, 3 * maxP50) * 1.05;
  const left = 80;
  const plotW = 520;
  const barH = 10;
  const groupH = tg.length * (barH + 2) + 10;
  const top = 46;
  const height = top + rows.length * groupH + 34;
  const width = left + plotW + 170;
  const x = (v) => left + (Math.min(v, maxV) / maxV) * plotW;
  const esc = (s) => String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
  const o = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`);
  o.push(`<rect width="100%" height="100%" fill="white"/>`);
  o.push(`<text x="${left}" y="16" font-size="13" font-weight="bold">open+read+close latency per file: bar median, line to p99 (µs)</text>`);
  tg.forEach((t, i) => {
    const lx = left + i * 110;
    o.push(`<rect x="${lx}" y="26" width="10" height="10" fill="${colors[t.id]}"/><text x="${lx + 14}" y="35">${esc(t.label)}</text>`);
  });
  const raw = maxV / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const tick = [1, 2, 5, 10].map((k) => k * mag).find((k) => k >= raw);
  for (let v = 0; v <= maxV; v += tick) {
    const xx = x(v).toFixed(1);
    o.push(`<line x1="${xx}" y1="${top - 4}" x2="${xx}" y2="${height - 30}" stroke="#eee"/>`);
    o.push(`<text x="${xx}" y="${height - 18}" text-anchor="middle" fill="#555">${+v.toPrecision(6)}</text>`);
  }
  o.push(`<text x="${left + plotW / 2}" y="${height - 4}" text-anchor="middle" fill="#555">µs</text>`);
  rows.forEach(([f, r], gi) => {
    const gy = top + gi * groupH;
    o.push(`<text x="${left - 6}" y="${gy + (tg.length * (barH + 2)) / 2 + 4}" text-anchor="end">${esc(f)}</text>`);
    tg.forEach((t, i) => {
      const c = r[t.id];
      const y = gy + i * (barH + 2);
      if (!c || !Number.isFinite(c.p50_us)) {
        o.push(`<text x="${left + 2}" y="${y + barH - 1}" fill="#c00">${esc(c?.error || 'n/a')}</text>`);
        return;
      }
      o.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(c.p50_us) - left).toFixed(1)}" height="${barH}" fill="${colors[t.id]}"/>`);
      const px = x(c.p99_us);
      o.push(`<line x1="${x(c.p50_us).toFixed(1)}" y1="${y + barH / 2}" x2="${px.toFixed(1)}" y2="${y + barH / 2}" stroke="${colors[t.id]}" stroke-width="1"/>`);
      const label = `${fmtUs(c.p50_us)} (p99 ${fmtUs(c.p99_us)})${t.id === 'ts' && Number.isFinite(r.ratio_p50) ? ` ${fmtX(r.ratio_p50)}` : ''}`;
      o.push(`<text x="${(Math.max(x(c.p50_us), Math.min(px, left + plotW)) + 4).toFixed(1)}" y="${y + barH - 1}" fill="#333">${esc(label)}</text>`);
    });
  });
  o.push('</svg>');
  fs.writeFileSync(file, o.join('\n') + '\n');
}

// ---------------------------------------------------------------------------------------------
// loadavg sampler cost (issue 5). Self-contained: own daemons, processes and cgroups, all removed at
// the end of the phase (and by cleanup() on an interrupt).

/** Run time (ns) of every thread of the process tree of `pid` (schedstat: precise, unlike ticks). */
function cpuNsOfTree(pid) {
  let ns = 0;
  for (const p of treeOf(pid, procTable())) {
    let tids = [];
    try {
      tids = fs.readdirSync(`/proc/${p}/task`);
    } catch {}
    for (const t of tids) ns += Number((readText(`/proc/${p}/task/${t}/schedstat`) || '0').split(' ')[0]) || 0;
  }
  return ns;
}

async function phaseSamplerCost(lxcfsBin) {
  const N = CFG.samplerCgroups;
  const M = CFG.samplerThreads;
  const T = CFG.samplerTimes;
  const python = which('python3');
  if (!python) return { skipped: 'python3 not found' };
  const mounts = cgroupV1Mounts();
  if (!mounts.cpu || !mounts.cpuacct) return { skipped: 'no cgroup v1 cpu and cpuacct hierarchies' };
  const before = { daemons: state.daemons.length, dirs: state.cgroupDirs.length };
  const procs = [];
  try {
    const daemons = {
      ts: await startDaemon({
        id: 'ts-sampler', label: 'lxcfs-ts (sampler)', cmd: CLI, mnt: path.join(state.tmp, 'ts-sampler-mnt'),
        args: ['--pidfile', path.join(state.tmp, 'ts-sampler.pid'), '--log-level', 'warn', '-l', path.join(state.tmp, 'ts-sampler-mnt')],
      }),
      lxcfs: await startDaemon({
        id: 'lxcfs-sampler', label: 'lxcfs (sampler)', cmd: lxcfsBin, mnt: path.join(state.tmp, 'lxcfs-sampler-mnt'),
        args: ['-l', '-p', path.join(state.tmp, 'lxcfs-sampler.pid'), path.join(state.tmp, 'lxcfs-sampler-mnt')],
      }),
    };
    // cpu and cpuacct cgroups of the same name, as container runtimes make them on v1
    const cgroups = [];
    for (let i = 0; i < N; i++) {
      const name = `lxcfs-bench-${process.pid}-la-${i}`;
      const pair = { cpu: path.join(mounts.cpu, name), cpuacct: path.join(mounts.cpuacct, name) };
      for (const dir of [pair.cpu, pair.cpuacct]) {
        fs.mkdirSync(dir);
        state.cgroupDirs.push(dir);
      }
      cgroups.push(pair);
    }
    const script = `import threading, time\nfor _ in range(${M - 1}): threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()\nprint('ready', flush=True)\ntime.sleep(3600)\n`;
    // one python3 process of M sleeping threads per cgroup, moved (the whole thread group) into `dirs`
    const populate = async (which) => {
      for (const child of procs.splice(0)) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {}
        state.clients.delete(child);
      }
      for (const pair of cgroups) {
        const child = spawn(python, ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
        state.clients.add(child);
        procs.push(child);
        await new Promise((resolve, reject) => {
          child.stdout.once('data', resolve);
          child.once('exit', () => reject(new Error('python3 thread holder exited early')));
        });
        for (const dir of which(pair)) fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(child.pid));
      }
    };
    const cpuNow = () => ({ ts: cpuNsOfTree(daemons.ts.pid), lxcfs: cpuNsOfTree(daemons.lxcfs.pid) });
    const window = async (seconds) => {
      const a = cpuNow();
      await sleep(seconds * 1000);
      const b = cpuNow();
      return { ts: (b.ts - a.ts) / seconds, lxcfs: (b.lxcfs - a.lxcfs) / seconds }; // ns per s
    };
    await populate((pair) => [pair.cpu, pair.cpuacct]);
    const threads = cgroups.reduce((n, pair) => n + (readText(path.join(pair.cpu, 'tasks')) || '').trim().split('\n').length, 0);
    // one read of /proc/loadavg from inside each cgroup registers it with both daemons
    for (const pair of cgroups) {
      const files = [daemons.ts.mnt, daemons.lxcfs.mnt].map((m) => path.join(m, 'proc', 'loadavg')).join(' ');
      const r = await run('sh', ['-c', `echo $$ > ${pair.cpu}/cgroup.procs && exec cat ${files}`], { timeoutMs: 5000 });
      if (r.code !== 0 || r.out.trim().split('\n').length !== 2) throw new Error(`reading loadavg from ${pair.cpu} failed: ${r.err || r.out}`);
    }
    // the first passes open what they keep and the JIT compiles the sampler: steady state after that
    await sleep(T.warmup * 1000);
    step(`  sampler cost: ${T.window} s with ${N} cgroups x ${M} threads tracked (cpu + cpuacct cgroups)`);
    const runtime = await window(T.window);
    // the same threads counts, but the processes only in the cpu cgroups: no CPU time counter for them,
    // so every thread is probed on every pass (the worst case)
    await populate((pair) => [pair.cpu]);
    await sleep(T.rewarm * 1000);
    step(`  sampler cost: ${T.window} s with the threads in cpu cgroups only`);
    const cpuOnly = await window(T.window);
    // The baseline last, when both daemons are warm: once the processes are gone, both drop the empty
    // cgroups at their next pass and track nothing.
    for (const child of procs) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {}
    }
    await sleep(T.settle * 1000);
    step(`  sampler cost: idle baseline ${T.baseline} s (nothing tracked)`);
    const idle = await window(T.baseline);
    const perPass = (w, id) => (Math.max(0, w[id] - idle[id]) * 5) / 1e6; // ms per 5 s pass
    const result = {
      cgroups: N, threads_per_cgroup: M, threads, times_s: T,
      idle_ms_per_s: { ts: idle.ts / 1e6, lxcfs: idle.lxcfs / 1e6 },
      cpu_ms_per_pass: {
        ts_runtime_layout: perPass(runtime, 'ts'),
        ts_cpu_only: perPass(cpuOnly, 'ts'),
        lxcfs: (perPass(runtime, 'lxcfs') + perPass(cpuOnly, 'lxcfs')) / 2,
      },
    };
    result.ratio = result.cpu_ms_per_pass.ts_runtime_layout / result.cpu_ms_per_pass.lxcfs;
    result.ratio_cpu_only = result.cpu_ms_per_pass.ts_cpu_only / result.cpu_ms_per_pass.lxcfs;
    return result;
  } finally {
    for (const child of procs) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {}
    }
    for (let i = 0; i < 40 && procs.some((c) => pidAlive(c.pid)); i++) await sleep(50);
    for (const child of procs) state.clients.delete(child);
    for (const dir of state.cgroupDirs.splice(before.dirs).reverse()) await removeCgroupDir(dir);
    const ours = state.daemons.splice(before.daemons);
    await Promise.all(ours.map(stopDaemon));
  }
}

// What --metrics adds to a request in a reader, measured alone (the latency comparison above is at the
// mercy of the machine's noise): a READ costs two performance.now() calls and RequestRecorder.record(),
// any other request record() only. Best of 5 rounds, ns per request.
async function recordCostNs() {
  const { allocateRequestStats, RequestRecorder } = await import(path.join(ROOT, 'dist/fuse/request-stats.js'));
  const recorder = new RequestRecorder(allocateRequestStats(1), 0);
  const n = 1_000_000;
  const best = (request) => {
    let ns = Infinity;
    for (let round = 0; round < 5; round++) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < n; i++) request();
      ns = Math.min(ns, Number(process.hrtime.bigint() - started) / n);
    }
    return ns;
  };
  const READ = 15;
  const OPEN = 14;
  return {
    read: best(() => {
      const t = performance.now();
      recorder.record(READ, 6, 0, (performance.now() - t) / 1000);
    }),
    other: best(() => recorder.record(OPEN, 6, 0, 0)),
  };
}

// The request path's cost of --metrics: the same build with and without it, read alternately by one
// client (chunks interleaved, as in the latency phase) while the endpoint is scraped every second.
async function phaseMetricsCost(bin, cg) {
  const before = state.daemons.length;
  const port = await new Promise((resolve, reject) => {
    const probe = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
  const mnt = path.join(state.tmp, 'ts-metrics-mnt');
  try {
    const on = await startDaemon({
      id: 'ts-metrics', label: 'lxcfs-ts (--metrics)', cmd: CLI, mnt,
      args: ['--pidfile', path.join(state.tmp, 'ts-metrics.pid'), '--log-level', 'warn', '--metrics', `127.0.0.1:${port}`, ...(CFG.loadavg ? ['-l'] : []), ...(CFG.cfs ? ['--enable-cfs'] : []), mnt],
    });
    const off = ALL_TARGETS.ts;
    const paths = CFG.metricsFiles.flatMap((file) => [pathOf(off, file), path.join(on.mnt, FILE_PATH[file])]);
    await runClients(bin, cg, [['lat', CFG.warmupReads, 25, 0, ...paths]], 600000);
    let scrapes = 0;
    let scrapeFailures = 0;
    const scraper = setInterval(() => {
      fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text().then(() => (r.ok ? scrapes++ : scrapeFailures++)), () => scrapeFailures++);
    }, 1000);
    let out;
    try {
      [out] = await runClients(bin, cg, [['lat', CFG.latIters, CFG.latChunk, CFG.latWarmup, ...paths]], 240000 + CFG.latIters * paths.length * 2);
    } finally {
      clearInterval(scraper);
    }
    const samples = {};
    for (const line of out.split('\n')) {
      const f = line.split(' ');
      if (f[0] === 'lat') samples[Number(f[1])] = f.slice(2).map(Number).sort((a, b) => a - b);
    }
    const files = {};
    CFG.metricsFiles.forEach((file, i) => {
      const [a, b] = [samples[2 * i], samples[2 * i + 1]];
      if (!a?.length || !b?.length) return;
      const row = { off_p50_us: percentile(a, 0.5) / 1000, on_p50_us: percentile(b, 0.5) / 1000, off_p99_us: percentile(a, 0.99) / 1000, on_p99_us: percentile(b, 0.99) / 1000 };
      files[file] = { ...row, ratio_p50: row.on_p50_us / row.off_p50_us, ratio_p99: row.on_p99_us / row.off_p99_us };
    });
    return {
      files,
      overall: { ratio_p50: median(Object.values(files).map((r) => r.ratio_p50)), ratio_p99: median(Object.values(files).map((r) => r.ratio_p99)) },
      scrapes,
      scrape_failures: scrapeFailures,
      record_ns: await recordCostNs(),
    };
  } finally {
    await Promise.all(state.daemons.splice(before).map(stopDaemon));
  }
}

// ---------------------------------------------------------------------------------------------
// main

// PSI trigger cost: a fresh lxcfs-ts --enable-psi-poll; its CPU (% of one CPU, the whole process tree)
// over a window with no trigger, then over one with CFG.psiTriggers armed triggers (`some 1000000 1000000`:
// a whole window of stall, never reached by an idle container) and a poll pending on each.
async function phasePsiCost() {
  const mnt = path.join(state.tmp, 'mnt-psi');
  const d = await startDaemon({ id: 'ts-psi', label: 'lxcfs-ts --enable-psi-poll', cmd: CLI, args: ['--enable-psi-poll', '-p', path.join(state.tmp, 'ts-psi.pid'), mnt], mnt });
  const cpuOver = async (seconds) => {
    const before = sampleDaemon(d, procTable());
    await sleep(seconds * 1000);
    const after = sampleDaemon(d, procTable());
    return ((after.cpu - before.cpu) / seconds) * 100;
  };
  await sleep(CFG.psiTimes.warmup * 1000);
  const idlePct = await cpuOver(CFG.psiTimes.window);
  const perContainer = Math.ceil(CFG.psiTriggers / CFG.psiContainers);
  const poller = `
import os, select, sys
p = select.poll()
for _ in range(int(sys.argv[2])):
    fd = os.open(sys.argv[1], os.O_RDWR)
    os.write(fd, b'some 1000000 1000000')
    p.register(fd, select.POLLPRI)
print('armed', flush=True)
while True:
    for fd, revents in p.poll():
        print('event', fd, revents, flush=True)
`;
  const pollers = [];
  const name = `lxcfs-bench-psi-${process.pid}`;
  for (let i = 0; i < CFG.psiContainers; i++) {
    const dirs = ['cpu', 'unified'].map((h) => path.join('/sys/fs/cgroup', h, `${name}-${i}`));
    for (const dir of dirs) {
      fs.mkdirSync(dir);
      state.cgroupDirs.push(dir);
    }
    const join = dirs.map((dir) => `echo $$ > ${dir}/cgroup.procs`).join(' && ');
    const child = spawn('sh', ['-c', `${join} && exec unshare --pid --fork --kill-child --mount-proc python3 -c "$0" "$1" "$2"`, poller, path.join(mnt, 'proc/pressure/cpu'), String(perContainer)], { stdio: ['ignore', 'pipe', 'pipe'] });
    state.clients.add(child);
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.stderr.on('data', (chunk) => (out += chunk));
    pollers.push({ child, out: () => out });
  }
  const deadline = Date.now() + 20000;
  while (pollers.some((p) => !p.out().includes('armed'))) {
    if (Date.now() > deadline || pollers.some((p) => p.child.exitCode !== null)) throw new Error(`PSI pollers did not arm: ${pollers.map((p) => p.out()).join(' | ')}`);
    await sleep(100);
  }
  await sleep(CFG.psiTimes.warmup * 1000);
  const armedPct = await cpuOver(CFG.psiTimes.window);
  const events = pollers.reduce((n, p) => n + (p.out().match(/^event/gm)?.length ?? 0), 0);
  for (const p of pollers) p.child.kill('SIGKILL');
  return { triggers: perContainer * CFG.psiContainers, containers: CFG.psiContainers, window_s: CFG.psiTimes.window, idle_cpu_pct: idlePct, armed_cpu_pct: armedPct, events };
}

function printPsi(psi) {
  console.log(`PSI triggers: lxcfs-ts --enable-psi-poll, ${psi.triggers} armed idle triggers (1 s windows) in ${psi.containers} containers: ${psi.armed_cpu_pct.toFixed(2)}% of one CPU (${psi.idle_cpu_pct.toFixed(2)}% with none armed), over ${psi.window_s} s; target < 1%: ${psi.armed_cpu_pct < 1 ? 'met' : 'NOT met'}; events (should be 0): ${psi.events}`);
}

async function main() {
  if (process.getuid?.() !== 0) throw new SetupError('must run as root (mounts FUSE filesystems and creates cgroups)');
  if (has('ts') && !fs.existsSync(path.join(ROOT, 'dist', 'cli.js'))) throw new SetupError(`dist/cli.js not found: run \`npm run build\` (or \`npm run bench\`), or pass --targets lxcfs,host`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const jsonPath = path.resolve(opts.json || path.join(os.tmpdir(), `lxcfs-bench-${stamp}.json`));
  const svgPath = jsonPath.replace(/\.json$/i, '') + '.svg';
  fs.mkdirSync(path.dirname(jsonPath), { recursive: true });

  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lxcfs-bench-'));
  CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
  if (opts['psi-only']) {
    step(`PSI triggers only: ${CFG.psiTriggers} armed idle triggers in ${CFG.psiContainers} containers`);
    const psi = await phasePsiCost();
    fs.writeFileSync(jsonPath, JSON.stringify({ psi }) + '\n');
    printPsi(psi);
    return;
  }
  step(`temp dir ${state.tmp}; compiling the client`);
  const bin = compileClient();

  const flags = [...(CFG.loadavg ? ['-l'] : []), ...(CFG.cfs ? ['--enable-cfs'] : [])];
  let lxcfsBin = null;
  if (has('lxcfs')) lxcfsBin = ensureLxcfs();
  const meta = {
    date: new Date().toISOString(),
    kernel: `${os.type()} ${os.release()}`,
    cpus: os.cpus().length,
    node: process.version,
    lxcfs_version: lxcfsBin ? await versionOf(lxcfsBin, ['--version']) : null,
    quick: Q,
    config: CFG,
    daemon_flags: flags.join(' '),
    host_loadavg_start: (readText('/proc/loadavg') || '').trim(),
    json: jsonPath,
    svg: svgPath,
  };

  // both daemons: start in parallel, each on its private mountpoint with its own pid file
  const starts = [];
  if (has('lxcfs')) {
    ALL_TARGETS.lxcfs.root = path.join(state.tmp, 'lxcfs-mnt');
    starts.push(
      startDaemon({ id: 'lxcfs', label: 'lxcfs', cmd: lxcfsBin, args: [...flags, '-p', path.join(state.tmp, 'lxcfs.pid'), ALL_TARGETS.lxcfs.root], mnt: ALL_TARGETS.lxcfs.root }),
    );
  }
  if (has('ts')) {
    ALL_TARGETS.ts.root = path.join(state.tmp, 'ts-mnt');
    starts.push(
      startDaemon({
        id: 'ts',
        label: 'lxcfs-ts',
        cmd: CLI,
        args: ['--pidfile', path.join(state.tmp, 'lxcfs-ts.pid'), '--log-level', 'warn', ...flags, ALL_TARGETS.ts.root],
        mnt: ALL_TARGETS.ts.root,
      }),
    );
  }
  step(`starting ${state.daemons.map((d) => d.label).join(' and ') || 'no daemons'}`);
  const settled = await Promise.allSettled(starts);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  for (const d of state.daemons) step(`  ${d.label} up: pid ${d.pid}, ${d.cmdline}`);

  const cg = createCgroups(`lxcfs-bench-${process.pid}-${Date.now().toString(36)}`, {
    memLimit: CFG.memLimit,
    cpuQuota: CFG.cpuQuota,
    cpuPeriod: CFG.cpuPeriod,
    pickCpus: (parentCpus) => ([...expandCpus(CFG.cpus)].every((c) => expandCpus(parentCpus).has(c)) ? CFG.cpus : parentCpus),
  });
  step(`cgroup ${cg.name}: ${cg.unique.join(' ')}`);

  // which (target, file) pairs are readable at all; a failing pair is reported, not fatal
  const usable = {};
  for (const t of TARGETS) {
    usable[t.id] = {};
    for (const [file] of [...FILES, FLOOR_FILE]) {
      const r = await run('cat', [pathOf(t, file)], { timeoutMs: 5000 });
      usable[t.id][file] =
        r.code === 0 ? true : r.overflow || (r.timedOut && r.out.length) ? 'no EOF' : r.timedOut ? 'timeout' : r.err.trim().split(': ').pop()?.slice(0, 30) || `exit ${r.code}`;
    }
    const bad = FILES.filter(([f]) => usable[t.id][f] !== true).map(([f]) => `${f} (${usable[t.id][f]})`);
    if (bad.length) log(`warning: ${t.label} cannot serve: ${bad.join(', ')}`);
  }

  const R = { meta, cgroup: { name: cg.name, dirs: cg.dirs, cpus: cg.cpus }, cost: { daemons: {} } };
  R.views = await viewsFromCgroup(bin, cg, usable);
  const cpuAt = {};
  state.sampler = setInterval(sampleAll, CFG.sampleMs);
  cpuAt.start = sampleAll();

  step(`warm-up: ${CFG.warmupReads} untimed reads of every file of each daemon`);
  await phaseWarmup(bin, cg, usable);
  step(`latency: ${CFG.latIters} iterations x ${FILES.length} files x ${TARGETS.length} targets`);
  R.latency = await phaseLatency(bin, cg, usable);
  cpuAt.latency = sampleAll();

  step(`idle window ${CFG.idleSeconds} s`);
  await sleep(CFG.idleSeconds * 1000);
  cpuAt.idle = sampleAll();

  step(`throughput: ${CFG.tputFiles.join(', ')} with ${CFG.tputReaders.join('/')} readers, ${CFG.tputSeconds} s each`);
  R.throughput = await phaseThroughput(bin, cg, usable);
  cpuAt.tput = sampleAll();

  if (has('ts')) {
    step(`lxcfs-ts RSS over ${CFG.millionReads} reads`);
    R.million = await phaseMillion(bin, cg, ALL_TARGETS.ts, usable);
  }
  if (CFG.scale && has('ts') && has('lxcfs')) {
    step(`scale: ${CFG.scaleContainers} simulated containers (own pid namespace and cgroups), every file in turn`);
    R.scale = await phaseScale(bin, usable);
  }
  if (CFG.neighbour && has('ts')) {
    step(`noisy neighbour: a quiet container alone and beside ${CFG.noiseProcs} processes of another reading one byte per request`);
    R.neighbour = await phaseNeighbour(bin);
  }
  const end = sampleAll();
  const memory = Object.fromEntries(state.daemons.map((d) => [d.id, memoryOfTree(d)]));

  for (const d of state.daemons) {
    const id = d.id;
    const ser = series[id] || [];
    const c = (k) => cpuAt[k]?.[id]?.cpu;
    R.cost.daemons[id] = {
      pid: d.pid,
      procs: end[id]?.procs,
      rss_start: cpuAt.start[id]?.rss,
      rss_max: Math.max(...ser.map((s) => s.rss)),
      rss_end: end[id]?.rss,
      pss_end: memory[id]?.pss,
      private_end: memory[id]?.private,
      cpu_total_s: end[id]?.cpu,
      cpu_latency_s: c('latency') - c('start'),
      idle_cpu_ms_per_s: ((c('idle') - c('latency')) * 1000) / CFG.idleSeconds,
      cpu_tput_s: c('tput') - c('idle'),
      cpu_us_per_read: ((c('tput') - c('idle')) * 1e6) / (R.throughput.reads[id] || NaN),
      tput_reads: R.throughput.reads[id],
    };
  }
  R.cost.idle_seconds = CFG.idleSeconds;
  if (CFG.samplerCost && CFG.loadavg && has('ts') && has('lxcfs')) {
    step(`loadavg sampler cost: ${CFG.samplerCgroups} cgroups x ${CFG.samplerThreads} threads, fresh daemons with -l`);
    R.sampler = await phaseSamplerCost(lxcfsBin);
  }
  if (CFG.metricsCost && has('ts')) {
    step(`metrics cost: lxcfs-ts with --metrics (scraped every second) next to lxcfs-ts without, ${CFG.metricsFiles.join(', ')}`);
    R.metrics = await phaseMetricsCost(bin, cg);
  }
  if (CFG.psi && has('ts')) {
    step(`PSI triggers: ${CFG.psiTriggers} armed idle triggers in ${CFG.psiContainers} containers`);
    R.psi = await phasePsiCost();
    printPsi(R.psi);
  }
  if (CFG.webhook) {
    step(`webhook: ${CFG.webhookReviews} AdmissionReviews with 1 client, then with 8`);
    R.webhook = await benchWebhook({ reviews: CFG.webhookReviews, idleSamples: Q ? 1 : 3 });
  }
  R.daemon_logs = Object.fromEntries(state.daemons.map((d) => [d.id, (readText(d.log) || '').slice(0, 8192)]));
  R.cost.series = series;
  R.targets = evaluateTargets(R);
  meta.seconds = (Date.now() - t0) / 1000;
  meta.host_loadavg_end = (readText('/proc/loadavg') || '').trim();

  fs.writeFileSync(jsonPath, JSON.stringify(R) + '\n');
  writeSvg(svgPath, R);
  printReport(R);
}

let code = 0;
try {
  await main();
} catch (e) {
  code = 1;
  if (!interrupted) {
    if (!(e instanceof SetupError) && process.env.BENCH_DEBUG) console.error(e);
    const died = state.daemons.filter((d) => d.exited && !(e instanceof SetupError));
    const why = died.map((d) => `; ${d.label} died (${d.exitInfo}): ${lastLines(d.log, 2) || 'no output'}`).join('');
    console.error(`bench: ${e instanceof SetupError ? 'setup failed: ' : ''}${e.message}${why}`);
  }
} finally {
  if (!interrupted) await cleanup();
}
if (!interrupted) process.exit(code);
