// The Prometheus endpoint of a real daemon (--metrics): scraped over HTTP while clients read, parsed with
// a Prometheus text-format parser, and its numbers checked against the reads this test made.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import parsePrometheusTextFormat, { type ParsedFamily, type ParsedSample } from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Cleanup,
  firstLine,
  isMounted,
  LXCFS_TS,
  run,
  servingPid,
  startDaemon,
  upgradeDaemon,
  type Daemon,
} from '../helpers/processes.js';
import { listeningPorts } from '../helpers/inspector.js';
import { createCgroup } from '../helpers/cgroups.js';

const cleanup = new Cleanup();
let dir: string;
let mnt: string;
let pidFile: string;
let port: number;
let daemon: Daemon;

async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port: free } = server.address() as net.AddressInfo;
  server.close();
  return free;
}

let lastText = '';

async function scrape(from = port): Promise<ParsedFamily[]> {
  const response = await fetch(`http://127.0.0.1:${from}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  lastText = await response.text();
  return parsePrometheusTextFormat(lastText);
}

/** One labelled series of a histogram, from the last scrape. The parser reads only histograms without
 * labels (it merges every series' buckets into one and drops labelled sums and counts), so it is given
 * the family's lines of that series, without its file label. */
function histogramSeries(name: string, file: string): ParsedSample {
  const label = `file="${file}"`;
  const lines = lastText
    .split('\n')
    .filter(
      (line) =>
        line.startsWith(`# HELP ${name} `) ||
        line.startsWith(`# TYPE ${name} `) ||
        (line.startsWith(`${name}_`) && line.includes(label)),
    )
    .map((line) => line.replace(`{${label}}`, '').replace(`${label},`, ''));
  const parsed = parsePrometheusTextFormat(lines.join('\n') + '\n');
  return parsed[0]?.metrics[0] ?? { count: '0', sum: '0', buckets: {} };
}

function family(families: ParsedFamily[], name: string): ParsedFamily {
  const found = families.find((entry) => entry.name === name);
  expect(found, `no ${name} in the scrape`).toBeDefined();
  return found!;
}

function sample(families: ParsedFamily[], name: string, labels: Record<string, string>): ParsedSample | undefined {
  return family(families, name).metrics.find((entry) =>
    Object.entries(labels).every(([key, value]) => entry.labels?.[key] === value),
  );
}

function value(families: ParsedFamily[], name: string, labels: Record<string, string> = {}): number {
  return Number(sample(families, name, labels)?.value ?? 0);
}

/** Context switches of all of a process's threads so far: one per wake-up of a thread that slept. */
function contextSwitches(pid: number): number {
  let total = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const status = fs.readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8');
    for (const match of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) total += Number(match[1]);
  }
  return total;
}

function requests(families: ParsedFamily[], file: string, op: string, outcome = 'ok'): number {
  return value(families, 'lxcfs_ts_requests_total', { file, op, outcome });
}

/** Reads the file through its own open, reads until EOF and closes: 1 OPEN, 2 READs (the content, then
 * the empty read at the end), 1 RELEASE. */
function readOnce(file: string): string {
  const fd = fs.openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(65536);
    let text = '';
    for (let n; (n = fs.readSync(fd, buffer, 0, buffer.length, null)) > 0;) text += buffer.toString('latin1', 0, n);
    return text;
  } finally {
    fs.closeSync(fd);
  }
}

/** RELEASE reaches the daemon after close() returns: waits until the count arrived. */
async function untilReleases(file: string, expected: number): Promise<ParsedFamily[]> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const families = await scrape();
    if (requests(families, file, 'release') >= expected || Date.now() > deadline) return families;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  dir = cleanup.tempDir('lxcfs-ts-metrics-');
  mnt = path.join(dir, 'mnt');
  pidFile = path.join(dir, 'pid');
  port = await freePort();
  daemon = await startDaemon(cleanup, ['-p', pidFile, '--metrics', `127.0.0.1:${port}`, mnt], mnt);
}, 30_000);

afterAll(() => cleanup.run());

