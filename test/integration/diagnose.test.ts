// `lxcfs-ts doctor` and `lxcfs-ts status` on the real host: a real daemon on a shared mountpoint, a
// private one, a foreign filesystem, a stopped (hung) serving process, a dead mount after kill -9, and
// simulated containers (own pid and mount namespaces and cgroups) whose binds are alive, shadowed, dead,
// and healed by lxcfs-ts remount.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Check, DoctorReport } from '../../src/diagnose/doctor.js';
import type { ContainerStatus, StatusReport } from '../../src/diagnose/status.js';
import { createCgroup } from '../helpers/cgroups.js';
import { lxcfsFileBinds, makeSharedDirectory, startContainer, type Container } from '../helpers/container.js';
import { Cleanup, killDaemonHard, LXCFS_TS, run, startDaemon, type Daemon } from '../helpers/processes.js';

const MEMORY_LIMIT = 256 << 20;
const DOCKER_ID = randomBytes(32).toString('hex');

const cleanup = new Cleanup();
let dir: string;
let shared: string;
let mnt: string;
let pidFile: string;
let daemon: Daemon;
/** Our files bound live, in a cgroup named as Docker's systemd driver names it; sees /mnt propagated. */
let docker: Container;
/** Its meminfo bind is covered by another bind. */
let shadowed: Container;

