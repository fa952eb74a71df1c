// Each WARN and FAIL of `lxcfs-ts doctor` that this host can show, produced for real: the real binary
// runs in a private mount namespace in which what it inspects has been changed (a /dev without fuse, a
// cgroup hierarchy unmounted, a tmpfs over /proc/pressure, a chroot), or in a devices cgroup that denies
// /dev/fuse, or on a host given a new disk, swap or a FUSE request timeout, or beside a daemon whose
// serving process keeps dying. A live daemon serves the
// mountpoint, so that the case under test decides the exit status.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Check, DoctorReport, Level } from '../../src/diagnose/doctor.js';
import { createCgroup } from '../helpers/cgroups.js';
import { Cleanup, LXCFS_TS, REPO, run, startDaemon, type Daemon } from '../helpers/processes.js';

const cleanup = new Cleanup();
let dir: string;
let mnt: string;
let pidFile: string;
let daemon: Daemon;
/** A v1 devices cgroup that denies /dev/fuse (10:229), as a container's device cgroup does. */
let noFuseDevices: string;

interface Doctor {
  status: number | null;
  report: DoctorReport;
}

/**
 * Runs `lxcfs-ts doctor --json` in a private mount namespace after the shell commands `setup`, under
 * `prefix` (e.g. a chroot). Our mount is made shared there (the namespace made every copy private), so
 * that the propagation check is not what the exit status reports.
 */
function doctorIn(setup: string, options: { prefix?: string; env?: NodeJS.ProcessEnv; args?: string } = {}): Doctor {
  const script = `set -e; mount --make-shared ${mnt}; ${setup}; ${options.prefix ?? ''} "$0" doctor --mountpoint ${mnt} --pidfile ${pidFile} --json ${options.args ?? ''}`;
  const result = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, LXCFS_TS], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...options.env },
  });
  expect(result.stderr).toBe('');
  return { status: result.status, report: JSON.parse(result.stdout) as DoctorReport };
}

function check(report: DoctorReport, name: string): Check {
  const found = report.checks.find((entry) => entry.name === name);
  expect(found, `no ${name} check in ${JSON.stringify(report.checks.map((entry) => entry.name))}`).toBeDefined();
  return found!;
}

/** The case's check has `level`, `message` and a fix; the exit status is that level's, unless another
 * check failed too (`exit`). */
function expectCase(
  doctor: Doctor,
  name: string,
  level: Level,
  message: string | RegExp,
  fix: string | RegExp,
  exit = level === 'fail' ? 2 : 1,
): void {
  expect(check(doctor.report, name)).toEqual({
    name,
    level,
    message: typeof message === 'string' ? message : expect.stringMatching(message),
    fix: typeof fix === 'string' ? fix : expect.stringMatching(fix),
  });
  expect(doctor.status, JSON.stringify(doctor.report.checks.filter((entry) => entry.level !== 'ok'))).toBe(exit);
}

beforeAll(async () => {
  dir = cleanup.tempDir('lxcfs-ts-doctor-cases-');
  mnt = path.join(dir, 'lxcfs');
  pidFile = path.join(dir, 'lxcfs-ts.pid');
  daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
  const devices = createCgroup(cleanup, 'devices', 'lxcfs-ts-doctor-cases');
  devices.write('devices.deny', 'c 10:229 rwm');
  noFuseDevices = devices.dir;
}, 60_000);

afterAll(() => cleanup.run());

