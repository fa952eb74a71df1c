// Starting the daemon against everything that can already be at the mountpoint, and bad input:
// each failure is one line on stderr, a non-zero exit, and nothing left mounted or half-done.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Cleanup, IN_V2_GUEST, LXCFS_TS, isMounted, killDaemonHard, run, startDaemon, startFixture, TIME_SCALE } from '../helpers/processes.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

interface Failure {
  status: number | null;
  stderr: string;
}

function startExpectingFailure(args: string[], env: NodeJS.ProcessEnv = {}): Failure {
  const result = run('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), LXCFS_TS, ...args], { timeout: 20_000 * TIME_SCALE });
  return { status: result.status, stderr: result.stderr };
}

function expectOneLineError(failure: Failure, pattern: RegExp): void {
  expect(failure.status).not.toBe(0);
  expect(failure.status).not.toBeNull();
  const lines = failure.stderr.trim().split('\n');
  expect(lines, failure.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

function layout(): { dir: string; mnt: string; pid: string } {
  const dir = cleanup.tempDir();
  return { dir, mnt: path.join(dir, 'mnt'), pid: path.join(dir, 'pid') };
}

// The v2 guest re-runs this file to prove its kernel-facing checks on Linux 6.1. Checks of the command
// line and the config alone are the same on every kernel: the guest, where each start of the command
// costs seconds, leaves them to the host suite.
const userlandOnly = it.skipIf(IN_V2_GUEST);

describe('bad input', () => {
  userlandOnly('rejects an unknown flag', () => {
    const { mnt, pid } = layout();
    expectOneLineError(startExpectingFailure(['--bogus', '-p', pid, mnt]), /unknown option '--bogus'/);
    expect(fs.existsSync(mnt)).toBe(false);
    expect(fs.existsSync(pid)).toBe(false);
  });

  userlandOnly('rejects a config file with an unknown key, and a bad environment value', () => {
    const { dir, mnt, pid } = layout();
    const conf = path.join(dir, 'bad.conf');
    fs.writeFileSync(conf, '[lxcfs-ts]\nenable_cfss = true\n');
    expectOneLineError(startExpectingFailure(['--config', conf, '-p', pid, mnt]), /unknown key "enable_cfss"/);
    expectOneLineError(startExpectingFailure(['-p', pid, mnt], { LXCFS_TS_READERS: 'many' }), /LXCFS_TS_READERS/);
    expectOneLineError(startExpectingFailure(['--config', path.join(dir, 'missing.conf'), '-p', pid, mnt]), /missing\.conf/);
    expect(fs.existsSync(mnt) || fs.existsSync(pid)).toBe(false);
  });

  userlandOnly('rejects a config key set twice, and a --proc-root or --cgroup-root that does not exist', () => {
    const { dir, mnt, pid } = layout();
    const conf = path.join(dir, 'twice.conf');
    fs.writeFileSync(conf, '[lxcfs-ts]\nenable_cfs = true\nenable_cfs = false\n');
    expectOneLineError(startExpectingFailure(['--config', conf, '-p', pid, mnt]), /key "enable_cfs" is set twice \(lines 2 and 3\)/);
    const missing = path.join(dir, 'no-such-root');
    expectOneLineError(startExpectingFailure(['--proc-root', missing, '-p', pid, mnt]), new RegExp(`^lxcfs-ts: option --proc-root: ${missing} does not exist$`));
    expectOneLineError(startExpectingFailure(['-p', pid, mnt], { LXCFS_TS_CGROUP_ROOT: missing }), new RegExp(`^lxcfs-ts: environment LXCFS_TS_CGROUP_ROOT: ${missing} does not exist$`));
    expectOneLineError(startExpectingFailure(['--cgroup-root', conf, '-p', pid, mnt]), /option --cgroup-root: .* is not a directory$/);
    expect(fs.existsSync(mnt) || fs.existsSync(pid)).toBe(false);
  });

  userlandOnly('rejects a mountpoint whose parent is missing, or that is a regular file', () => {
    const { dir, pid } = layout();
    expectOneLineError(startExpectingFailure(['-p', pid, path.join(dir, 'no/such/mnt')]), /parent .* does not exist/);
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'x');
    expectOneLineError(startExpectingFailure(['-p', pid, file]), /is not a directory/);
    expect(fs.existsSync(pid)).toBe(false);
  });

  it('refuses a mountpoint that has another filesystem mounted on it', () => {
    const { mnt, pid } = layout();
    fs.mkdirSync(mnt);
    expect(run('mount', ['-t', 'tmpfs', 'busy', mnt]).status).toBe(0);
    expectOneLineError(startExpectingFailure(['-p', pid, mnt]), /already has a tmpfs filesystem/);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === mnt)).toHaveLength(1);
    expect(fs.existsSync(pid)).toBe(false);
  });

  it('says so when /dev/fuse is missing', () => {
    const { mnt, pid } = layout();
    // A private mount namespace with an empty /dev (but /dev/null) stands in for a host without FUSE.
    const script = `mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3 && exec "$@"`;
    const result = run('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', LXCFS_TS, '-p', pid, mnt]);
    expectOneLineError({ status: result.status, stderr: result.stderr }, /cannot open \/dev\/fuse: ENOENT/);
    expect(fs.existsSync(pid)).toBe(false);
  });
});

