// The per-cgroup state of the views (the --enable-cfs /proc/stat counters, the load averages of -l)
// survives what happens to the serving process: a graceful upgrade and a kill -9 of it. A container's
// counters never go backwards and its load average does not restart from 0.00.

import { spawn } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createCgroups } from '../helpers/cgroups.js';
import { lxcfsFileBinds, startContainer, type Container } from '../helpers/container.js';
import { Cleanup, servingPid, startDaemon, upgradeDaemon, waitForLog, type Daemon } from '../helpers/processes.js';

const cleanup = new Cleanup();
let dir: string;
let daemon: Daemon;
let container: Container;

beforeAll(async () => {
  dir = cleanup.tempDir();
  const mnt = path.join(dir, 'mnt');
  daemon = await startDaemon(cleanup, ['--enable-cfs', '-l', '-p', path.join(dir, 'pid'), mnt], mnt);
  const [cpu, cpuacct] = createCgroups(cleanup, ['cpu', 'cpuacct'], 'lxcfs-ts-truth-handover');
  cpu!.write('cpu.cfs_quota_us', 100_000); // one CPU
  container = await startContainer(cleanup, {
    cgroups: [cpu!.dir, cpuacct!.dir],
    binds: lxcfsFileBinds(mnt, ['proc/stat', 'proc/loadavg']),
  });
  // Keeps one thread runnable: the counters move and the load average climbs.
  const join = `echo $$ > ${cpu!.dir}/cgroup.procs && echo $$ > ${cpuacct!.dir}/cgroup.procs`;
  const busy = spawn('sh', ['-c', `${join} && exec nsenter -t ${container.pid} -m -p -- sh -c 'while :; do :; done'`], {
    stdio: 'ignore',
  });
  cleanup.own(busy);
}, 60_000);

afterAll(() => cleanup.run());

interface Reading {
  /** user, nice, system, idle of the `cpu` line. */
  cpu: number[];
  load1: number;
}

function read(): Reading {
  const stat = container.exec('cat', ['/proc/stat']).stdout;
  const loadavg = container.exec('cat', ['/proc/loadavg']).stdout;
  const cpu = stat.split('\n')[0]!.trim().split(/\s+/).slice(1, 5).map(Number);
  expect(cpu, stat).toHaveLength(4);
  return { cpu, load1: Number(loadavg.split(' ')[0]) };
}

function expectContinued(before: Reading, after: Reading, what: string): void {
  for (let i = 0; i < 4; i++)
    expect(
      after.cpu[i]!,
      `${what}: field ${i} of the cpu line went from ${before.cpu.join(' ')} to ${after.cpu.join(' ')}`,
    ).toBeGreaterThanOrEqual(before.cpu[i]!);
  // At most a sample's decay (5 s of e^(-5/60)) below, never back to 0.00.
  expect(after.load1, `${what}: load1 went from ${before.load1} to ${after.load1}`).toBeGreaterThanOrEqual(
    Math.floor(before.load1 * 0.9 * 100) / 100,
  );
}

it('continues /proc/stat counters and load averages across 2 graceful upgrades and 2 kill -9 of the serving process', async () => {
  read();
  await sleep(16_000); // three samples: load1 ≈ 0.22
  let before = read();
  expect(before.load1).toBeGreaterThan(0.1);
  expect(before.cpu[0]! + before.cpu[2]!).toBeGreaterThan(0);
  for (let round = 1; round <= 2; round++) {
    await upgradeDaemon(path.join(dir, 'pid'));
    let after = read();
    expectContinued(before, after, `upgrade ${round}`);
    before = after;
    process.kill(await servingPid(daemon), 'SIGKILL');
    await waitForLog(daemon, /"msg":"serving again"/, round);
    after = read();
    expectContinued(before, after, `kill -9 ${round}`);
    before = after;
  }
}, 180_000);