describe('doctor, in a private mount namespace that changes what it inspects', () => {
  it('as it finds it (the baseline the cases change): no FAIL', () => {
    const doctor = doctorIn('true');
    expect(doctor.report.checks.filter((entry) => entry.level === 'fail')).toEqual([]);
    expect(check(doctor.report, 'mountpoint').level).toBe('ok');
    expect(check(doctor.report, 'propagation').level).toBe('ok');
  });

  interface Case {
    what: string;
    name: string;
    setup: () => string;
    level: Level;
    message: string | RegExp;
    fix: string | RegExp;
    prefix?: () => string;
    env?: () => NodeJS.ProcessEnv;
    exit?: number;
  }

  const fakeRunc =
    (line: string): (() => NodeJS.ProcessEnv) =>
    () => {
      const bin = fs.mkdtempSync(path.join(dir, 'runc-'));
      fs.writeFileSync(path.join(bin, 'runc'), `#!/bin/sh\necho '${line}'\n`, { mode: 0o755 });
      return { PATH: `${bin}:${process.env.PATH}` };
    };

  it.each<Case>([
    {
      what: 'a /dev of its own without fuse (a container not given the device)',
      name: 'fuse-device',
      setup: () => 'mount -t tmpfs lxcfs-ts-dev /dev && mknod -m 666 /dev/null c 1 3',
      level: 'fail',
      message: '/dev/fuse does not exist',
      fix: 'load the module (modprobe fuse); in a container, pass --device /dev/fuse and CAP_SYS_ADMIN',
    },
    {
      what: 'a regular file on /dev/fuse',
      name: 'fuse-device',
      setup: () => `touch ${dir}/fuse && mount --bind ${dir}/fuse /dev/fuse`,
      level: 'fail',
      message: '/dev/fuse is not a character device',
      fix: 'remove it and load the fuse module (modprobe fuse), which creates it',
    },
    {
      what: 'a devices cgroup that denies /dev/fuse',
      name: 'fuse-device',
      setup: () => `echo $$ > ${noFuseDevices}/cgroup.procs`,
      level: 'fail',
      message: '/dev/fuse cannot be opened: EPERM',
      fix: 'run as root; in a container, add the device to its device cgroup (--device /dev/fuse)',
    },
    {
      what: 'no cgroup filesystem mounted',
      name: 'cgroup-layout',
      setup: () => 'umount -l /sys/fs/cgroup',
      level: 'fail',
      message: "no cgroup hierarchy under /sys/fs/cgroup: every file shows the host's values",
      fix: 'mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup) or the v1 controllers',
    },
    {
      what: 'the v1 cpuset hierarchy unmounted',
      name: 'cgroup-cpuset',
      setup: () => 'umount -l /sys/fs/cgroup/cpuset',
      level: 'warn',
      message: "the cpuset controller is not available: cpuinfo, stat, online show the host's values",
      fix: 'mount it: mkdir -p /sys/fs/cgroup/cpuset && mount -t cgroup -o cpuset cgroup /sys/fs/cgroup/cpuset',
    },
    {
      what: 'no /proc/pressure (an empty directory over it)',
      name: 'psi',
      setup: () => 'mount -t tmpfs lxcfs-ts-pressure /proc/pressure',
      level: 'warn',
      message: 'the kernel has no /proc/pressure (PSI off): pressure/* are empty',
      fix: 'boot with psi=1 (CONFIG_PSI_DEFAULT_DISABLED kernels)',
    },
    {
      what: 'a v1 blkio hierarchy without blkio.throttle.* (an empty directory over it)',
      name: 'io-accounting',
      setup: () => 'mount -t tmpfs lxcfs-ts-blkio /sys/fs/cgroup/blkio',
      level: 'warn',
      message: /^no blkio\.throttle\.\* files \(kernel without blk-throttle\): diskstats shows/,
      fix: 'a kernel with CONFIG_BLK_DEV_THROTTLING',
    },
    {
      what: 'a runc whose version it cannot read',
      name: 'runc',
      setup: () => 'true',
      env: fakeRunc('crun-like 0.9 (not runc)'),
      level: 'warn',
      message: 'cannot read runc\'s version from "crun-like 0.9 (not runc)"',
      fix: 'check runc --version',
    },
    {
      what: 'a runc older than 1.0.0-rc6',
      name: 'runc',
      setup: () => 'true',
      env: fakeRunc('runc version 1.0.0-rc5'),
      level: 'warn',
      message:
        /^runc 1\.0\.0-rc5 refuses \/proc\/loadavg, \/proc\/slabinfo as bind targets \("cannot be mounted because it is inside \/proc"\): a container given them does not start/,
      fix: /upgrade runc \(loadavg needs 1\.0\.0-rc6, slabinfo 1\.0\.0-rc93\)/,
    },
    {
      // The shell stays in the namespace whose copy of our mount is the master.
      what: 'a mountpoint that is a slave mount',
      name: 'propagation',
      setup: () => 'true',
      prefix: () => 'unshare -m --propagation slave',
      level: 'warn',
      message:
        /^the mount on \S+ is slave: Docker accepts rslave binds of it, but a restarted daemon's new mount does not reach containers/,
      fix: /^make the parent shared before the daemon starts: mount --bind /,
    },
    {
      // A chroot whose root is no mount point: /proc/self/mountinfo shows only the mounts below it.
      what: 'a chroot that sees no mount holding the mountpoint',
      name: 'propagation',
      setup: () =>
        [
          `mkdir -p ${dir}/root/usr ${dir}/root/etc ${dir}/root/proc ${dir}/root/dev ${dir}/root${REPO}`,
          ...['bin', 'sbin', 'lib', 'lib64'].map((link) => `ln -sfn usr/${link} ${dir}/root/${link}`),
          ...['/usr', '/etc', '/proc', '/dev', REPO].map((source) => `mount --rbind ${source} ${dir}/root${source}`),
        ].join(' && '),
      prefix: () => `chroot ${dir}/root`,
      level: 'warn',
      message: /^no mount in \/proc\/self\/mountinfo holds \/tmp\/lxcfs-ts-doctor-cases-\w+: /,
      fix: /outside the chroot/,
      // The daemon's mount and pid file are outside the chroot too.
      exit: 2,
    },
  ])('$what: $level $name', (c) => {
    const doctor = doctorIn(c.setup(), { prefix: c.prefix?.(), env: c.env?.() });
    expectCase(doctor, c.name, c.level, c.message, c.fix, c.exit);
  });
});