function cli(command: 'doctor' | 'status', args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = run(LXCFS_TS, [command, ...args], { timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function doctor(args: string[]): { status: number | null; report: DoctorReport; text: string } {
  const json = cli('doctor', [...args, '--json']);
  expect(json.stderr).toBe('');
  const text = cli('doctor', args);
  return { status: json.status, report: JSON.parse(json.stdout) as DoctorReport, text: text.stdout };
}

function check(report: DoctorReport, name: string): Check {
  const found = report.checks.find((entry) => entry.name === name);
  expect(found, `no ${name} check in ${JSON.stringify(report.checks.map((entry) => entry.name))}`).toBeDefined();
  return found!;
}

function expectedExit(report: DoctorReport): number {
  return report.checks.some((entry) => entry.level === 'fail')
    ? 2
    : report.checks.some((entry) => entry.level === 'warn')
      ? 1
      : 0;
}

function status(): StatusReport {
  const result = cli('status', ['--mountpoint', mnt, '--json']);
  expect(result.status, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as StatusReport;
}

function entryFor(report: StatusReport, container: Container): ContainerStatus {
  const found = report.containers.find((entry) => entry.pid === container.pid);
  expect(
    found,
    `container pid ${container.pid} missing from ${JSON.stringify(report.containers.map((entry) => entry.pid))}`,
  ).toBeDefined();
  return found!;
}

function states(entry: ContainerStatus): Record<string, string> {
  return Object.fromEntries(entry.files.map((file) => [file.target, file.state]));
}

beforeAll(async () => {
  dir = cleanup.tempDir('lxcfs-ts-diagnose-');
  shared = path.join(dir, 'shared');
  makeSharedDirectory(cleanup, shared);
  mnt = path.join(shared, 'lxcfs');
  pidFile = path.join(dir, 'lxcfs-ts.pid');
  daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);

  const memory = createCgroup(cleanup, 'memory', 'lxcfs-ts-diagnose').child(`docker-${DOCKER_ID}.scope`);
  memory.write('memory.limit_in_bytes', MEMORY_LIMIT);
  const cpuset = createCgroup(cleanup, 'cpuset', 'lxcfs-ts-diagnose');
  cpuset.write('cpuset.cpus', '0');
  const files = ['proc/meminfo', 'proc/uptime', 'sys/devices/system/cpu/online'];
  docker = await startContainer(cleanup, {
    binds: lxcfsFileBinds(mnt, files),
    propagated: [{ source: shared, target: '/mnt' }],
    cgroups: [memory.dir, cpuset.dir],
  });
  // A second bind over /proc/meminfo, as a runtime that mounts its own file after ours would.
  shadowed = await startContainer(cleanup, {
    binds: [
      ...lxcfsFileBinds(mnt, ['proc/meminfo', 'proc/uptime']),
      { source: '/etc/hostname', target: '/proc/meminfo' },
    ],
  });
}, 60_000);

afterAll(() => cleanup.run());

describe('doctor', () => {
  it('on this host with a live daemon on a shared mountpoint: says what it finds, and exits with the worst level', () => {
    const { status: exit, report, text } = doctor(['--mountpoint', mnt, '--pidfile', pidFile]);
    expect(exit).toBe(expectedExit(report));
    expect(check(report, 'fuse-device').level).toBe('ok');
    expect(check(report, 'cgroup-layout').message).toMatch(/hybrid/);
    for (const controller of ['memory', 'cpuset', 'cpu', 'cpuacct', 'blkio'])
      expect(check(report, `cgroup-${controller}`).level).toBe('ok');
    // This host has no swap: correct, and the fix says what would give containers swap.
    expect(fs.readFileSync('/proc/swaps', 'utf8').trim().split('\n')).toHaveLength(1);
    expect(check(report, 'swap')).toMatchObject({
      level: 'ok',
      message: expect.stringMatching(/no swap.*SwapTotal 0/),
      fix: expect.stringMatching(/swapon/),
    });
    expect(check(report, 'mountpoint')).toMatchObject({
      level: 'ok',
      message: `${mnt} is live and served by lxcfs-ts pid ${daemon.pid}`,
    });
    expect(check(report, 'propagation')).toMatchObject({ level: 'ok', message: expect.stringMatching(/is shared/) });
    const version = (
      JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string }
    ).version;
    expect(check(report, 'daemon')).toMatchObject({
      level: 'ok',
      message: expect.stringContaining(`lxcfs-ts ${version}, pid ${daemon.pid} (pid file ${pidFile}), up `),
    });
    // runc 1.1.5 (Debian 12) takes every file of the Docker recipe; no runc takes /proc/pressure/*.
    expect(check(report, 'runc')).toMatchObject({
      level: 'ok',
      message: expect.stringMatching(/^runc 1\.1\.5.*refuses proc\/pressure/),
    });
    // Linux 6.18 v1: a disk is counted only with a throttle rule; what doctor says follows the kernel's list.
    const counted = fs.readFileSync('/sys/fs/cgroup/blkio/blkio.throttle.io_serviced_recursive', 'utf8');
    const uncounted = fs
      .readdirSync('/sys/block')
      .filter(
        (disk) =>
          Number(fs.readFileSync(`/sys/block/${disk}/size`, 'utf8')) > 0 &&
          !counted.includes(fs.readFileSync(`/sys/block/${disk}/dev`, 'utf8').trim() + ' '),
      );
    const io = check(report, 'io-accounting');
    if (uncounted.length === 0) expect(io.level).toBe('ok');
    else
      expect(io).toMatchObject({
        level: 'warn',
        message: expect.stringContaining(uncounted[0]!),
        fix: expect.stringContaining('--enable-blkio-accounting'),
      });
    expect(text).toContain(`[ OK ] mountpoint: ${mnt} is live`);
    expect(text).toMatch(/^doctor: \d+ FAIL, \d+ WARN, \d+ OK$/m);
  });

  it("with a mountpoint on a private mount (this host's /), nothing mounted and no daemon: FAIL, with the fixes", () => {
    const privateDir = path.join(dir, 'private');
    fs.mkdirSync(privateDir);
    const target = path.join(privateDir, 'lxcfs');
    const { status: exit, report, text } = doctor(['--mountpoint', target, '--pidfile', path.join(dir, 'none.pid')]);
    expect(exit).toBe(2);
    expect(check(report, 'mountpoint')).toMatchObject({
      level: 'fail',
      message: `nothing is mounted on ${target}: containers that bind its files get empty files or errors`,
    });
    expect(check(report, 'propagation')).toMatchObject({
      level: 'warn',
      message: expect.stringMatching(/is private: Docker refuses/),
      fix: `make the parent shared before the daemon starts: mount --bind ${privateDir} ${privateDir} && mount --make-shared ${privateDir} (systemd hosts have / shared already)`,
    });
    expect(check(report, 'daemon')).toMatchObject({
      level: 'fail',
      message: expect.stringMatching(/no pid file .*none\.pid \(ENOENT\)/),
    });
    expect(text).toMatch(/^\[FAIL\] daemon: /m);
    expect(text).toMatch(/^ {7}fix: make the parent shared/m);
  });

  it('with a foreign filesystem on the mountpoint: FAIL, naming it', () => {
    const foreign = path.join(dir, 'foreign');
    fs.mkdirSync(foreign);
    expect(run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'lxcfs-ts-foreign', foreign]).status).toBe(0);
    const { status: exit, report } = doctor(['--mountpoint', foreign, '--pidfile', pidFile]);
    expect(exit).toBe(2);
    expect(check(report, 'mountpoint')).toMatchObject({
      level: 'fail',
      message: `${foreign} has a tmpfs filesystem (source "lxcfs-ts-foreign"), not fuse.lxcfs`,
    });
  });

  it("with another daemon's pid file: the mount is live but not that daemon's (WARN)", () => {
    const { report } = doctor(['--mountpoint', '/var/lib/lxcfs-ts-not-here', '--pidfile', pidFile]);
    expect(check(report, 'mountpoint').level).toBe('fail');
    const other = doctor(['--mountpoint', mnt, '--pidfile', path.join(dir, 'none.pid')]).report;
    expect(check(other, 'mountpoint')).toMatchObject({
      level: 'warn',
      message: expect.stringMatching(/is live, but not served by the lxcfs-ts of this pid file/),
    });
  });
});

