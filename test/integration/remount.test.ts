// Issue 6 acceptance, with real namespaces, real mounts and the real daemon: containers' bind mounts of
// our files die with the daemon (kill -9), and `lxcfs-ts remount` binds them again from the restarted
// daemon's mount, using only the host's util-linux.
//
// Layout: DIR/shared is a shared mount (like a systemd host's /) and the daemon mounts on
// DIR/shared/lxcfs. Five containers, each with its own root and cgroups and all eight files bound over
// its own, and a booby-trapped /usr/bin/mount and /usr/bin/umount:
//   three healable ones see DIR/shared at /mnt with slave propagation, so each new mount of the daemon
//     appears inside at /mnt/lxcfs (a path that does not exist on the host);
//   "hidden" has no lxcfs directory inside at all;
//   "docker-style" sees the lxcfs mount itself at /mnt (docker -v DIR/shared/lxcfs:/mnt:rslave): it holds
//     a copy of the mount that dies, and is healable only because the restarted daemon mounts on top of
//     the dead mount (like lxcfs), so that the new mount propagates into that copy.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsAt, probeFile, type MountInfoEntry } from '../../src/fuse/mount.js';
import type { NamespaceReport, RemountReport } from '../../src/remount/remount.js';
import { createCgroup } from '../helpers/cgroups.js';
import { lxcfsFileBinds, makeSharedDirectory, startContainer, type Container } from '../helpers/container.js';
import { Cleanup, LXCFS_TS, run, startDaemon, type Daemon } from '../helpers/processes.js';

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
/** Files whose host content does not change between two reads. */
const STABLE = new Set(['proc/cpuinfo', 'proc/swaps', 'sys/devices/system/cpu/online']);
const TRAP_CHECK = '--trap-check';
/** Where the healable containers see the daemon's mount. */
const LXCFS_INSIDE = '/mnt/lxcfs';

const MEMORY_LIMIT = 256 << 20;

const cleanup = new Cleanup();
let dir: string;
let mnt: string;
let daemon: Daemon;
const healable: Container[] = [];
let hidden: Container;
let dockerStyle: Container;

function remountCli(args: string[]): { status: number | null; stdout: string; stderr: string; ms: number } {
  const started = performance.now();
  const result = run(LXCFS_TS, ['remount', ...args], { timeout: 30_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, ms: performance.now() - started };
}

function all(): Container[] {
  return [...healable, hidden, dockerStyle];
}

function pidArgs(containers: Container[]): string[] {
  return containers.flatMap((container) => ['--pid', String(container.pid)]);
}

function namespaceOf(container: Container): string {
  return fs.readlinkSync(`/proc/${container.pid}/ns/mnt`);
}

function reportFor(report: RemountReport, container: Container): NamespaceReport {
  const ns = report.namespaces.find((entry) => entry.namespace === namespaceOf(container));
  expect(ns, `no report for ${namespaceOf(container)}`).toBeDefined();
  return ns!;
}

function liveDevice(): string {
  return mountsAt(mnt).at(-1)!.device;
}

/** The mount a path inside the container shows: the last one stacked at that mountpoint. */
function topMount(container: Container, target: string): MountInfoEntry | undefined {
  return container.mountInfo().filter((entry) => entry.mountPoint === target).at(-1);
}

function mountTable(container: Container): string {
  return fs.readFileSync(`/proc/${container.pid}/mountinfo`, 'utf8');
}

/** Each line's first word (unless a number) and field count: what stays put between two reads. */
function shape(text: string): string[] {
  return text.split('\n').map((line) => {
    const words = line.trim().split(/\s+/);
    return `${/^[\d.]+$/.test(words[0]!) ? '#' : words[0]} ${words.length}`;
  });
}

/** The file reads inside the container as the daemon's mount serves it to that container. */
function expectReadsCorrectly(container: Container, file: string): void {
  const lxcfsInside = container === dockerStyle ? '/mnt' : LXCFS_INSIDE;
  const own = container.exec('cat', ['/' + file]);
  const served = container.exec('cat', [path.join(lxcfsInside, file)]);
  expect(own.status, `cat /${file} in pid ${container.pid}: ${own.stderr}`).toBe(0);
  expect(served.status, `cat ${path.join(lxcfsInside, file)} in pid ${container.pid}: ${served.stderr}`).toBe(0);
  if (STABLE.has(file)) expect(own.stdout, file).toBe(served.stdout);
  else expect(shape(own.stdout), file).toEqual(shape(served.stdout));
}

/** Each container's meminfo shows its own memory limit. */
function expectOwnMemoryLimit(container: Container): void {
  expect(container.exec('cat', ['/proc/meminfo']).stdout).toMatch(new RegExp(`^MemTotal:\\s+${MEMORY_LIMIT / 1024} kB$`, 'm'));
}

function expectServedByLiveMount(container: Container, file: string): void {
  expect(topMount(container, '/' + file), `/${file} in pid ${container.pid}`).toMatchObject({ fsType: 'fuse.lxcfs', root: '/' + file, device: liveDevice() });
}

beforeAll(async () => {
  dir = cleanup.tempDir('lxcfs-ts-remount-');
  const shared = path.join(dir, 'shared');
  makeSharedDirectory(cleanup, shared);
  mnt = path.join(shared, 'lxcfs');
  daemon = await startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt);

  const start = async (name: string, propagated: { source: string; target: string }[]): Promise<Container> => {
    const [memory, cpu, cpuacct, cpuset] = ['memory', 'cpu', 'cpuacct', 'cpuset'].map((controller) => createCgroup(cleanup, controller, `lxcfs-ts-remount-${name}`));
    memory!.write('memory.limit_in_bytes', MEMORY_LIMIT);
    cpu!.write('cpu.cfs_quota_us', 50_000);
    cpuset!.write('cpuset.cpus', '0');
    const cgroups = [memory!, cpu!, cpuacct!, cpuset!].map((cgroup) => cgroup.dir);
    return startContainer(cleanup, { binds: lxcfsFileBinds(mnt, FILES), propagated, cgroups, trapped: true });
  };
  for (const name of ['a', 'b', 'c']) healable.push(await start(name, [{ source: shared, target: '/mnt' }]));
  hidden = await start('hidden', []);
  dockerStyle = await start('docker-style', [{ source: mnt, target: '/mnt' }]);
}, 60_000);