describe('doctor, on a host given something new', () => {
  it('a new disk without a throttle rule (Linux ≥ 6.10 v1 counts no I/O on it): WARN naming it', () => {
    const counted = fs.readFileSync('/sys/fs/cgroup/blkio/blkio.throttle.io_serviced_recursive', 'utf8');
    // A loop device no throttle rule was ever set on (the kernel lists those in the root's counters).
    const loop = fs
      .readdirSync('/sys/block')
      .filter((name) => /^loop\d+$/.test(name) && fs.existsSync(`/dev/${name}`))
      .find(
        (name) =>
          fs.readFileSync(`/sys/block/${name}/size`, 'utf8').trim() === '0' &&
          !counted.includes(`${fs.readFileSync(`/sys/block/${name}/dev`, 'utf8').trim()} `),
      );
    expect(loop, `no free loop device without a throttle rule in ${counted}`).toBeDefined();
    const backing = path.join(dir, 'disk');
    fs.writeFileSync(backing, Buffer.alloc(1 << 20));
    const attached = run('losetup', [`/dev/${loop}`, backing]);
    expect(attached.status, attached.stderr).toBe(0);
    try {
      const device = fs.readFileSync(`/sys/block/${loop}/dev`, 'utf8').trim();
      const message = (flag: string): RegExp =>
        new RegExp(
          `^Linux ≥ 6\\.10 counts a disk's I/O per v1 cgroup only once a throttle rule exists on it: containers see no I/O on .*${loop} \\(${device}\\).* \\(--enable-blkio-accounting is ${flag}\\)`,
        );
      expectCase(
        doctorIn('true'),
        'io-accounting',
        'warn',
        message('off'),
        /^start the daemon with --enable-blkio-accounting/,
      );
      // The configuration has it on, but the daemon that runs set no rule on the new disk.
      const config = path.join(dir, 'blkio.conf');
      fs.writeFileSync(config, '[lxcfs-ts]\nenable_blkio_accounting = true\n');
      expectCase(
        doctorIn('true', { args: `--config ${config}` }),
        'io-accounting',
        'warn',
        message('on in the configuration'),
        /^the flag is on but the rules are missing: is the daemon running\? its log says which disks refused a rule$/,
      );
    } finally {
      run('losetup', ['-d', `/dev/${loop}`]);
    }
  });

  // Swap is global: the host has it only for the one doctor run. The memory hierarchy is hidden in the
  // namespace, as on a kernel booted with swapaccount=0 (no memory.memsw.*).
  it('swap the kernel does not account per cgroup: WARN', () => {
    const swapFile = path.join(dir, 'swap');
    fs.writeFileSync(swapFile, Buffer.alloc(16 << 20), { mode: 0o600 });
    expect(run('mkswap', [swapFile]).status).toBe(0);
    const on = run('swapon', [swapFile]);
    expect(on.status, on.stderr).toBe(0);
    let doctor: Doctor;
    try {
      doctor = doctorIn('mount -t tmpfs lxcfs-ts-memory /sys/fs/cgroup/memory');
    } finally {
      expect(run('swapoff', [swapFile]).status).toBe(0);
    }
    expectCase(
      doctor,
      'swap',
      'warn',
      /^the host has \d+ MiB of swap but the kernel does not account it per cgroup \(no memory\.memsw\.\*\): containers see swap they cannot use$/,
      'boot with swapaccount=1 (kernel command line), or run with --disable-swap',
    );
  });

  const requestTimeout = '/proc/sys/fs/fuse/default_request_timeout';
  // Linux ≥ 6.14 has the setting. It is global: every FUSE mount made meanwhile gets it, so it is set
  // only for the one doctor run, and to an hour, which no request of another test comes near.
  it.runIf(fs.existsSync(requestTimeout))('fs.fuse.default_request_timeout set: WARN', () => {
    const before = fs.readFileSync(requestTimeout, 'utf8').trim();
    expect(before, 'the host already has a request timeout').toBe('0');
    let doctor: Doctor;
    fs.writeFileSync(requestTimeout, '3600');
    try {
      doctor = doctorIn('true');
    } finally {
      fs.writeFileSync(requestTimeout, before);
    }
    expectCase(
      doctor,
      'fuse-timeout',
      'warn',
      "fs.fuse.default_request_timeout is 3600 s: one request slower than that aborts the whole mount, and every container's view with it",
      'sysctl -w fs.fuse.default_request_timeout=0',
    );
  });
});

