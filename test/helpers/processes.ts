// Starting the real daemon (and fixture servers) as child processes, and cleaning up after them:
// every test registers what it made with a Cleanup and runs it in afterAll/finally.

import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import type { Readable } from 'node:stream';
import { abortConnection, detachMount, mountsAt, probeFile } from '../../src/fuse/mount.js';

export const REPO = path.resolve(import.meta.dirname, '../..');
/** Stretches waits where everything runs slower: the v2 guest is software-emulated (TEST_TIME_SCALE=6). */
export const TIME_SCALE = Number(process.env.TEST_TIME_SCALE ?? '1') || 1;
/** True inside the v2 guest (scripts/v2vm), which re-runs some host test files to prove them on its kernel. */
export const IN_V2_GUEST = process.env.V2VM_GUEST === '1';
/** The lxcfs-ts command, as users run it (it starts the built code in dist/). */
export const LXCFS_TS = path.join(REPO, 'bin/lxcfs-ts');

/** The first line a child writes (a pipe may deliver it in pieces), or an error if the stream ends first. */
export async function firstLine(stream: Readable): Promise<string> {
  const lines = readline.createInterface({ input: stream });
  try {
    for await (const line of lines) return line;
  } finally {
    lines.close();
  }
  throw new Error('the stream ended before its first line');
}

/** The command line that runs lxcfs-ts. */
export function lxcfsCommand(): string[] {
  return [LXCFS_TS];
}

export class Cleanup {
  private readonly steps: Array<() => void | Promise<void>> = [];

  add(step: () => void | Promise<void>): void {
    this.steps.push(step);
  }

