// The soak: 8 containers with different memory limits and CPU counts read every file in a loop through
// 3 graceful upgrades, 2 kill -9 of the serving process and one kill -9 + restart + remount of the whole
// daemon, while a ninth process re-reads their cgroups' tasks files every 20 ms and a hostile container
// holds every handle the daemon lets it have. Every value a container
// reads is its own, or an error while the whole daemon is down; /proc/stat counters and load averages
// never go backwards except across that restart.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCgroup, type TestCgroup } from '../helpers/cgroups.js';
import { lxcfsFileBinds, makeSharedDirectory, startContainer, type Container } from '../helpers/container.js';
import {
  Cleanup,
  servingPid,
  waitForLog,
  firstLine,
  LXCFS_TS,
  killDaemonHard,
  REPO,
  run,
  startDaemon,
  upgradeDaemon,
  type Daemon,
} from '../helpers/processes.js';

const FILES = [
  'proc/meminfo',
  'proc/cpuinfo',
  'proc/stat',
  'proc/uptime',
  'proc/loadavg',
  'proc/swaps',
  'proc/diskstats',
  'sys/devices/system/cpu/online',
];
const CONTAINERS = 8;

// Inside a container: reads every file until /run/stop appears; checks each value against its own
// (argv: MemTotal in kB, CPU count), and counters against the previous read. Any failed read starts a
// new epoch (the whole daemon was down: its restart may start counters over). Prints a JSON summary with
// each wrong value and each step backwards, stamped with CLOCK_MONOTONIC (as process.hrtime here).
const READER = `
import json, os, re, sys, time
own_mem, own_cpus = int(sys.argv[1]), int(sys.argv[2])
files = ['/' + f for f in sys.argv[3:]]
online = '0' if own_cpus == 1 else '0-%d' % (own_cpus - 1)
reads = errors = 0
wrong, backwards, examples = [], [], []
prev_cpu = prev_load = None
def check(name, text):
    global prev_cpu, prev_load
    if name.endswith('meminfo'):
        m = re.search(r'^MemTotal:\\s+(\\d+) kB', text, re.M)
        if not m or int(m.group(1)) != own_mem: wrong.append((time.monotonic(), 'MemTotal %s' % (m and m.group(1))))
    elif name.endswith('cpuinfo'):
        n = len(re.findall(r'^processor\\s*:', text, re.M))
        if n != own_cpus: wrong.append((time.monotonic(), 'cpuinfo processors %d' % n))
    elif name.endswith('online'):
        if text.strip() != online: wrong.append((time.monotonic(), 'online %r' % text.strip()))
    elif name.endswith('/stat'):
        n = len(re.findall(r'^cpu\\d+ ', text, re.M))
        if n != own_cpus: wrong.append((time.monotonic(), 'stat cpu lines %d' % n))
        cpu = [int(x) for x in text.split('\\n')[0].split()[1:5]]
        if prev_cpu is not None and any(a < b for a, b in zip(cpu, prev_cpu)): backwards.append((time.monotonic(), 'stat %s -> %s' % (prev_cpu, cpu)))
        prev_cpu = cpu
    elif name.endswith('loadavg'):
        load1 = float(text.split()[0])
        if prev_load is not None and load1 < prev_load * 0.9 - 0.01: backwards.append((time.monotonic(), 'loadavg %s -> %s' % (prev_load, load1)))
        prev_load = load1
while not os.path.exists('/run/stop'):
    for name in files:
        reads += 1
        try:
            with open(name) as f: check(name, f.read())
        except OSError as e:
            errors += 1
            prev_cpu = prev_load = None
            if len(examples) < 3: examples.append('%s: %s' % (name, e.strerror))
    time.sleep(0.05)
print(json.dumps({'reads': reads, 'errors': errors, 'wrong': wrong, 'backwards': backwards, 'examples': examples}))
`;

const cleanup = new Cleanup();
let dir: string;
let mnt: string;
let daemon: Daemon;
const containers: Array<{ container: Container; memKb: number; cpus: number; cpu: TestCgroup }> = [];

beforeAll(async () => {
  dir = cleanup.tempDir('lxcfs-ts-soak-');
  const shared = path.join(dir, 'shared');
  makeSharedDirectory(cleanup, shared);
  mnt = path.join(shared, 'lxcfs');
  daemon = await startDaemon(cleanup, ['--enable-cfs', '-l', '-p', path.join(dir, 'pid'), mnt], mnt);
  for (let i = 0; i < CONTAINERS; i++) {
    const name = `lxcfs-ts-truth-soak${i}`;
    const memory = createCgroup(cleanup, 'memory', name);
    const cpu = createCgroup(cleanup, 'cpu', name);
    const cpuacct = createCgroup(cleanup, 'cpuacct', name);
    const memKb = (64 + 32 * i) * 1024;
    memory.write('memory.limit_in_bytes', memKb * 1024);
    // 0.2 CPU (shown as 1) or 1.5 CPUs (shown as 2, the host's count).
    const cpus = i % 2 === 0 ? 1 : 2;
    cpu.write('cpu.cfs_quota_us', i % 2 === 0 ? 20_000 : 150_000);
    const container = await startContainer(cleanup, {
      binds: lxcfsFileBinds(mnt, FILES),
      propagated: [{ source: shared, target: '/mnt' }],
      cgroups: [memory.dir, cpu.dir, cpuacct.dir],
    });
    containers.push({ container, memKb, cpus, cpu });
  }
  // Load in two containers, throttled to 0.2 CPU: the load average climbs, the host barely notices.
  for (const { container, cpu } of [containers[0]!, containers[2]!]) {
    const busy = spawn(
      'sh',
      [
        '-c',
        `echo $$ > ${cpu.dir}/cgroup.procs && exec nsenter -t ${container.pid} -m -p -- sh -c 'while :; do :; done'`,
      ],
      { stdio: 'ignore' },
    );
    cleanup.own(busy);
  }
}, 120_000);

