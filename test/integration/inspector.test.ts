// SIGUSR1 is Node's "open the debugger" signal: a Node process that has not switched it off starts a
// WebSocket inspector on 127.0.0.1:9229, and whoever connects runs code as that process (root, here).
// No lxcfs-ts process may ever open it, whenever the signal arrives: the daemon's main process, its
// serving process (at its start after a crash too) and the helper commands, at several points of their
// start-up and once they run. Outside the first instant of a process (before its first instruction,
// where the kernel's default action ends it) the signal must change nothing.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { INSPECTOR_BANNER, listeningPorts } from '../helpers/inspector.js';
import { childPids, Cleanup, lxcfsCommand, run, spawnDaemon, startDaemon, TIME_SCALE } from '../helpers/processes.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

/** Delays after spawn() at which a signal is sent. At the first ones the launcher's shell may not have run
 * its first line yet (on a loaded machine, for several milliseconds). */
const DELAYS_MS = [0, 5, 20, 60, 150, 400];
/** By then the launcher has started on any machine: the signal must find it protected. */
const STARTED_MS = 400;

/** Whether SIGUSR1 is ignored, blocked or handled in `pid` (its main thread): false while the process
 * has not yet run an instruction of ours, and the kernel's default action (termination) still applies. */
function guardsSigusr1(pid: number): boolean {
  let status: string;
  try {
    status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return false; // gone
  }
  const bit = 1n << 9n; // signal 10, SIGUSR1
  return ['SigIgn', 'SigBlk', 'SigCgt'].some((field) => (BigInt(`0x${new RegExp(`^${field}:\\s*([0-9a-f]+)$`, 'm').exec(status)![1]}`) & bit) !== 0n);
}

function signal(pid: number, name: NodeJS.Signals): boolean {
  try {
    process.kill(pid, name);
    return true;
  } catch {
    return false; // already gone
  }
}

/** Ports a process or any of its threads' sockets listen on; [] once it is gone. */
function listens(pid: number): number[] {
  return fs.existsSync(`/proc/${pid}`) ? listeningPorts(pid) : [];
}

async function readable(file: string): Promise<boolean> {
  const deadline = Date.now() + 20_000 * TIME_SCALE;
  while (Date.now() < deadline) {
    if (run('head', ['-c', '16', file], { timeout: 5000 }).status === 0) return true;
    await sleep(50);
  }
  return false;
}

describe('the daemon', () => {
  it.each(DELAYS_MS)('its main process ignores SIGUSR1 sent %i ms after spawn', async (delayMs) => {
    const dir = cleanup.tempDir();
    const mnt = path.join(dir, 'mnt');
    const { child, serving: starting } = spawnDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt);
    const pid = child.pid!;
    await sleep(delayMs);
    // Once guarded, a process stays guarded until it exits: a signal sent after this reading found it so.
    const guarded = guardsSigusr1(pid);
    if (delayMs >= STARTED_MS) expect(guarded).toBe(true);
    signal(pid, 'SIGUSR1');
    let daemon;
    try {
      daemon = await starting;
    } catch (err) {
      // Only a signal that arrived before the process ran anything of ours may end it.
      expect(guarded, String(err)).toBe(false);
      return;
    }
    try {
      await sleep(300);
      expect(listens(daemon.pid)).toEqual([]);
      for (const child of childPids(daemon.pid)) expect(listens(child)).toEqual([]);
      expect(daemon.output()).not.toMatch(INSPECTOR_BANNER);
      // The signal did nothing: same main process, still serving.
      expect(daemon.child.exitCode).toBeNull();
      expect(await readable(path.join(mnt, 'proc/uptime'))).toBe(true);
    } finally {
      expect((await daemon.stop()).code).toBe(0);
    }
  });

  it('its serving process ignores SIGUSR1 while serving and at every point of a restart', async () => {
    const dir = cleanup.tempDir();
    const mnt = path.join(dir, 'mnt');
    const daemon = await startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt);
    const first = childPids(daemon.pid);
    expect(first).toHaveLength(1);
    signal(first[0]!, 'SIGUSR1');
    await sleep(300);
    expect(listens(first[0]!)).toEqual([]);
    expect(childPids(daemon.pid)).toEqual(first);

    // A crash: the supervisor starts a new serving process. Signal it from the moment it appears.
    for (const delayMs of DELAYS_MS.slice(1)) {
      const before = childPids(daemon.pid);
      signal(before[0]!, 'SIGKILL');
      let next: number | undefined;
      const deadline = Date.now() + 10_000 * TIME_SCALE;
      while (next === undefined && Date.now() < deadline) {
        next = childPids(daemon.pid).find((pid) => !before.includes(pid));
        if (next === undefined) await sleep(1);
      }
      expect(next, 'no new serving process').toBeDefined();
      await sleep(delayMs);
      signal(next!, 'SIGUSR1');
      await sleep(300);
      expect(listens(next!)).toEqual([]);
      expect(await readable(path.join(mnt, 'proc/meminfo'))).toBe(true);
      // Seen in the children list it may not have started its shell yet: a signal that early ends it
      // like a crash, and the supervisor starts another. Later, the signal changes nothing.
      if (delayMs >= 20) expect(childPids(daemon.pid)).toEqual([next]);
      for (const pid of childPids(daemon.pid)) expect(listens(pid)).toEqual([]);
    }
    expect(daemon.output()).not.toMatch(INSPECTOR_BANNER);
    expect((await daemon.stop()).code).toBe(0);
  }, 120_000);
});

describe('the helper commands', () => {
  /** Runs `lxcfs-ts ARGS` and sends SIGUSR1 at every delay while it runs; its result and what it printed. */
  async function underSignals(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string; ports: number[] }> {
    const [command, ...prefix] = lxcfsCommand();
    const child = spawn(command!, [...prefix, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.own(child);
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));
    const ports: number[] = [];
    // Until the launcher's first line the kernel's default action applies: the signals start once it guards.
    while (child.exitCode === null && !guardsSigusr1(child.pid!)) await sleep(1);
    const started = Date.now();
    for (const delayMs of DELAYS_MS) {
      await sleep(Math.max(0, delayMs - (Date.now() - started)));
      if (!signal(child.pid!, 'SIGUSR1')) break;
      await sleep(20);
      ports.push(...listens(child.pid!));
    }
    return { ...(await exited), output, ports };
  }

  it('show, remount and upgrade do their job and open nothing', async () => {
    const dir = cleanup.tempDir();
    const mnt = path.join(dir, 'mnt');
    const pidFile = path.join(dir, 'pid');
    const daemon = await startDaemon(cleanup, ['-p', pidFile, mnt], mnt);
    for (const args of [['show', 'meminfo'], ['remount', '--mountpoint', mnt], ['upgrade', '-p', pidFile]]) {
      const result = await underSignals(args);
      expect(result.output, args.join(' ')).not.toMatch(INSPECTOR_BANNER);
      expect(result.ports, args.join(' ')).toEqual([]);
      expect({ code: result.code, signal: result.signal }, `${args.join(' ')}: ${result.output}`).toEqual({ code: 0, signal: null });
    }
    expect(daemon.output()).not.toMatch(INSPECTOR_BANNER);
    expect((await daemon.stop()).code).toBe(0);
  }, 120_000);
});