describe('status', () => {
  it('lists each simulated container with its container id, its binds and what it reads now', () => {
    const report = status();
    expect(report).toMatchObject({ mountpoint: mnt, live: true });
    const entry = entryFor(report, docker);
    expect(entry.container).toEqual({ runtime: 'docker', id: DOCKER_ID });
    expect(entry.cgroup).toMatch(new RegExp(`/docker-${DOCKER_ID}\\.scope$`));
    expect(states(entry)).toEqual({
      '/proc/meminfo': 'alive',
      '/proc/uptime': 'alive',
      '/sys/devices/system/cpu/online': 'alive',
      '/mnt/lxcfs': 'alive',
    });
    // What it reads, checked against what it does read.
    const meminfo = docker.exec('cat', ['/proc/meminfo']).stdout;
    expect(meminfo).toMatch(new RegExp(`^MemTotal:\\s+${MEMORY_LIMIT / 1024} kB$`, 'm'));
    expect(entry.sees).toEqual({
      memTotalKb: MEMORY_LIMIT / 1024,
      cpus: 1,
      swapTotalKb: Number(/^SwapTotal:\s+(\d+)/m.exec(meminfo)![1]),
    });
    expect(entry.advice).toBeUndefined();
  });

  it('says which binds are shadowed by another mount', () => {
    const entry = entryFor(status(), shadowed);
    expect(states(entry)).toEqual({ '/proc/meminfo': 'shadowed', '/proc/uptime': 'alive' });
    expect(entry.files.find((file) => file.target === '/proc/meminfo')!.shadowedBy).toBeTruthy();
    expect(entry.advice).toMatch(/shadowed binds/);
    const text = cli('status', ['--mountpoint', mnt]).stdout;
    expect(text).toMatch(
      new RegExp(
        `^pid ${shadowed.pid} .*\\n(?: {4}.*\\n)*? {4}shadowed /proc/meminfo, covered by a mount of type \\S+$`,
        'm',
      ),
    );
    expect(text).toMatch(
      new RegExp(
        `^pid ${docker.pid} {2}docker ${DOCKER_ID.slice(0, 12)} .* sees MemTotal 256 MiB, 1 CPU, SwapTotal 0 MiB$`,
        'm',
      ),
    );
  });
});

