// PSI triggers (--enable-psi-poll) on the real kernel (cgroup v1 hybrid here): a container whose cgroup2
// cgroup (/sys/fs/cgroup/unified, at the path of its v1 cpu cgroup, as runtimes with systemd cgroups make
// them) stalls on CPU gets POLLPRI from a trigger on its /proc/pressure/cpu; an idle one gets nothing, then
// POLLERR when its cgroup is removed; bad triggers, a second trigger and the per-container cap are
// refused; a restart of the serving process (upgrade or crash) wakes pollers with POLLERR; without the
// flag the files stay read-only and POLL answers ENOSYS.
//
// Containers are simulated as in activity.test.ts: `unshare --pid --fork --mount --mount-proc` in cgroups
// the test makes, with our pressure files bind-mounted over their own.

import path from 'node:path';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCgroups, type TestCgroup } from '../helpers/cgroups.js';
import { Cleanup, run, startDaemon, upgradeDaemon, type Daemon } from '../helpers/processes.js';
import { POLLERR, POLLPRI, startPoller, stopPoller } from '../helpers/psi-poller.js';

const cleanup = new Cleanup();
let dir: string;
let mnt: string;
let daemon: Daemon;

beforeAll(async () => {
  dir = cleanup.tempDir();
  mnt = path.join(dir, 'mnt');
  daemon = await startDaemon(cleanup, ['--enable-psi-poll', '-p', path.join(dir, 'pid'), mnt], mnt);
}, 60_000);

afterAll(() => cleanup.run());

/** The directories of a container's cgroups. */
const dirs = (cgroups: TestCgroup[]): string[] => cgroups.map((cgroup) => cgroup.dir);

/** A container's cgroups: v1 cpu and cgroup2 at one path. */
function containerCgroups(name: string): TestCgroup[] {
  return createCgroups(cleanup, ['cpu', 'unified'], name);
}

/** Moves every process out of a cgroup2 cgroup and removes it. */
function removeUnified(cgroup: TestCgroup): void {
  for (const pid of cgroup.read('cgroup.procs').split('\n').filter(Boolean))
    fs.writeFileSync('/sys/fs/cgroup/unified/cgroup.procs', pid);
  fs.rmdirSync(cgroup.dir);
}

describe("a trigger on a container's /proc/pressure/cpu", () => {
  it('reports POLLPRI within 2 windows when the container stalls, then at most once per window', async () => {
    const cgroups = containerCgroups('lxcfs-ts-psi-busy');
    // 10% of one CPU for two busy loops (started once the trigger is armed) and the poller: they wait
    // for the CPU nearly all the time.
    cgroups[0]!.write('cpu.cfs_quota_us', 10000);
    const poller = startPoller(cleanup, mnt, {
      cgroups: dirs(cgroups),
      busy: 2,
      trigger: 'some 150000 1000000',
      timeoutMs: 2000,
    });
    try {
      await poller.waitFor(/^armed 1$/, 10_000);
      // The first event: within 2 windows of arming.
      const first = await poller.waitFor(/^\d/, 4000);
      const [seconds, revents] = first.split(' ').map(Number) as [number, number];
      expect(revents & POLLPRI).toBe(POLLPRI);
      expect(seconds).toBeLessThan(2);
      // While the stall goes on: an event per window, never two within one.
      await new Promise((resolve) => setTimeout(resolve, 3500));
      const events = poller
        .results()
        .filter(([, r]) => r & POLLPRI)
        .map(([s]) => s);
      expect(events.length).toBeGreaterThanOrEqual(3);
      // The poller sees each event a wake-up later than the daemon sent it, and wake-ups jitter by a few
      // hundred ms on a loaded machine; a second event within the window would come a sample (0.1 s) after.
      for (let i = 1; i < events.length; i++) expect(events[i]! - events[i - 1]!).toBeGreaterThan(0.7);
      expect(poller.results().every(([, r]) => (r & POLLERR) === 0)).toBe(true);
    } finally {
      await stopPoller(poller);
    }
  }, 60_000);

  it('reports nothing for 3 windows in an idle container, then POLLERR when its cgroup is removed', async () => {
    const cgroups = containerCgroups('lxcfs-ts-psi-idle');
    const poller = startPoller(cleanup, mnt, {
      cgroups: dirs(cgroups),
      trigger: 'some 150000 1000000',
      timeoutMs: 3000,
    });
    try {
      await poller.waitFor(/^armed 1$/, 10_000);
      const quiet = await poller.waitFor(/^\d/, 6000);
      expect(quiet).toMatch(/^3\.\d+ 0$/); // the poll timed out: no event in 3 windows
      removeUnified(cgroups[1]!);
      const gone = await poller.waitFor(/ (?!0$)\d+$/, 4000, poller.lines().indexOf(quiet) + 1);
      expect(Number(gone.split(' ')[1]) & POLLERR).toBe(POLLERR);
    } finally {
      await stopPoller(poller);
    }
  }, 60_000);
});