describe('what is already at the mountpoint', () => {
  it('refuses to start over a live daemon, and never touches its pid file', async () => {
    const { dir, mnt, pid } = layout();
    const first = await startDaemon(cleanup, ['-p', pid, mnt], mnt);
    expectOneLineError(startExpectingFailure(['-p', path.join(dir, 'other.pid'), mnt]), /already served by a running lxcfs/);
    expectOneLineError(startExpectingFailure(['-p', pid, path.join(dir, 'mnt2')]), new RegExp(`belongs to running lxcfs-ts process ${first.pid}`));
    expect(fs.readFileSync(pid, 'utf8')).toBe(`${first.pid}\n`);
    expect(fs.existsSync(path.join(dir, 'other.pid'))).toBe(false);
    expect(fs.readFileSync(path.join(mnt, 'proc/cpuinfo'), 'utf8')).toBe(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    expect((await first.stop()).code).toBe(0);
  });

  it('mounts on top of the dead mount of a killed daemon, replaces its stale pid file, and clears both at stop', async () => {
    const { mnt, pid } = layout();
    const first = await startDaemon(cleanup, ['-p', pid, mnt], mnt);
    await killDaemonHard(first);
    expect(isMounted(mnt)).toBe(true);
    expect(run('cat', [path.join(mnt, 'proc/uptime')]).stderr).toMatch(/not connected/);
    const second = await startDaemon(cleanup, ['-p', pid, mnt], mnt);
    // At error level: containers' reads failed from the crash until they are re-bound.
    expect(second.output()).toMatch(/"level":50,.*"msg":"the previous daemon died without unmounting \(a crash or kill -9\); mounting on top of its dead mount/);
    expect(fs.readFileSync(path.join(mnt, 'proc/uptime'), 'utf8')).toMatch(/^\d+\.\d\d /);
    // The dead mount stays below ours: containers holding a copy of it receive ours by propagation.
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === mnt)).toHaveLength(2);
    expect((await second.stop()).code).toBe(0);
    expect(isMounted(mnt)).toBe(false);
  });

  it('refuses a hung lxcfs mount and names the fix; --force aborts it and serves', async () => {
    const { mnt, pid } = layout();
    fs.mkdirSync(mnt);
    await startFixture(cleanup, mnt, 'hang');
    expectOneLineError(startExpectingFailure(['-p', pid, mnt]), /does not answer .*--force.*abort/);
    expect(fs.existsSync(pid)).toBe(false);
    const daemon = await startDaemon(cleanup, ['--force', '-p', pid, mnt], mnt);
    expect(daemon.output()).toMatch(/aborted a hung lxcfs mount \(--force\); mounting on top of it/);
    expect(fs.readFileSync(path.join(mnt, 'sys/devices/system/cpu/online'), 'utf8')).toBe(fs.readFileSync('/sys/devices/system/cpu/online', 'utf8'));
    expect((await daemon.stop()).code).toBe(0);
    expect(isMounted(mnt)).toBe(false);
  }, 30_000 * TIME_SCALE);

  it('takes a daemon that answers late for a live one, and --force never aborts it', async () => {
    const { mnt, pid } = layout();
    fs.mkdirSync(mnt);
    // It answers each request 2.5 s late, as a daemon on an overloaded host (or in an emulated guest,
    // on its first requests) can.
    await startFixture(cleanup, mnt, 'slow');
    expectOneLineError(startExpectingFailure(['-p', pid, mnt]), /already served by a running lxcfs/);
    expectOneLineError(startExpectingFailure(['--force', '-p', pid, mnt]), /already served by a running lxcfs/);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === mnt)).toHaveLength(1);
    expect(fs.existsSync(pid)).toBe(false);
  }, 60_000 * TIME_SCALE);
});

