// remount with a large mount table: what `lxcfs-ts remount` costs in a container whose mount table is
// nearly full (the kernel's fs.mount-max is 100,000 per namespace by default), next to one with a few
// mounts. Per case, one "big" container holds `dead` binds of our meminfo plus `other` unrelated tmpfs
// mounts, and one small container the usual eight binds of our files; both need healing. Each run
// kills the daemon (kill -9), restarts it, and times `lxcfs-ts remount --pid BIG --pid SMALL` as a
// user runs it (bin/lxcfs-ts): wall time, and the CPU time of it and its helpers. The cost to compare
// with is one read and parse of the big container's mountinfo, timed in a fresh process with the same
// Node flags: remount should cost that, plus work in proportion to the lxcfs mounts, and no more.
// Containers are simulated as the tests do (test/helpers/container.ts: unshare, pivot_root); the
// unrelated mounts are made by one perl process inside calling mount(2) directly (mount(8) per mount
// would take minutes).

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { lxcfsFileBinds, makeSharedDirectory, startContainer } from '../../test/helpers/container.js';
import { type Daemon, killDaemonHard, LXCFS_TS, REPO, startDaemon } from '../../test/helpers/processes.js';
import type { RemountReport } from '../../src/remount/remount.js';
import { type Bench, median, pinnedNode, step, withCleanup } from './shared.js';

/** The eight files a container usually has bound (the small container's, and what it must get back). */
const FILES = [
  'proc/cpuinfo',
  'proc/stat',
  'proc/uptime',
  'proc/loadavg',
  'proc/swaps',
  'proc/diskstats',
  'sys/devices/system/cpu/online',
  'proc/meminfo',
];

/** mount(2)'s number, for perl's syscall(). */
const MOUNT_NR: Partial<Record<string, number>> = { x64: 165, arm64: 40 };

export interface RemountRun {
  wall_ms: number;
  /** User plus system time of remount and every helper it waited for. */
  cpu_ms: number;
}

export interface RemountCase {
  /** Dead lxcfs binds in the big container. */
  dead: number;
  /** Unrelated tmpfs mounts in it. */
  other: number;
  /** Lines of its mountinfo, and its size. */
  table_lines: number;
  table_bytes: number;
  /** Medians of: read the big container's mountinfo once, in a fresh process; read it and parse every line. */
  read_ms: number;
  parse_ms: number;
  runs: RemountRun[];
  wall_ms: number;
  cpu_ms: number;
}

export interface RemountResult {
  cases: RemountCase[];
}

/** Makes `dead` binds of the live meminfo at /srv/t/N and `other` tmpfs mounts at /srv/u/N. */
function makeMountsScript(nr: number, lxcfsInside: string, dead: number, other: number): string {
  return [
    'use strict;',
    `sub mnt { my ($from, $to, $type, $flags, $data) = @_; syscall(${nr}, $from, $to, $type, $flags, $data) == 0 or die "mount $to: $!\\n" }`,
    'mkdir "/srv/t" or die; mkdir "/srv/u" or die;',
    `my $source = "${lxcfsInside}/proc/meminfo";`,
    `for my $i (1 .. ${dead}) { my $t = "/srv/t/$i"; open(my $h, ">", $t) or die; close $h; mnt($source, $t, 0, 4096, 0) }`,
    `for my $i (1 .. ${other}) { my $t = "/srv/u/$i"; mkdir $t or die; mnt("none", $t, "tmpfs", 0, "size=4k,nr_inodes=2") }`,
  ].join('\n');
}

/** Reads the table once, then parses every line of it, in a fresh process (the runtime bin/lxcfs-ts
 * uses, V8's optimizing compiler on): how long each took. */