afterAll(() => cleanup.run());

function monotonicSeconds(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

it('8 containers read only their own values beside a handle hog, through 3 upgrades, 2 serving-process crashes and a whole-daemon crash + restart + remount', async () => {
  const readers: Array<Promise<string>> = containers.map(({ container, memKb, cpus }) => {
    const child: ChildProcess = spawn(
      'nsenter',
      ['-t', String(container.pid), '-m', '-p', '--', 'python3', '-c', READER, String(memKb), String(cpus), ...FILES],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanup.own(child);
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    return new Promise((resolve) => child.on('close', () => resolve(out)));
  });
  // The hostile container: holds open every handle it can get on meminfo, with a snapshot each, until
  // the daemon refuses (EMFILE, its per-container limit), and keeps them through everything below.
  const hog = spawn(
    'sh',
    [
      '-c',
      'ulimit -n 20000 && exec unshare --pid --fork --mount-proc --kill-child python3 "$@"',
      'sh',
      path.join(REPO, 'test/fixtures/handle-hog.py'),
      path.join(mnt, 'proc/meminfo'),
      '20000',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  cleanup.own(hog);
  const hogReport = JSON.parse(await firstLine(hog.stdout)) as { held: number; stopped: string | null };
  expect(hogReport.stopped).toBe('EMFILE');
  // The ninth process: keeps every container's v1 pid list alive, as monitoring agents do.
  const tasks = containers.map(({ cpu }) => JSON.stringify(cpu.dir + '/tasks')).join(', ');
  const watcher = spawn(
    'python3',
    [
      '-c',
      `import os, time\nfds = [os.open(p, os.O_RDONLY) for p in [${tasks}]]\nwhile True:\n    for fd in fds: os.pread(fd, 1 << 16, 0)\n    time.sleep(0.02)`,
    ],
    { stdio: 'ignore' },
  );
  cleanup.own(watcher);

  await sleep(12_000); // two load samples
  const pidFile = path.join(dir, 'pid');
  let crashes = 0;
  for (const step of ['upgrade', 'crash', 'upgrade', 'crash', 'upgrade']) {
    if (step === 'upgrade') await upgradeDaemon(pidFile);
    else {
      process.kill(await servingPid(daemon), 'SIGKILL');
      await waitForLog(daemon, /"msg":"serving again"/, ++crashes);
    }
    await sleep(3000);
  }
  // The whole daemon: kill -9, restart on the same mountpoint, re-bind every container.
  await killDaemonHard(daemon);
  await sleep(1000);
  daemon = await startDaemon(cleanup, ['--enable-cfs', '-l', '-p', pidFile, mnt], mnt);
  const remountStarted = monotonicSeconds();
  const remount = run(
    LXCFS_TS,
    ['remount', '--mountpoint', mnt, ...containers.flatMap(({ container }) => ['--pid', String(container.pid)])],
    { timeout: 60_000 },
  );
  const remountEnded = monotonicSeconds();
  expect(remount.status, remount.stdout + remount.stderr).toBe(0);
  await sleep(6000);

  for (const { container } of containers) fs.writeFileSync(`/proc/${container.pid}/root/run/stop`, '');
  type Event = [at: number, what: string];
  const summaries = (await Promise.all(readers)).map(
    (out) =>
      JSON.parse(out) as { reads: number; errors: number; wrong: Event[]; backwards: Event[]; examples: string[] },
  );
  watcher.kill('SIGKILL');
  hog.kill('SIGKILL');
  const duringRemount = ([at]: Event): boolean => at >= remountStarted && at <= remountEnded;
  for (const [i, summary] of summaries.entries()) {
    const text = `container ${i}: ${summary.reads} reads, ${summary.errors} errors`;
    expect(summary.reads, text).toBeGreaterThan(1000);
    // Outside remount's own run: through upgrades and serving-process crashes, nothing wrong at all.
    expect(
      summary.wrong
        .filter((event) => !duringRemount(event))
        .map(([, what]) => what)
        .join('; '),
      text,
    ).toBe('');
    expect(
      summary.backwards
        .filter((event) => !duringRemount(event))
        .map(([, what]) => what)
        .join('; '),
      text,
    ).toBe('');
    // While remount re-binds the files: never the host's file either.
    expect(
      summary.wrong
        .filter(duringRemount)
        .map(([, what]) => what)
        .join('; '),
      `${text}, while remount ran (${(remountEnded - remountStarted).toFixed(2)} s)`,
    ).toBe('');
    // Errors only while the whole daemon was down: ENOTCONN on the dead mount, or ECONNABORTED for a read
    // that was waiting when the restarted daemon aborted the dead connection.
    expect(summary.errors, text).toBeGreaterThan(0);
    for (const example of summary.examples)
      expect(example, text).toMatch(/Transport endpoint is not connected|Software caused connection abort/);
  }
}, 300_000);
