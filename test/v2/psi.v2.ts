// PSI triggers (--enable-psi-poll) on a real cgroup2 kernel, where a container's pressure is its own
// cgroup's cpu.pressure and memory.pressure: a container stalled on CPU under cpu.max, and one stalled on
// memory above memory.high, each get POLLPRI from a trigger on their /proc/pressure file; an idle one gets
// nothing for 3 windows, then POLLERR when its cgroup goes away. The host suite's test/integration/psi.test.ts
// covers the trigger rules and restarts on the hybrid host.
//
// The guest is software-emulated, so the windows here are 2 s, not 1 s: the daemon's sampler and the
// poller both run late under TCG, and the bound that matters is the kernel's, "within 2 windows".

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, startDaemon } from '../helpers/processes.js';
import { POLLERR, POLLPRI, startPoller, stopPoller } from '../helpers/psi-poller.js';
import { makeCgroup, readCgroup, spawnIn } from './guest.js';

const WINDOW_S = 2;
const TRIGGER = `some 150000 ${WINDOW_S * 1_000_000}`;
const cleanup = new Cleanup();
let mnt: string;

beforeAll(async () => {
  const dir = cleanup.tempDir();
  mnt = path.join(dir, 'mnt');
  await startDaemon(cleanup, ['--enable-psi-poll', '-p', path.join(dir, 'pid'), mnt], mnt);
});

afterAll(() => cleanup.run());

/** The `total=` of the `some` line of a pressure file. */
const someTotal = (text: string): number => Number(/^some .* total=(\d+)$/m.exec(text)![1]);

/** Arms TRIGGER on the /proc/pressure/<resource> of a container in the stalling `cgroup` (with `busy` loops
 * beside the poller) and checks the first poll: POLLPRI within 2 windows, and the cgroup's own stall over
 * the threshold. */
async function expectEventWithin2Windows(cgroup: string, resource: 'cpu' | 'memory', busy = 0): Promise<void> {
  const poller = startPoller(cleanup, mnt, {
    cgroups: [cgroup],
    resource,
    busy,
    trigger: TRIGGER,
    timeoutMs: 4 * WINDOW_S * 1000,
  });
  try {
    await poller.waitFor(/^armed 1$/, 30_000);
    const first = await poller.waitFor(/^\d/, 6 * WINDOW_S * 1000);
    const [seconds, revents] = first.split(' ').map(Number) as [number, number];
    expect(revents & POLLPRI, first).toBe(POLLPRI);
    expect(seconds).toBeLessThan(2 * WINDOW_S);
    expect(someTotal(readCgroup(cgroup, `${resource}.pressure`))).toBeGreaterThan(150_000);
  } finally {
    await stopPoller(poller);
  }
}

describe('a trigger on a cgroup2 container', () => {
  it('on /proc/pressure/cpu: POLLPRI within 2 windows when busy loops exceed its cpu.max', async () => {
    // 10% of one CPU for the poller and two busy loops (forked once the trigger is armed).
    const cgroup = makeCgroup(cleanup, { 'cpu.max': '10000 100000' });
    await expectEventWithin2Windows(cgroup, 'cpu', 2);
  });

  it('on /proc/pressure/memory: POLLPRI within 2 windows while it touches 4 times its memory.high', async () => {
    const cgroup = makeCgroup(cleanup, { 'memory.high': String(32 << 20) });
    // Above memory.high the kernel reclaims and throttles the allocator: memory stall in this cgroup only.
    // It stalls before the trigger is armed, so that the 2 windows count from the write, as for cpu.
    const allocator = spawnIn(cleanup, cgroup, 'python3', [
      '-c',
      'b = bytearray(128 << 20)\nwhile True:\n    for i in range(0, len(b), 4096): b[i] = (b[i] + 1) & 255',
    ]);
    const highEvents = (): number => Number(/^high (\d+)$/m.exec(readCgroup(cgroup, 'memory.events'))![1]);
    for (let i = 0; i < 300 && highEvents() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(highEvents()).toBeGreaterThan(0);
    try {
      await expectEventWithin2Windows(cgroup, 'memory');
    } finally {
      allocator.kill('SIGKILL');
    }
  });

  it('on an idle container: nothing for 3 windows, then POLLERR when its cgroup is removed', async () => {
    const cgroup = makeCgroup(cleanup);
    const poller = startPoller(cleanup, mnt, { cgroups: [cgroup], trigger: TRIGGER, timeoutMs: 3 * WINDOW_S * 1000 });
    try {
      await poller.waitFor(/^armed 1$/, 30_000);
      const quiet = await poller.waitFor(/^\d/, 6 * WINDOW_S * 1000);
      expect(quiet).toMatch(new RegExp(`^${3 * WINDOW_S}\\.\\d+ 0$`)); // the poll timed out: no event
      // A cgroup2 cgroup with processes cannot go: the poller moves to a sibling, as when a runtime
      // tears a container down around a process that escaped it.
      const elsewhere = makeCgroup(cleanup);
      for (const pid of readCgroup(cgroup, 'cgroup.procs').split('\n').filter(Boolean))
        fs.writeFileSync(path.join(elsewhere, 'cgroup.procs'), pid);
      fs.rmdirSync(cgroup);
      const gone = await poller.waitFor(/ (?!0$)\d+$/, 4 * WINDOW_S * 1000, poller.lines().indexOf(quiet) + 1);
      expect(Number(gone.split(' ')[1]) & POLLERR, gone).toBe(POLLERR);
    } finally {
      await stopPoller(poller);
    }
  });
});