describe('when the serving process is stopped (SIGSTOP)', () => {
  it('doctor says the mount hangs, with the fix', () => {
    const status0 = JSON.parse(
      cli('doctor', ['--mountpoint', mnt, '--pidfile', pidFile, '--json']).stdout,
    ) as DoctorReport;
    const serverPid = Number(/serving process (\d+)/.exec(check(status0, 'daemon').message)![1]);
    process.kill(serverPid, 'SIGSTOP');
    try {
      const { status: exit, report } = doctor(['--mountpoint', mnt, '--pidfile', pidFile]);
      expect(exit).toBe(2);
      expect(check(report, 'mountpoint')).toMatchObject({
        level: 'fail',
        message: expect.stringMatching(/does not answer within 5000 ms/),
        fix: expect.stringMatching(/--force.*\/sys\/fs\/fuse\/connections\/\d+\/abort/),
      });
    } finally {
      process.kill(serverPid, 'SIGCONT');
    }
  });
});

describe("when the daemon's main process is stopped (SIGSTOP)", () => {
  it('doctor says it does not answer on its control socket (WARN) while the mount still serves', () => {
    process.kill(daemon.pid, 'SIGSTOP');
    try {
      const { status: exit, report } = doctor(['--mountpoint', mnt, '--pidfile', pidFile]);
      expect(exit).toBeGreaterThanOrEqual(1);
      expect(check(report, 'daemon')).toMatchObject({
        level: 'warn',
        message: expect.stringMatching(
          new RegExp(`^lxcfs-ts pid ${daemon.pid} runs but does not answer on .*lxcfs-ts\\.sock`),
        ),
      });
      expect(check(report, 'mountpoint')).toMatchObject({
        level: 'warn',
        message: expect.stringMatching(/is live, but not served by the lxcfs-ts of this pid file/),
      });
    } finally {
      process.kill(daemon.pid, 'SIGCONT');
    }
  });
});

describe('after kill -9 of the daemon', () => {
  beforeAll(() => killDaemonHard(daemon), 30_000);

  it('doctor: the mount is dead and the pid file is stale (FAIL)', () => {
    const { status: exit, report } = doctor(['--mountpoint', mnt, '--pidfile', pidFile]);
    expect(exit).toBe(2);
    expect(check(report, 'mountpoint')).toMatchObject({
      level: 'fail',
      message: expect.stringMatching(/is dead/),
      fix: expect.stringMatching(/lxcfs-ts remount/),
    });
    expect(check(report, 'daemon')).toMatchObject({
      level: 'fail',
      message: expect.stringMatching(/not a running lxcfs-ts/),
    });
  });

  it("status: the container's binds are dead and it says to run remount", () => {
    const report = status();
    expect(report.live).toBe(false);
    const entry = entryFor(report, docker);
    expect(states(entry)).toEqual({
      '/proc/meminfo': 'dead',
      '/proc/uptime': 'dead',
      '/sys/devices/system/cpu/online': 'dead',
      '/mnt/lxcfs': 'dead',
    });
    expect(entry.sees).toBeUndefined();
    expect(entry.advice).toMatch(/lxcfs-ts remount/);
    // The container does read an error.
    expect(docker.exec('cat', ['/proc/meminfo']).stderr).toMatch(/not connected/);
  });

  it('status after a restart and lxcfs-ts remount: healed, alive again', async () => {
    daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
    const healed = run(LXCFS_TS, ['remount', '--mountpoint', mnt, '--pid', String(docker.pid)], { timeout: 30_000 });
    expect(healed.status, healed.stdout + healed.stderr).toBe(0);
    const entry = entryFor(status(), docker);
    expect(states(entry)).toMatchObject({
      '/proc/meminfo': 'alive',
      '/proc/uptime': 'alive',
      '/sys/devices/system/cpu/online': 'alive',
      '/mnt/lxcfs': 'alive',
    });
    expect(entry.sees).toMatchObject({ memTotalKb: MEMORY_LIMIT / 1024, cpus: 1 });
  }, 60_000);
});