describe('a mountpoint given through a symlink', () => {
  function mountsOn(point: string): number {
    return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === point).length;
  }

  it('serves on the directory the symlink named at start, refuses a second daemon there alike, and unmounts it at stop', async () => {
    const { dir, mnt, pid } = layout();
    fs.mkdirSync(mnt);
    const link = path.join(dir, 'link');
    fs.symlinkSync(mnt, link);
    const first = await startDaemon(cleanup, ['-p', pid, link], mnt);
    expect(mountsOn(mnt)).toBe(1);
    // The same refusal, at once, whether the second daemon is given the directory or a symlink to it.
    const direct = startExpectingFailure(['-p', path.join(dir, 'direct.pid'), mnt]);
    const throughLink = startExpectingFailure(['-p', path.join(dir, 'link.pid'), link]);
    expectOneLineError(direct, /already served by a running lxcfs/);
    expectOneLineError(throughLink, /already served by a running lxcfs/);
    expect(mountsOn(mnt)).toBe(1);
    // remount finds the daemon through the symlink too (looking only at a namespace of ours: other
    // processes' mounts on this host are not this test's business).
    const namespace = spawn('unshare', ['--mount', '--propagation', 'slave', 'sleep', '60'], { stdio: 'ignore' });
    cleanup.own(namespace);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const remount = run(LXCFS_TS, ['remount', '--mountpoint', link, '--dry-run', '--timeout', String(5 * TIME_SCALE), '--pid', String(namespace.pid)], { timeout: 30_000 * TIME_SCALE });
    expect(remount.status, remount.stdout + remount.stderr).toBe(0);
    // Pointing the symlink elsewhere after start changes nothing: stop unmounts where we mounted.
    const elsewhere = path.join(dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    expect(run('mount', ['-t', 'tmpfs', 'bystander', elsewhere]).status).toBe(0);
    fs.rmSync(link);
    fs.symlinkSync(elsewhere, link);
    expect((await first.stop()).code).toBe(0);
    expect(mountsOn(mnt)).toBe(0);
    expect(mountsOn(elsewhere)).toBe(1);
  }, 60_000 * TIME_SCALE);

  it('unmounts at stop when a parent directory is the symlink', async () => {
    const { dir, pid } = layout();
    const real = path.join(dir, 'real');
    fs.mkdirSync(path.join(real, 'mnt'), { recursive: true });
    fs.symlinkSync(real, path.join(dir, 'alias'));
    const daemon = await startDaemon(cleanup, ['-p', pid, path.join(dir, 'alias/mnt')], path.join(real, 'mnt'));
    expect(mountsOn(path.join(real, 'mnt'))).toBe(1);
    expect(fs.readFileSync(path.join(dir, 'alias/mnt/proc/uptime'), 'utf8')).toMatch(/^\d+\.\d\d /);
    expect((await daemon.stop()).code).toBe(0);
    expect(mountsOn(path.join(real, 'mnt'))).toBe(0);
  }, 30_000 * TIME_SCALE);
});