describe('metrics', () => {
  it('counts each request by file, operation and outcome, and times each READ by file', async () => {
    const before = await scrape();
    const was = histogramSeries('lxcfs_ts_read_duration_seconds', 'proc/meminfo');
    const reads = 25;
    for (let i = 0; i < reads; i++) readOnce(path.join(mnt, 'proc/meminfo'));
    for (let i = 0; i < 7; i++) readOnce(path.join(mnt, 'proc/uptime'));
    // Unique names, so that no negative dentry answers in the kernel: each is one LOOKUP in proc.
    for (let i = 0; i < 3; i++) expect(() => fs.statSync(path.join(mnt, `proc/absent-${i}`))).toThrow(/ENOENT/);
    const after = await untilReleases('proc/meminfo', requests(before, 'proc/meminfo', 'release') + reads);
    const now = histogramSeries('lxcfs_ts_read_duration_seconds', 'proc/meminfo');

    const delta = (file: string, op: string, outcome = 'ok'): number =>
      requests(after, file, op, outcome) - requests(before, file, op, outcome);
    expect(delta('proc/meminfo', 'open')).toBe(reads);
    expect(delta('proc/meminfo', 'read')).toBe(2 * reads);
    expect(delta('proc/meminfo', 'release')).toBe(reads);
    expect(delta('proc/uptime', 'open')).toBe(7);
    expect(delta('proc/uptime', 'read')).toBe(14);
    expect(delta('proc', 'lookup', 'ENOENT')).toBe(3);

    expect(Number(now.count) - Number(was.count)).toBe(2 * reads);
    expect(Number(now.buckets!['+Inf'])).toBe(Number(now.count));
    expect(Number(now.sum)).toBeGreaterThan(Number(was.sum));
    // Cumulative buckets never decrease with the bound.
    const counts = Object.entries(now.buckets!)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([, n]) => Number(n));
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(family(after, 'lxcfs_ts_read_duration_seconds').type).toBe('HISTOGRAM');
  });

  it('during a load test: every scrape parses, counters only grow, and end equal to the reads made', async () => {
    const before = await scrape();
    const clients = 4;
    const perClient = 150;
    // Real clients (cat), in parallel, while we scrape.
    const children = Array.from({ length: clients }, () =>
      spawn(
        'sh',
        [
          '-c',
          `i=0; while [ $i -lt ${perClient} ]; do cat ${path.join(mnt, 'proc/stat')} > /dev/null || exit 1; i=$((i+1)); done`,
        ],
        { stdio: 'ignore' },
      ),
    );
    for (const child of children) cleanup.own(child);
    const done = Promise.all(children.map((child) => once(child, 'exit')));
    let finished = false;
    void done.then(() => (finished = true));
    let previous = requests(before, 'proc/stat', 'open');
    let scrapes = 0;
    while (!finished) {
      const opens = requests(await scrape(), 'proc/stat', 'open');
      expect(opens).toBeGreaterThanOrEqual(previous);
      previous = opens;
      scrapes++;
    }
    for (const [code] of await done) expect(code).toBe(0);
    expect(scrapes).toBeGreaterThan(1);
    const after = await untilReleases('proc/stat', requests(before, 'proc/stat', 'release') + clients * perClient);
    expect(requests(after, 'proc/stat', 'open') - requests(before, 'proc/stat', 'open')).toBe(clients * perClient);
    expect(requests(after, 'proc/stat', 'release') - requests(before, 'proc/stat', 'release')).toBe(
      clients * perClient,
    );
  }, 120_000);

  it('shows the handles held open and the snapshot memory they hold', async () => {
    // Earlier tests' handles are gone once their RELEASEs (sent after close() returns) have arrived.
    for (
      const deadline = Date.now() + 10_000;
      value(await scrape(), 'lxcfs_ts_open_handles') > 0 && Date.now() < deadline;
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    const base = value(await scrape(), 'lxcfs_ts_open_handles');
    expect(base).toBe(0);
    const fds = Array.from({ length: 5 }, () => fs.openSync(path.join(mnt, 'proc/cpuinfo'), 'r'));
    try {
      // A rendering stays in the snapshot pool while its handle is open.
      for (const fd of fds) fs.readSync(fd, Buffer.alloc(16), 0, 16, 0);
      const families = await scrape();
      expect(value(families, 'lxcfs_ts_open_handles')).toBe(5);
      expect(value(families, 'lxcfs_ts_snapshot_memory_bytes', { state: 'in_use' })).toBeGreaterThanOrEqual(5 * 4096);
      expect(value(families, 'lxcfs_ts_snapshot_memory_bytes', { state: 'allocated' })).toBeGreaterThanOrEqual(1 << 20);
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
  });

  it('answers scrapes after the snapshot pool grew and shrank again, with the same serving process', async () => {
    const bytes = (families: ParsedFamily[]): number =>
      value(families, 'lxcfs_ts_snapshot_memory_bytes', { state: 'allocated' });
    const restartsBefore = value(await scrape(), 'lxcfs_ts_server_restarts_total');
    // 400 snapshots of a page each outgrow the pool's first 256 pages; closed, they leave it mostly free,
    // and the main thread compacts it (every 2 s) while the scrapes below look at the same store.
    const fds = Array.from({ length: 400 }, () => fs.openSync(path.join(mnt, 'proc/cpuinfo'), 'r'));
    let grown: number;
    try {
      for (const fd of fds) fs.readSync(fd, Buffer.alloc(16), 0, 16, 0);
      grown = bytes(await scrape());
      expect(grown).toBeGreaterThan(256 * 4096);
    } finally {
      for (const fd of fds) fs.closeSync(fd);
    }
    let families = await scrape();
    for (const deadline = Date.now() + 15_000; bytes(families) >= grown && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      families = await scrape();
    }
    expect(bytes(families)).toBeLessThan(grown);
    // A scrape after the compaction once crashed the serving process (its view of the pool was stale).
    families = await scrape();
    expect(value(families, 'lxcfs_ts_serving')).toBe(1);
    expect(value(families, 'lxcfs_ts_server_restarts_total')).toBe(restartsBefore);
  }, 60_000);

  it('counts the containers that opened files, and the largest share one of them holds against its limit', async () => {
    const before = await scrape();
    const seenBefore = value(before, 'lxcfs_ts_containers', { state: 'seen' });
    // Two "containers" (pid namespaces of their own) holding 7 and 3 read handles until their stdin closes.
    const hold = (count: number) => {
      const script = [
        'import sys',
        `fds = [open(${JSON.stringify(path.join(mnt, 'proc/cpuinfo'))}, "rb", buffering=0) for _ in range(${count})]`,
        'for f in fds: f.read(16)',
        'print("ready", flush=True)',
        'sys.stdin.read()',
      ].join('\n');
      const child = spawn('unshare', ['--pid', '--fork', '--kill-child', 'python3', '-c', script], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      cleanup.add(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      });
      return child;
    };
    const holders = [hold(7), hold(3)];
    try {
      for (const holder of holders) {
        expect(await firstLine(holder.stdout)).toBe('ready');
      }
      const families = await scrape();
      expect(value(families, 'lxcfs_ts_containers', { state: 'holding' })).toBe(2);
      expect(value(families, 'lxcfs_ts_containers', { state: 'seen' })).toBe(seenBefore + 2);
      expect(value(families, 'lxcfs_ts_container_share_largest', { resource: 'handles' })).toBe(7);
      expect(value(families, 'lxcfs_ts_container_share_largest', { resource: 'snapshot_bytes' })).toBe(7 * 4096);
      expect(value(families, 'lxcfs_ts_container_share_limit', { resource: 'handles' })).toBe(1024);
      expect(value(families, 'lxcfs_ts_container_share_limit', { resource: 'snapshot_bytes' })).toBe(4 << 20);
    } finally {
      for (const holder of holders) {
        holder.stdin.end();
        if (holder.exitCode === null) await once(holder, 'exit');
      }
    }
    for (
      const deadline = Date.now() + 10_000;
      value(await scrape(), 'lxcfs_ts_containers', { state: 'holding' }) > 0 && Date.now() < deadline;
    )
      await new Promise((resolve) => setTimeout(resolve, 50));
    const after = await scrape();
    expect(value(after, 'lxcfs_ts_containers', { state: 'holding' })).toBe(0);
    expect(value(after, 'lxcfs_ts_containers', { state: 'seen' })).toBe(seenBefore + 2);
  });

  it('counts garbage collections and their pauses per thread and kind, and those of the FUSE threads grow with reads', async () => {
    const threads = ['main', 'reader'];
    const kinds = ['minor', 'major', 'incremental', 'weak_callbacks', 'fold'];
    const gcOfFuseThreads = (families: ParsedFamily[], name: string): number =>
      value(families, name, { thread: 'reader', kind: 'minor' });
    // Readers blocked in read() publish what they counted when the scrape gives them a request: this scrape
    // alone must show the reads' collections.
    const before = await scrape();
    for (const name of ['lxcfs_ts_gc_total', 'lxcfs_ts_gc_pause_seconds_total']) {
      const found = family(before, name);
      expect(found.type).toBe('COUNTER');
      expect(found.help).not.toBe('');
      // Every thread role and kind, zeros included.
      const series = found.metrics.map((entry) => `${entry.labels?.thread}/${entry.labels?.kind}`).sort();
      expect(series).toEqual(threads.flatMap((thread) => kinds.map((kind) => `${thread}/${kind}`)).sort());
    }
    // Rendering allocates: a few thousand reads fill a reader's 2 MiB young generation many times over.
    for (let i = 0; i < 3000; i++) readOnce(path.join(mnt, i % 2 ? 'proc/stat' : 'proc/meminfo'));
    const after = await scrape();
    const collections = gcOfFuseThreads(after, 'lxcfs_ts_gc_total') - gcOfFuseThreads(before, 'lxcfs_ts_gc_total');
    const paused =
      gcOfFuseThreads(after, 'lxcfs_ts_gc_pause_seconds_total') -
      gcOfFuseThreads(before, 'lxcfs_ts_gc_pause_seconds_total');
    expect(collections).toBeGreaterThan(0);
    expect(paused).toBeGreaterThan(0);
    // A young-generation collection of a few MiB takes microseconds to milliseconds, not seconds.
    expect(paused / collections).toBeLessThan(0.1);
    // Counters never go down.
    for (const thread of threads) {
      for (const kind of kinds) {
        expect(value(after, 'lxcfs_ts_gc_total', { thread, kind })).toBeGreaterThanOrEqual(
          value(before, 'lxcfs_ts_gc_total', { thread, kind }),
        );
      }
    }
  }, 60_000);

  it('has the memory and event-loop lag of both processes and the version', async () => {
    const families = await scrape();
    for (const process of ['supervisor', 'server']) {
      expect(value(families, 'process_resident_memory_bytes', { process })).toBeGreaterThan(10 << 20);
      expect(sample(families, 'nodejs_eventloop_lag_seconds', { process }), process).toBeDefined();
    }
    const version = (
      JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
    ).version;
    expect(value(families, 'lxcfs_ts_info', { version })).toBe(1);
    expect(value(families, 'lxcfs_ts_serving')).toBe(1);
  });

  it('leaves an idle daemon asleep between scrapes: no timer wakes either process', async () => {
    await scrape();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const processes = [daemon.pid, await servingPid(daemon)];
    const before = processes.map(contextSwitches);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const woke = processes.map((pid, i) => contextSwitches(pid) - before[i]!);
    // A timer every 10 ms (as prom-client's event-loop delay monitor runs) would be about 300 each.
    expect(woke[0], 'supervisor').toBeLessThan(20);
    expect(woke[1], 'serving process').toBeLessThan(20);
  });

  it('counts upgrades and restarts of the serving process, and keeps serving the endpoint across them', async () => {
    await upgradeDaemon(pidFile);
    let families = await scrape();
    expect(value(families, 'lxcfs_ts_upgrades_total', { outcome: 'done' })).toBe(1);
    // A new serving process counts its requests from 0 (Prometheus's rate() takes counter resets in stride).
    expect(requests(families, 'proc/meminfo', 'open')).toBe(0);
    readOnce(path.join(mnt, 'proc/meminfo'));
    families = await untilReleases('proc/meminfo', 1);
    expect(requests(families, 'proc/meminfo', 'open')).toBe(1);

    const status = JSON.parse(
      run(LXCFS_TS, ['doctor', '--mountpoint', mnt, '--pidfile', pidFile, '--json'], { timeout: 60_000 }).stdout,
    ) as { checks: Array<{ name: string; message: string }> };
    const daemonCheck = status.checks.find((check) => check.name === 'daemon')!.message;
    expect(daemonCheck).toContain(`metrics on 127.0.0.1:${port}`);
    const serverPid = Number(/serving process (\d+)/.exec(daemonCheck)![1]);
    process.kill(serverPid, 'SIGKILL');
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      families = await scrape();
      if (value(families, 'lxcfs_ts_server_restarts_total') === 1 && value(families, 'lxcfs_ts_serving') === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(value(families, 'lxcfs_ts_server_restarts_total')).toBe(1);
    expect(value(families, 'lxcfs_ts_serving')).toBe(1);
  }, 60_000);

  it('shows the loadavg sampler at work with -l (the cgroups it tracks, its CPU per pass), and 0 without', async () => {
    expect(value(await scrape(), 'lxcfs_ts_loadavg_cgroups')).toBe(0);
    const sampledMnt = path.join(dir, 'sampled');
    const sampledPort = await freePort();
    const sampled = await startDaemon(
      cleanup,
      ['-l', '-p', path.join(dir, 'sampled.pid'), '--metrics', `127.0.0.1:${sampledPort}`, sampledMnt],
      sampledMnt,
    );
    // Two containers (each the init of its own pid namespace, in a cpu cgroup of its own) read loadavg,
    // and so are tracked from then on, while they live.
    for (const name of ['lxcfs-ts-metrics-a', 'lxcfs-ts-metrics-b']) {
      const cgroup = createCgroup(cleanup, 'cpu', name);
      const container = spawn(
        'sh',
        [
          '-c',
          'echo $$ > "$1/cgroup.procs" && exec unshare --pid --fork --kill-child sh -c \'cat "$0" && exec sleep 120\' "$2"',
          'sh',
          cgroup.dir,
          path.join(sampledMnt, 'proc/loadavg'),
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      cleanup.own(container);
      expect(await firstLine(container.stdout)).toMatch(/^0\.00 0\.00 0\.00 \d+\/\d+ \d+$/);
    }
    // The sampler passes every 5 s.
    let families = await scrape(sampledPort);
    for (
      let deadline = Date.now() + 15_000;
      Date.now() < deadline && value(families, 'lxcfs_ts_loadavg_cgroups') < 2;
    ) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      families = await scrape(sampledPort);
    }
    expect(value(families, 'lxcfs_ts_loadavg_cgroups')).toBe(2);
    expect(value(families, 'lxcfs_ts_loadavg_pass_cpu_seconds')).toBeGreaterThan(0);
    expect(value(families, 'lxcfs_ts_loadavg_pass_cpu_seconds')).toBeLessThan(1);
    expect((await sampled.stop()).code).toBe(0);
  }, 60_000);

  it('answers 404 off /metrics', async () => {
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
  });
});

describe('--metrics', () => {
  it('is off by default: the daemon listens on no TCP port', async () => {
    const other = path.join(dir, 'plain');
    const plain = await startDaemon(cleanup, ['-p', path.join(dir, 'plain.pid'), other], other);
    expect(listeningPorts(plain.pid)).toEqual([]);
    expect(listeningPorts(daemon.pid)).toEqual([port]);
    await plain.stop();
  }, 30_000);

  it('on a taken port: one line on stderr, exit 1, nothing mounted, no pid file', () => {
    const target = path.join(dir, 'taken');
    const result = run(LXCFS_TS, ['-p', path.join(dir, 'taken.pid'), '--metrics', `127.0.0.1:${port}`, target]);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      `lxcfs-ts: --metrics 127.0.0.1:${port}: cannot listen: EADDRINUSE (the port is taken; choose another)\n`,
    );
    expect(isMounted(target)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'taken.pid'))).toBe(false);
  });

  it('a malformed address is refused before anything starts', () => {
    const result = run(LXCFS_TS, ['-p', path.join(dir, 'bad.pid'), '--metrics', '9750', path.join(dir, 'bad')]);
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      'lxcfs-ts: option --metrics: "9750" is not ADDR:PORT (e.g. 127.0.0.1:9750, [::1]:9750, or :9750 for every address)\n',
    );
  });
});