/** Writes each of `writes` (hex) in order to one O_RDWR descriptor of our pressure file; prints each
 * result (`ok` or the errno name). */
function writeTriggers(file: string, writes: string[], separate = false): string[] {
  const script = `
import os, sys, errno
fds = []
fd = None
for hexed in sys.argv[2:]:
    if fd is None or ${separate ? 'True' : 'False'}:
        fd = os.open(sys.argv[1], os.O_RDWR); fds.append(fd)
    try:
        os.write(fd, bytes.fromhex(hexed)); print('ok')
    except OSError as e:
        print(errno.errorcode[e.errno])
`;
  const result = run('python3', ['-c', script, file, ...writes.map((w) => Buffer.from(w).toString('hex'))]);
  expect(result.stderr).toBe('');
  return result.stdout.trim().split('\n');
}

describe('trigger rules', () => {
  it('refuses what the kernel refuses with EINVAL', () => {
    const file = path.join(mnt, 'proc/pressure/cpu');
    const bad = [
      '',
      'bogus 1 1000000',
      'some',
      'some 1000',
      'some 0 1000000',
      'some 1000 499999',
      'some 1000 10000001',
      'some 1000001 1000000',
      'some -1 1000000',
    ];
    for (const trigger of bad) {
      expect([trigger, writeTriggers(file, [trigger])]).toEqual([trigger, [trigger === '' ? 'ok' : 'EINVAL']]);
    }
    // The bounds themselves, a trailing newline or NUL, and full (this kernel's cpu pressure has a full line).
    for (const good of ['some 500000 500000', 'some 1 10000000', 'some 150000 1000000\n', 'full 100000 1000000\0']) {
      expect([good, writeTriggers(file, [good])]).toEqual([good, ['ok']]);
    }
  });

  it('allows one trigger per open file (EBUSY), and 32 per container (ENOSPC, logged once)', async () => {
    const file = path.join(mnt, 'proc/pressure/cpu');
    // The kernel sends RELEASE after the close, in the background: give the last run's a moment.
    const settle = (): Promise<unknown> => new Promise((resolve) => setTimeout(resolve, 500));
    await settle();
    expect(writeTriggers(file, ['some 150000 1000000', 'some 150000 1000000'])).toEqual(['ok', 'EBUSY']);
    await settle();
    const many = Array.from({ length: 34 }, () => 'some 150000 1000000');
    expect(writeTriggers(file, many, true)).toEqual([...Array(32).fill('ok'), 'ENOSPC', 'ENOSPC']);
    await settle();
    // Closed with the process: the container may arm again.
    expect(writeTriggers(file, many, true).filter((r) => r === 'ok')).toHaveLength(32);
    expect(daemon.output().match(/a container may arm 32 PSI triggers at once/g)).toHaveLength(1);
  });

  it('answers POLLERR|POLLPRI for a pressure file without a trigger, as the kernel', () => {
    const result = run('python3', [
      '-c',
      `
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
p = select.poll(); p.register(fd, select.POLLPRI | select.POLLIN)
print(p.poll(1000)[0][1])`,
      path.join(mnt, 'proc/pressure/cpu'),
    ]);
    // poll(2) keeps what was asked for, and POLLERR.
    expect(Number(result.stdout.trim())).toBe(0x1 | 0x2 | 0x8);
  });
});