afterAll(() => cleanup.run());

describe('before the crash', () => {
  it('every container sees our eight files, served by the daemon', () => {
    for (const container of all()) for (const file of FILES) expectServedByLiveMount(container, file);
    for (const container of healable) for (const file of FILES) expectReadsCorrectly(container, file);
    for (const container of all()) expectOwnMemoryLimit(container);
    for (const container of healable) expect(topMount(container, LXCFS_INSIDE)).toMatchObject({ root: '/', device: liveDevice() });
    expect(topMount(dockerStyle, '/mnt')).toMatchObject({ root: '/', device: liveDevice() });
    expect(hidden.mountInfo().filter((entry) => entry.fsType === 'fuse.lxcfs').map((entry) => entry.root).sort()).toEqual(FILES.map((file) => '/' + file).sort());
  });

  it('the booby traps are armed: mount run inside a container runs the trap', () => {
    for (const container of all()) {
      expect(container.exec('mount', [TRAP_CHECK]).status).toBe(1);
      expect(container.trapRuns()).toEqual([`/usr/bin/mount ${TRAP_CHECK}`]);
    }
  });
});

describe('after kill -9 and a restart', () => {
  it('kill -9 of the daemon: every read inside every container fails with ENOTCONN', async () => {
    // The serving process holds the connection too; it exits once it sees its supervisor gone.
    const serving = fs.readFileSync(`/proc/${daemon.pid}/task/${daemon.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    for (let waited = 0; serving.some((pid) => fs.existsSync(`/proc/${pid}`)); waited += 50) {
      expect(waited, 'the serving process outlived its supervisor by 10 s').toBeLessThan(10_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    for (const container of all()) {
      for (const file of FILES) {
        const read = container.exec('cat', ['/' + file]);
        expect(read.status, file).not.toBe(0);
        expect(read.stderr, file).toMatch(/Transport endpoint is not connected/);
      }
    }
  });

  it('remount --dry-run lists exactly what it would do and changes nothing', async () => {
    daemon = await startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt);
    const before = all().map(mountTable);

    const json = remountCli(['--mountpoint', mnt, '--dry-run', '--json', ...pidArgs(all())]);
    expect(json.status, json.stderr).toBe(1); // two containers cannot be healed
    const report = JSON.parse(json.stdout) as RemountReport;
    expect(report).toMatchObject({ mountpoint: mnt, dryRun: true, device: liveDevice() });
    for (const container of healable) {
      const ns = reportFor(report, container);
      expect(ns).toMatchObject({ outcome: 'would-heal', lxcfsDir: LXCFS_INSIDE });
      const planned = ns.mounts.filter((mount) => mount.action === 'would-rebind').map((mount) => mount.target);
      expect([...planned].sort()).toEqual(FILES.map((file) => '/' + file).sort());
      const namespace = `/proc/${container.pid}/ns/mnt`;
      expect(ns.commands).toEqual([
        `nsenter --pid=/proc/${container.pid}/ns/pid -- umount -i -n -N ${namespace} --lazy ${planned.join(' ')}`,
        ...planned.map((target) => `mount -i -n -N ${namespace} --bind ${LXCFS_INSIDE}${target} ${target}`),
      ]);
    }
    expect(reportFor(report, dockerStyle)).toMatchObject({ outcome: 'would-heal', lxcfsDir: '/mnt' });
    expect(report.summary).toEqual({ namespaces: 5, rebound: 32, skipped: 4, failed: 8 });

    const text = remountCli(['--mountpoint', mnt, '--dry-run', ...pidArgs(all())]);
    expect(text.status).toBe(1);
    expect(text.stdout).toContain(`  mount -i -n -N /proc/${healable[0]!.pid}/ns/mnt --bind ${LXCFS_INSIDE}/proc/meminfo /proc/meminfo\n`);
    expect(text.stdout).toMatch(/\nremount: 5 namespaces seen, 32 files would be re-bound, 4 skipped, 8 failed \(dry run: nothing changed\)\n$/);

    expect(all().map(mountTable)).toEqual(before);
    for (const container of all()) expect(container.exec('cat', ['/proc/meminfo']).stderr).toMatch(/not connected/);
  });

  it('without --pid, the scan of /proc finds every container by its mount table (dry run)', () => {
    const result = remountCli(['--mountpoint', mnt, '--dry-run', '--json']);
    const report = JSON.parse(result.stdout) as RemountReport;
    expect(report.namespaces.map((ns) => ns.namespace)).not.toContain(fs.readlinkSync('/proc/self/ns/mnt'));
    // Each is entered through its init, not through the unshare(1) that shares its mount namespace.
    for (const container of healable) expect(reportFor(report, container)).toMatchObject({ pid: container.pid, outcome: 'would-heal' });
    expect(reportFor(report, dockerStyle)).toMatchObject({ pid: dockerStyle.pid, outcome: 'would-heal' });
    expect(reportFor(report, hidden)).toMatchObject({ pid: hidden.pid, outcome: 'not-healable' });
  });

  it('remount heals every file of every healable container within 2 s and leaves the others untouched', () => {
    const untouched = mountTable(hidden);
    const result = remountCli(['--mountpoint', mnt, '--json', ...pidArgs(all())]);
    expect(result.ms).toBeLessThan(2000);
    expect(result.status, 'one container cannot be healed').toBe(1);
    const report = JSON.parse(result.stdout) as RemountReport;
    expect(report.summary).toEqual({ namespaces: 5, rebound: 32, skipped: 4, failed: 8 });
    for (const container of [...healable, dockerStyle]) {
      expect(reportFor(report, container).outcome).toBe('healed');
      for (const file of FILES) {
        expectServedByLiveMount(container, file);
        expectReadsCorrectly(container, file);
      }
      expectOwnMemoryLimit(container);
    }

    expect(reportFor(report, hidden)).toMatchObject({
      outcome: 'not-healable',
      reason: 'no lxcfs directory is visible in this namespace, so there is nothing to bind from',
      fix: expect.stringContaining('restart the container'),
    });
    expect(mountTable(hidden)).toEqual(untouched);
    expect(hidden.exec('cat', ['/proc/meminfo']).stderr).toMatch(/not connected/);
  });

  it('a second remount changes nothing and says so', () => {
    const before = all().map(mountTable);
    const healed = remountCli(['--mountpoint', mnt, ...pidArgs(healable)]);
    expect(healed.status, healed.stderr).toBe(0);
    expect(healed.stdout).toBe(
      healable.map((container) => `${namespaceOf(container)} (pid ${container.pid}): nothing to do (9 live)\n`).join('') +
        'remount: 3 namespaces seen, 0 files re-bound, 27 skipped, 0 failed; nothing changed\n',
    );
    const everyone = remountCli(['--mountpoint', mnt, ...pidArgs(all())]);
    expect(everyone.status).toBe(1);
    expect(everyone.stdout).toContain(`${namespaceOf(hidden)} (pid ${hidden.pid}): not healable: no lxcfs directory is visible in this namespace`);
    expect(everyone.stdout).toMatch(/\nremount: 5 namespaces seen, 0 files re-bound, 36 skipped, 8 failed; nothing changed\n$/);
    expect(all().map(mountTable)).toEqual(before);
  });

  it("never ran the containers' booby-trapped mount or umount", () => {
    for (const container of all()) expect(container.trapRuns()).toEqual([`/usr/bin/mount ${TRAP_CHECK}`]);
  });
});

describe('migrating a host from lxcfs', () => {
  it("containers of a stopped Debian lxcfs are re-bound to lxcfs-ts on the same mountpoint", async () => {
    const shared = path.join(dir, 'migration');
    makeSharedDirectory(cleanup, shared);
    const mountpoint = path.join(shared, 'lxcfs');
    fs.mkdirSync(mountpoint);
    const lxcfs = spawn('lxcfs', ['-p', path.join(dir, 'lxcfs.pid'), mountpoint], { stdio: 'ignore' });
    const lxcfsExited = once(lxcfs, 'exit');
    cleanup.add(() => {
      if (lxcfs.exitCode === null && lxcfs.signalCode === null) lxcfs.kill('SIGKILL');
    });
    for (let waited = 0; !(mountsAt(mountpoint).length > 0 && (await probeFile(path.join(mountpoint, 'proc/uptime'), 2000)).state === 'live'); waited += 50) {
      expect(lxcfs.exitCode, 'Debian lxcfs exited: is it installed? (bash scripts/test.sh installs it)').toBeNull();
      expect(waited, 'lxcfs did not mount within 15 s').toBeLessThan(15_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const lxcfsDevice = mountsAt(mountpoint).at(-1)!.device;
    const container = await startContainer(cleanup, { binds: lxcfsFileBinds(mountpoint, FILES), propagated: [{ source: shared, target: '/mnt' }], trapped: true });
    for (const file of FILES) expect(topMount(container, '/' + file), file).toMatchObject({ fsType: 'fuse.lxcfs', device: lxcfsDevice });

    // systemctl stop lxcfs
    lxcfs.kill('SIGTERM');
    await lxcfsExited;
    expect(container.exec('cat', ['/proc/meminfo']).stderr).toMatch(/Transport endpoint is not connected/);

    await startDaemon(cleanup, ['-p', path.join(dir, 'migration.pid'), mountpoint], mountpoint);
    const result = remountCli(['--mountpoint', mountpoint, '--json', '--pid', String(container.pid)]);
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect((JSON.parse(result.stdout) as RemountReport).summary).toEqual({ namespaces: 1, rebound: 8, skipped: 1, failed: 0 });
    const device = mountsAt(mountpoint).at(-1)!.device;
    for (const file of FILES) {
      expect(topMount(container, '/' + file), file).toMatchObject({ fsType: 'fuse.lxcfs', root: '/' + file, device });
      expectReadsCorrectly(container, file);
    }
    expect(container.trapRuns()).toEqual([]);
  });
});

describe('errors', () => {
  it('one line on stderr and status 1 when nothing answers at the mountpoint', () => {
    const result = remountCli(['--mountpoint', path.join(dir, 'nothing'), '--timeout', '0.3']);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `lxcfs-ts remount: ${path.join(dir, 'nothing')} did not answer a read within 0.3 s (found nothing mounted there); start the daemon first (systemctl start lxcfs-ts) or pass --mountpoint\n`,
    );
  });

  it('refuses a bad --timeout or --pid with a usage error', () => {
    expect(remountCli(['--timeout', 'soon']).stderr).toMatch(/--timeout <s>' argument 'soon' is invalid. expected a positive number of seconds/);
    expect(remountCli(['--pid', '0']).stderr).toMatch(/expected a process id/);
  });
});
