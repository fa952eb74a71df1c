// `lxcfs-ts doctor` and `lxcfs-ts status` on a real cgroup2 kernel (Debian 12's 6.1: no
// FUSE_NOTIFY_RESEND) with real swap (zram), and a simulated container in a cgroup named as Docker's
// systemd driver names it.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Check, DoctorReport } from '../../src/diagnose/doctor.js';
import type { StatusReport } from '../../src/diagnose/status.js';
import { Cleanup, LXCFS_TS, run, startDaemon, type Daemon } from '../helpers/processes.js';
import { CGROUP_ROOT, enableZramSwap, makeCgroup, readCgroup, runIn, spawnIn } from './guest.js';

const MiB = 1024 * 1024;
const DOCKER_ID = randomBytes(32).toString('hex');
const cleanup = new Cleanup();
let mnt: string;
let pidFile: string;
let daemon: Daemon;
let delegated: string[];
let containerPid: number;

function check(report: DoctorReport, name: string): Check {
  const found = report.checks.find((entry) => entry.name === name);
  expect(found, name).toBeDefined();
  return found!;
}

beforeAll(async () => {
  const dir = cleanup.tempDir();
  mnt = path.join(dir, 'mnt');
  pidFile = path.join(dir, 'pid');
  enableZramSwap(cleanup, 256);
  // What the root hands down before any test cgroup turns controllers on: doctor judges that.
  delegated = readCgroup(CGROUP_ROOT, 'cgroup.subtree_control').split(/\s+/).filter(Boolean);
  daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
});

afterAll(() => cleanup.run());

describe('doctor on cgroup2 and Linux 6.1', () => {
  it('says the layout, which controllers reach containers, no RESEND (WARN), and accounted swap', () => {
    const result = run(LXCFS_TS, ['doctor', '--mountpoint', mnt, '--pidfile', pidFile, '--json', '--timeout', '20'], {
      timeout: 170_000,
    });
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(result.status).toBe(
      report.checks.some((c) => c.level === 'fail') ? 2 : report.checks.some((c) => c.level === 'warn') ? 1 : 0,
    );
    expect(check(report, 'cgroup-layout').message).toBe('cgroup v2 (unified)');
    for (const controller of ['memory', 'cpuset', 'cpu', 'io']) {
      expect(check(report, `cgroup-${controller}`).level, controller).toBe(
        delegated.includes(controller) ? 'ok' : 'warn',
      );
    }
    expect(check(report, 'fuse-protocol')).toMatchObject({
      level: 'warn',
      message: expect.stringMatching(
        /^Linux 6\.1\..*the daemon negotiated FUSE 7\.\d+ with the kernel's 7\.38: no FUSE_NOTIFY_RESEND/,
      ),
    });
    expect(check(report, 'io-accounting')).toMatchObject({ level: 'ok', message: expect.stringMatching(/io\.stat/) });
    expect(check(report, 'mountpoint')).toMatchObject({
      level: 'ok',
      message: `${mnt} is live and served by lxcfs-ts pid ${daemon.pid}`,
    });
    expect(check(report, 'daemon').level).toBe('ok');
  });

  it('swap: the zram swap is accounted per cgroup (memory.swap.*) once a child cgroup has memory', () => {
    makeCgroup(cleanup, { 'memory.max': `${100 * MiB}` });
    const report = JSON.parse(
      run(LXCFS_TS, ['doctor', '--mountpoint', mnt, '--pidfile', pidFile, '--json', '--timeout', '20'], {
        timeout: 170_000,
      }).stdout,
    ) as DoctorReport;
    expect(check(report, 'swap')).toEqual({
      name: 'swap',
      level: 'ok',
      message: '256 MiB of swap on the host, accounted per cgroup (memory.swap.*)',
    });
  });
});