describe('a restart of the serving process', () => {
  it('wakes a pending poller with POLLERR after an upgrade and after a crash', async () => {
    const cgroups = containerCgroups('lxcfs-ts-psi-restart');
    const poller = startPoller(cleanup, mnt, {
      cgroups: dirs(cgroups),
      trigger: 'some 900000 1000000',
      timeoutMs: 60_000,
      rearm: true,
    });
    try {
      await poller.waitFor(/^armed 1$/, 10_000);
      await new Promise((resolve) => setTimeout(resolve, 300)); // the poll is pending
      await upgradeDaemon(path.join(dir, 'pid'));
      const afterUpgrade = await poller.waitFor(/^\d/, 10_000);
      expect(Number(afterUpgrade.split(' ')[1]) & POLLERR).toBe(POLLERR);
      await poller.waitFor(/^armed 2$/, 10_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The serving process is the daemon's child; the daemon starts another when it dies.
      const server = Number(
        run('pgrep', ['-P', String(daemon.pid)])
          .stdout.trim()
          .split('\n')[0],
      );
      expect(server).toBeGreaterThan(0);
      process.kill(server, 'SIGKILL');
      const afterCrash = await poller.waitFor(/^\d/, 15_000, poller.lines().indexOf('armed 2') + 1);
      expect(Number(afterCrash.split(' ')[1]) & POLLERR).toBe(POLLERR);
    } finally {
      await stopPoller(poller);
    }
  }, 90_000);
});

describe('a pending poll', () => {
  it('is an interruptible wait: a signal ends it at once, whatever the daemon does', () => {
    // SIGALRM after 0.5 s; its handler raises, so poll() returns to Python instead of being retried.
    const result = run('python3', [
      '-c',
      `
import os, select, signal, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
os.write(fd, b'some 900000 1000000')
class Alarm(Exception): pass
def ring(*_): raise Alarm()
signal.signal(signal.SIGALRM, ring)
signal.setitimer(signal.ITIMER_REAL, 0.5)
p = select.poll(); p.register(fd, select.POLLPRI)
start = time.monotonic()
try:
    print('returned', p.poll(60000))
except Alarm:
    print('interrupted %.1f' % (time.monotonic() - start))`,
      path.join(mnt, 'proc/pressure/cpu'),
    ]);
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toMatch(/^interrupted \d+\.\d$/);
  });

  it('ends with POLLERR when the whole daemon stops', async () => {
    const ownMnt = path.join(dir, 'stopping');
    const own = await startDaemon(cleanup, ['--enable-psi-poll', '-p', path.join(dir, 'stopping.pid'), ownMnt], ownMnt);
    const poller = startPoller(cleanup, ownMnt, { trigger: 'some 900000 1000000', timeoutMs: 60_000 });
    try {
      await poller.waitFor(/^armed 1$/, 10_000);
      await new Promise((resolve) => setTimeout(resolve, 300)); // the poll is pending
      expect((await own.stop()).code).toBe(0);
      const woken = await poller.waitFor(/^\d/, 10_000);
      expect(Number(woken.split(' ')[1]) & POLLERR, woken).toBe(POLLERR);
    } finally {
      await stopPoller(poller);
    }
  }, 60_000);
});

describe('without --enable-psi-poll', () => {
  it('keeps pressure files read-only (EACCES) and answers POLL with ENOSYS (files always ready)', async () => {
    const plainMnt = path.join(dir, 'plain');
    const plain = await startDaemon(cleanup, ['-p', path.join(dir, 'plain.pid'), plainMnt], plainMnt);
    try {
      const result = run('python3', [
        '-c',
        `
import os, select, sys, errno
try:
    os.open(sys.argv[1], os.O_RDWR); print('opened')
except OSError as e:
    print(errno.errorcode[e.errno])
fd = os.open(sys.argv[1], os.O_RDONLY)
p = select.poll(); p.register(fd, select.POLLPRI | select.POLLIN)
print(p.poll(1000)[0][1])`,
        path.join(plainMnt, 'proc/pressure/cpu'),
      ]);
      // The kernel's answer without a poll method: readable and writable, no POLLERR or POLLPRI.
      expect(result.stdout.trim().split('\n')).toEqual(['EACCES', String(0x1)]);
    } finally {
      expect((await plain.stop()).code).toBe(0);
    }
  }, 60_000);
});
