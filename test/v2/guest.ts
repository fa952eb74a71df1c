// Helpers for the v2 guest suite (test/v2/*.v2.ts): cgroups at the root of the guest's real cgroup2
// hierarchy, processes started inside them, loop devices, zram swap, and Debian's lxcfs as a reference.
// Each helper registers its undoing with the test's Cleanup (test/helpers/processes.ts).

import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, type Cleanup } from '../helpers/processes.js';

export const CGROUP_ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** True when the root of the cgroup hierarchy is a cgroup2 mount (it is, in the guest). */
export function isCgroup2(dir = CGROUP_ROOT): boolean {
  return fs.statfsSync(dir).type === CGROUP2_SUPER_MAGIC;
}

export function readCgroup(cgroup: string, file: string): string {
  return fs.readFileSync(path.join(cgroup, file), 'utf8').trim();
}

/** The cgroup path of a process as the kernel shows it (`0::/a/b` gives `/a/b`). */
export function cgroupOf(pid: number | 'self'): string {
  const line = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`process ${pid} has no cgroup2 line`);
  return line.slice(3);
}

/**
 * Makes a new cgroup below `parent` (the root by default) with a unique name, turns on in the parent
 * every controller the parent has, and writes `settings` into it (`{ 'memory.max': '500M' }`). At
 * cleanup, kills whatever still runs in it and removes it. Nest by passing the returned path as the
 * parent of the next one; cgroup v2 allows processes only in leaves (except at the root).
 */
export function makeCgroup(cleanup: Cleanup, settings: Record<string, string> = {}, parent = CGROUP_ROOT, name?: string): string {
  const dir = path.join(parent, name ?? `lxcfs-ts-test-${process.pid}-${randomBytes(3).toString('hex')}`);
  const controllers = readCgroup(parent, 'cgroup.controllers').split(/\s+/).filter(Boolean);
  const enabled = new Set(readCgroup(parent, 'cgroup.subtree_control').split(/\s+/).filter(Boolean));
  const missing = controllers.filter((c) => !enabled.has(c));
  if (missing.length > 0) fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '));
  fs.mkdirSync(dir);
  cleanup.add(() => removeCgroup(dir));
  for (const [file, value] of Object.entries(settings)) fs.writeFileSync(path.join(dir, file), value);
  return dir;
}

/** Kills every process in the cgroup (cgroup.kill, Linux 5.14+), waits until it is empty, removes it. */
async function removeCgroup(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  fs.writeFileSync(path.join(dir, 'cgroup.kill'), '1');
  for (let i = 0; i < 200 && /^populated 1$/m.test(readCgroup(dir, 'cgroup.events')); i++) await sleep(25);
  fs.rmdirSync(dir);
}

/** `sh -c` prefix that moves the shell into CGROUP, then execs the command: the command starts there. */
function inCgroup(cgroup: string, command: string, args: string[]): string[] {
  return ['-c', 'echo 0 > "$1/cgroup.procs" && shift && exec "$@"', 'sh', cgroup, command, ...args];
}

/** Runs a command inside a cgroup to completion. */
export function runIn(cgroup: string, command: string, args: string[], options: { timeout?: number; input?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync('sh', inCgroup(cgroup, command, args), {
    encoding: 'utf8',
    timeout: options.timeout ?? 60_000,
    input: options.input,
    env: { ...process.env, LC_ALL: 'C' },
  });
}

/** Starts a command inside a cgroup; it is killed at cleanup (and by the cgroup's removal). */
export function spawnIn(cleanup: Cleanup, cgroup: string, command: string, args: string[]): ChildProcess {
  const child = spawn('sh', inCgroup(cgroup, command, args), { stdio: ['pipe', 'pipe', 'pipe'] });
  cleanup.own(child);
  return child;
}

/** A loop block device on a sparse file in /tmp (the guest's tmpfs), detached at cleanup. */
export function makeLoopDevice(cleanup: Cleanup, dir: string, sizeMiB = 64): { device: string; majMin: string } {
  const image = path.join(dir, `loop-${randomBytes(3).toString('hex')}.img`);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMiB * 2 ** 20);
  const result = run('losetup', ['--find', '--show', image]);
  if (result.status !== 0) throw new Error(`losetup failed: ${result.stderr}`);
  const device = result.stdout.trim();
  cleanup.add(() => {
    run('losetup', ['--detach', device]);
  });
  return { device, majMin: fs.readFileSync(`/sys/block/${path.basename(device)}/dev`, 'utf8').trim() };
}

/** Real swap: /dev/zram0 (compressed RAM) of the given size, turned off and reset at cleanup. */
export function enableZramSwap(cleanup: Cleanup, sizeMiB = 256): string {
  const device = '/dev/zram0';
  fs.writeFileSync('/sys/block/zram0/disksize', `${sizeMiB}M`);
  cleanup.add(() => fs.writeFileSync('/sys/block/zram0/reset', '1'));
  for (const [command, args] of [['mkswap', [device]], ['swapon', [device]]] as const) {
    const result = run(command, [...args]);
    if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
  }
  cleanup.add(() => {
    run('swapoff', [device]);
  });
  return device;
}

/** One value of a /proc/meminfo-style text, in kB. */
export function meminfoValue(text: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
  if (!match) throw new Error(`no ${key} in:\n${text}`);
  return Number(match[1]);
}

/** Runs `script` as pid 1 of a fresh pid + mount namespace started in `cgroup`, with `files` of the
 * lxcfs mount `mnt` bound over its own (what `docker run -v /var/lib/lxcfs/proc/X:/proc/X` does). */
export function inContainer(cgroup: string, mnt: string, files: string[], script: string): string {
  const binds = files.map((file) => `mount --bind ${mnt}/${file} /${file}`).join(' && ');
  const result = runIn(cgroup, 'unshare', ['--pid', '--fork', '--mount', '--mount-proc', '--propagation', 'private', 'sh', '-c', `${binds} || exit 1\n${script}`], { timeout: 170_000 });
  if (result.status !== 0) throw new Error(`container script failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}