  /** Runs every step, last added first, even when some fail. */
  async run(): Promise<void> {
    const errors: unknown[] = [];
    while (this.steps.length > 0) {
      try {
        await this.steps.pop()!();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup failed');
  }

  tempDir(prefix = 'lxcfs-ts-test-'): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    this.add(() => {
      unmountAll(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    });
    return dir;
  }

  /** Kills the process (SIGKILL) at cleanup time if it is still running. */
  own(child: ChildProcess): void {
    const step = (): void => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    this.add(step);
    // Once the child has exited its step has nothing to do: drop it, so that a long run of short-lived
    // children (the bench starts thousands) does not keep every one of them.
    child.once('exit', () => {
      const index = this.steps.indexOf(step);
      if (index >= 0) this.steps.splice(index, 1);
    });
  }
}

/** Aborts and detaches every mount at or below `dir` (deepest first), so that no test leaves one. */
export function unmountAll(dir: string): void {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  const points = [...new Set(text.split('\n').map((line) => line.split(' ')[4]).filter((p): p is string => !!p))]
    .filter((p) => p === dir || p.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  for (const point of points) {
    for (const entry of mountsAt(point).reverse()) {
      if (entry.fsType.startsWith('fuse')) abortConnection(entry.device);
      detachMount(point);
    }
  }
}

/** Kills the daemon (its main process, which holds the connection) with SIGKILL and waits until the
 * mount is dead: its serving process notices and exits, closing the last fd. */
export async function killDaemonHard(daemon: Daemon): Promise<void> {
  daemon.child.kill('SIGKILL');
  await daemon.exited;
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if ((await probeFile(path.join(daemon.mountPoint, 'proc/uptime'), 1000)).state === 'dead') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`the mount on ${daemon.mountPoint} is still alive 5 s after kill -9 of the daemon`);
}

export function isMounted(mountPoint: string): boolean {
  return mountsAt(mountPoint).length > 0;
}

export function run(command: string, args: string[], options: { timeout?: number; input?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', timeout: options.timeout ?? 20_000 * TIME_SCALE, input: options.input, env: { ...process.env, LC_ALL: 'C' } });
}

export interface Daemon {
  child: ChildProcess;
  pid: number;
  mountPoint: string;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Sends SIGTERM and waits for the exit (SIGKILL after `killAfterMs` when given); returns the exit
   * status and how long it took. */
  stop(killAfterMs?: number): Promise<{ code: number | null; ms: number }>;
}

export interface DaemonOptions {
  /** How long it may take to serve (default 15 s, stretched by TIME_SCALE). */
  timeoutMs?: number;
  /** The command line of the lxcfs-ts installation to run (default: this tree's). */
  command?: string[];
}

/** Starts the daemon with ARGS; `serving` resolves when it logs "serving" and rejects with its output
 * if it exits first. */
export function spawnDaemon(cleanup: Cleanup, args: string[], mountPoint: string, env: NodeJS.ProcessEnv = {}, options: DaemonOptions = {}): { child: ChildProcess; serving: Promise<Daemon> } {
  const [command, ...prefix] = options.command ?? lxcfsCommand();
  const child = spawn(command!, [...prefix, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  cleanup.own(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const daemon: Daemon = {
    child,
    pid: child.pid!,
    mountPoint,
    output: () => output,
    exited,
    async stop(killAfterMs) {
      const started = Date.now();
      child.kill('SIGTERM');
      const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      const { code } = await exited;
      clearTimeout(timer);
      return { code, ms: Date.now() - started };
    },
  };
  const serving = new Promise<Daemon>((resolve, reject) => {
    const timeoutMs = options.timeoutMs ?? 15_000 * TIME_SCALE;
    const timer = setTimeout(() => reject(new Error(`daemon did not start within ${timeoutMs / 1000} s:\n${output}`)), timeoutMs);
    const check = (): void => {
      if (output.includes('"msg":"serving"')) {
        clearTimeout(timer);
        resolve(daemon);
      }
    };
    child.stdout.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code ?? signal} before serving:\n${output}`));
    });
  });
  return { child, serving };
}

/** Starts the daemon with ARGS and resolves once it serves (see spawnDaemon). */
export function startDaemon(cleanup: Cleanup, args: string[], mountPoint: string, env: NodeJS.ProcessEnv = {}, options: DaemonOptions = {}): Promise<Daemon> {
  return spawnDaemon(cleanup, args, mountPoint, env, options).serving;
}

/** `lxcfs-ts upgrade -p PIDFILE`: resolves once the daemon's new serving process serves. */
export function upgradeDaemon(pidFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(LXCFS_TS, ['upgrade', '-p', pidFile, '--timeout', String(60 * TIME_SCALE)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`lxcfs-ts upgrade -p ${pidFile} failed (${code}): ${stderr.trim()}`))));
  });
}

/** The pids of `pid`'s direct children (those its main thread forked); empty once it has exited. */
export function childPids(pid: number): number[] {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
  } catch {
    return [];
  }
  return text === '' ? [] : text.split(' ').map(Number);
}

/** Calls `probe` every `everyMs` until it returns a value, and returns that; after `timeoutMs`, throws
 * what `failure` says. */
async function pollFor<T>(probe: () => T | undefined, timeoutMs: number, failure: () => string, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(failure());
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** The first child `pid` starts (say, the process `unshare` or `nsenter` runs), once it has one. */
export function firstChildPid(pid: number, timeoutMs = 5000 * TIME_SCALE): Promise<number> {
  return pollFor(
    () => {
      const [child] = childPids(pid);
      if (child === undefined && !fs.existsSync(`/proc/${pid}`)) throw new Error(`process ${pid} exited without a child`);
      return child;
    },
    timeoutMs,
    () => `process ${pid} started no child within ${timeoutMs} ms`,
  );
}

/** The daemon's serving process: its supervisor's one child. While an upgrade or a restart replaces it
 * there can be two, or none, for a moment: waits until there is one. */
export function servingPid(daemon: Pick<Daemon, 'pid'>, timeoutMs = 10_000 * TIME_SCALE): Promise<number> {
  return pollFor(
    () => {
      const children = childPids(daemon.pid);
      return children.length === 1 ? children[0] : undefined;
    },
    timeoutMs,
    () => `daemon ${daemon.pid} has ${childPids(daemon.pid).length} child processes, not one serving process`,
  );
}

/** Waits until the daemon's output has matched `pattern` `count` times. */
export async function waitForLog(daemon: Pick<Daemon, 'output'>, pattern: RegExp, count: number, timeoutMs = 30_000 * TIME_SCALE): Promise<void> {
  await pollFor(
    () => ((daemon.output().match(new RegExp(pattern, 'g')) ?? []).length >= count ? true : undefined),
    timeoutMs,
    () => `no ${count}× ${pattern} in the daemon log:\n${daemon.output().slice(-3000)}`,
    25,
  );
}

/** What the open descriptors of a process point at (each fd's link); empty once it has exited. */
export function openFileTargets(pid: number | 'self'): string[] {
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return [];
  }
  return fds.flatMap((fd) => {
    try {
      return [fs.readlinkSync(`/proc/${pid}/fd/${fd}`)];
    } catch {
      return []; // closed meanwhile
    }
  });
}

/** Runs a fixture server (test/fixtures/serve-fixture.mjs) until cleanup; resolves once it is ready. */
export function startFixture(cleanup: Cleanup, mountPoint: string, mode: 'echo' | 'hang' | 'slow', readers = 2): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(REPO, 'test/fixtures/serve-fixture.mjs'), mountPoint, mode, String(readers)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup.add(() => {
    unmountAll(mountPoint);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('fixture server did not start')), 15_000 * TIME_SCALE);
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`fixture server exited with ${code}`)));
  });
}