function readAndParse(table: string): { read: number; parse: number } {
  const code = `const { parseMountInfo } = await import(${JSON.stringify(path.join(REPO, 'dist/fuse/mount.js'))});
const fs = await import('node:fs');
const t0 = performance.now(); const text = fs.readFileSync(${JSON.stringify(table)}, 'utf8');
const t1 = performance.now(); parseMountInfo(text);
console.log(t1 - t0, performance.now() - t1);`;
  const r = spawnSync(pinnedNode(), ['--input-type=module', '-e', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`parsing ${table} failed: ${r.stderr.trim()}`);
  const [read, parse] = r.stdout.trim().split(' ').map(Number);
  return { read: read!, parse: parse! };
}

/** `lxcfs-ts remount ARGS --json`: its wall time, its CPU time (children's times from the shell that
 * waited for it), and its report. Spawned asynchronously: the bench keeps reading the daemon's output
 * meanwhile, as journald would (a daemon blocked on a full stdout pipe would stall remount's probes). */
async function timedRemount(
  args: string[],
): Promise<{ run: RemountRun; report: RemountReport; status: number | null }> {
  const started = performance.now();
  const child = spawn('sh', ['-c', '"$@"; status=$?; times >&2; exit $status', 'sh', LXCFS_TS, 'remount', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [status] = (await once(child, 'close')) as [number | null];
  const wall = performance.now() - started;
  // `times`: the shell's own user and system time, then its children's ("0m1.234000s 0m0.056000s").
  const children = stderr.trim().split('\n').at(-1) ?? '';
  const cpu = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce(
    (ms, [, m, s]) => ms + (Number(m) * 60 + Number(s)) * 1000,
    0,
  );
  if (!stdout) throw new Error(`remount printed no report (status ${status}): ${stderr.trim()}`);
  return { run: { wall_ms: wall, cpu_ms: cpu }, report: JSON.parse(stdout) as RemountReport, status };
}

async function measureCase(bench: Bench, dead: number, other: number): Promise<RemountCase> {
  const { cfg } = bench;
  const nr = MOUNT_NR[process.arch];
  if (nr === undefined) throw new Error(`remount phase: no mount(2) number for ${process.arch}`);
  return withCleanup(bench.cleanup, async (cleanup) => {
    const dir = cleanup.tempDir('lxcfs-bench-remount-');
    const shared = path.join(dir, 'shared');
    makeSharedDirectory(cleanup, shared);
    const mnt = path.join(shared, 'lxcfs');
    const pidFile = path.join(dir, 'pid');
    let daemon: Daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
    const propagated = [{ source: shared, target: '/mnt' }];
    const big = await startContainer(cleanup, {
      propagated,
      inside: ['mount -t tmpfs -o size=64m,nr_inodes=1000000 lxcfs-bench-remount /srv'],
    });
    const made = spawnSync(
      'nsenter',
      ['-t', String(big.pid), '-m', '--', 'perl', '-e', makeMountsScript(nr, '/mnt/lxcfs', dead, other)],
      { encoding: 'utf8', timeout: 600_000 },
    );
    if (made.status !== 0) throw new Error(`making ${dead} + ${other} mounts failed: ${made.stderr.trim()}`);
    const small = await startContainer(cleanup, { binds: lxcfsFileBinds(mnt, FILES), propagated });
    const table = `/proc/${big.pid}/mountinfo`;
    const text = fs.readFileSync(table, 'utf8');
    const parses = Array.from({ length: cfg.remountRuns }, () => readAndParse(table));

    const runs: RemountRun[] = [];
    for (let i = 0; i < cfg.remountRuns; i++) {
      await killDaemonHard(daemon);
      daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
      const { run, report, status } = await timedRemount([
        '--mountpoint',
        mnt,
        '--timeout',
        '300',
        '--json',
        '--pid',
        String(big.pid),
        '--pid',
        String(small.pid),
      ]);
      const outcomes = report.namespaces.map((ns) => `${ns.pid}: ${ns.outcome} ${ns.reason ?? ''}`);
      if (status !== 0 || report.summary.rebound !== dead + FILES.length || report.namespaces.length !== 2)
        throw new Error(
          `remount did not heal both containers (status ${status}, ${report.summary.rebound} of ${dead + FILES.length} re-bound): ${report.error ?? outcomes.join('; ')}`,
        );
      runs.push(run);
    }
    return {
      dead,
      other,
      table_lines: text.split('\n').length - 1,
      table_bytes: Buffer.byteLength(text),
      read_ms: median(parses.map((p) => p.read)),
      parse_ms: median(parses.map((p) => p.read + p.parse)),
      runs,
      wall_ms: median(runs.map((run) => run.wall_ms)),
      cpu_ms: median(runs.map((run) => run.cpu_ms)),
    };
  });
}

export async function phaseRemount(bench: Bench): Promise<RemountResult> {
  const cases: RemountCase[] = [];
  for (const { dead, other } of bench.cfg.remountCases) {
    step(`  remount: ${dead} dead binds + ${other} other mounts in one container, ${bench.cfg.remountRuns} runs`);
    cases.push(await measureCase(bench, dead, other));
  }
  return { cases };
}

export function formatRemount(result: RemountResult): string {
  const L = [
    'remount with a large mount table: one big container (K dead lxcfs binds + U tmpfs mounts) and one small one (8 dead binds), both healed; medians',
    '     K       U   table lines   table MB | one read ms  read+parse ms | remount wall ms   CPU ms | runs (wall ms)',
  ];
  for (const c of result.cases) {
    L.push(
      `${String(c.dead).padStart(6)} ${String(c.other).padStart(7)} ${String(c.table_lines).padStart(13)} ${(c.table_bytes / 1e6).toFixed(1).padStart(10)} | ${c.read_ms.toFixed(0).padStart(11)} ${c.parse_ms.toFixed(0).padStart(14)} | ${c.wall_ms.toFixed(0).padStart(15)} ${c.cpu_ms.toFixed(0).padStart(8)} | ${c.runs.map((run) => run.wall_ms.toFixed(0)).join(' ')}`,
    );
  }
  return L.join('\n');
}