describe('doctor, while the daemon waits to restart a serving process that keeps dying', () => {
  /** The daemon's living child: its serving process (a killed one may linger as a zombie a moment). */
  const servingPid = (): number | undefined =>
    run('ps', ['-o', 'pid=,stat=', '--ppid', String(daemon.pid)])
      .stdout.split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([pid, state]) => pid && !state?.startsWith('Z'))
      .map(([pid]) => Number(pid))
      .at(-1);

  async function nextServingPid(after: number | undefined): Promise<number> {
    for (let i = 0; i < 400; i++) {
      const pid = servingPid();
      if (pid !== undefined && pid !== after) return pid;
      await sleep(25);
    }
    throw new Error(`the daemon started no serving process after ${after}`);
  }

  it('the daemon check says the serving process is being restarted (WARN)', async () => {
    // The daemon waits longer after each crash within a minute (0 s, 0.1 s, 0.3 s … up to 4.9 s after the
    // seventh): kill it until the wait is long enough for doctor to ask in it.
    let pid = await nextServingPid(undefined);
    for (let crash = 1; crash <= 7; crash++) {
      process.kill(pid, 'SIGKILL');
      if (crash < 7) pid = await nextServingPid(pid);
    }
    const doctor = doctorIn('true');
    expect(check(doctor.report, 'daemon'), `the daemon's log ends: ${daemon.output().slice(-2000)}`).toEqual({
      name: 'daemon',
      level: 'warn',
      message: expect.stringMatching(
        new RegExp(
          `^lxcfs-ts \\S+, pid ${daemon.pid} \\(pid file ${pidFile}\\), up .*, serving process none \\(restarting\\), mounted on ${mnt}$`,
        ),
      ),
      fix: 'its serving process is being restarted; if this persists, see its log (journalctl -u lxcfs-ts)',
    });
    expect(doctor.status).toBeGreaterThanOrEqual(1);
    expect(doctor.status).toBe(doctor.report.checks.some((entry) => entry.level === 'fail') ? 2 : 1);
    await nextServingPid(pid);
  }, 60_000);
});