describe('doctor in a cgroup namespace, as in a container', () => {
  it('rooted at a cgroup whose parent hands down only memory, which it does not enable below: not available, not enabled (WARN)', () => {
    const parent = makeCgroup(cleanup);
    const nsRoot = makeCgroup(cleanup, {}, parent);
    const others = readCgroup(parent, 'cgroup.subtree_control')
      .split(/\s+/)
      .filter((c) => c && c !== 'memory');
    fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), others.map((c) => `-${c}`).join(' '));
    expect(readCgroup(nsRoot, 'cgroup.controllers')).toBe('memory');
    // The cgroup2 mount of the new cgroup namespace shows nsRoot as its top; our mount is made shared in
    // the new mount namespace so that only the cgroups decide.
    const result = runIn(
      nsRoot,
      'unshare',
      [
        '--cgroup',
        '--mount',
        '--propagation',
        'private',
        'sh',
        '-ec',
        `umount -l ${CGROUP_ROOT}; mount -t cgroup2 none ${CGROUP_ROOT}; mount --make-shared ${mnt}; exec "$0" doctor --mountpoint ${mnt} --pidfile ${pidFile} --json --timeout 20`,
        LXCFS_TS,
      ],
      { timeout: 170_000 },
    );
    expect(result.stderr).toBe('');
    const report = JSON.parse(result.stdout) as DoctorReport;
    expect(report.checks.filter((c) => c.level === 'fail')).toEqual([]);
    expect(result.status).toBe(1);
    expect(check(report, 'cgroup-layout').message).toBe('cgroup v2 (unified)');
    expect(check(report, 'cgroup-memory')).toEqual({
      name: 'cgroup-memory',
      level: 'warn',
      message:
        "memory is not enabled for child cgroups (cgroup.subtree_control): containers get no memory files, so meminfo, swaps, pressure/memory show the host's values",
      fix: 'echo +memory > /sys/fs/cgroup/cgroup.subtree_control (container runtimes and systemd usually do this)',
    });
    expect(check(report, 'cgroup-cpu')).toEqual({
      name: 'cgroup-cpu',
      level: 'warn',
      message:
        "the cpu controller is not available: stat, uptime, --enable-cfs CPU counts, loadavg (-l), pressure/cpu show the host's values",
      fix: "this is a cgroup namespace whose parent cgroup does not hand cpu down: enable it in the parent's cgroup.subtree_control, and run lxcfs-ts doctor on the host to see the host's cgroups",
    });
    // No cgroup below its top has memory files: whether swap is accounted cannot be told from here.
    expect(check(report, 'swap')).toMatchObject({
      level: 'ok',
      message: expect.stringMatching(
        /^256 MiB of swap on the host; whether the kernel accounts it per cgroup \(memory\.swap\.\*\) shows only once/,
      ),
    });
  });
});

describe('status on cgroup2', () => {
  beforeAll(async () => {
    const cgroup = makeCgroup(cleanup, { 'memory.max': `${300 * MiB}` }, CGROUP_ROOT, `docker-${DOCKER_ID}.scope`);
    const binds = ['proc/meminfo', 'sys/devices/system/cpu/online']
      .map((file) => `mount --bind ${mnt}/${file} /${file}`)
      .join(' && ');
    const unshare = spawnIn(cleanup, cgroup, 'unshare', [
      '--pid',
      '--fork',
      '--mount',
      '--mount-proc',
      '--propagation',
      'private',
      'sh',
      '-c',
      `${binds} && echo ready && exec sleep 1000`,
    ]);
    await new Promise<void>((resolve, reject) => {
      unshare.stdout!.on('data', (chunk: Buffer) => (chunk.toString().includes('ready') ? resolve() : undefined));
      unshare.on('exit', (code) => reject(new Error(`the container exited (${code})`)));
    });
    containerPid = Number(run('pgrep', ['-P', String(unshare.pid)]).stdout.trim());
  });

  it('lists the container with its Docker id, alive binds and its memory limit', () => {
    const result = run(LXCFS_TS, ['status', '--mountpoint', mnt, '--json', '--timeout', '20'], { timeout: 170_000 });
    expect(result.status, result.stderr).toBe(0);
    const entry = (JSON.parse(result.stdout) as StatusReport).containers.find((c) => c.pid === containerPid);
    expect(entry, `pid ${containerPid} in ${result.stdout}`).toBeDefined();
    expect(entry!.container).toEqual({ runtime: 'docker', id: DOCKER_ID });
    expect(entry!.cgroup).toBe(`/docker-${DOCKER_ID}.scope`);
    // Without a root of its own (no pivot_root), the container also holds its copy of the daemon's mount.
    expect(entry!.files.map((file) => [file.target, file.state])).toEqual([
      [mnt, 'alive'],
      ['/proc/meminfo', 'alive'],
      ['/sys/devices/system/cpu/online', 'alive'],
    ]);
    expect(entry!.sees?.memTotalKb).toBe(300 * 1024);
  });
});
