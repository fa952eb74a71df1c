// Simulated containers for tests, close to what docker makes: a process in new pid and mount namespaces
// (unshare), optionally in its own cgroups, with its own root: the host's root filesystem without any of
// the host's mounts (so other tests' mounts are not in it), its own /proc, /sys, /dev, a private tmpfs
// on /run, and only the mounts it is given (our files over its own /proc/meminfo, ...). It writes
// nothing to the host's filesystem. Everything made here is undone by the Cleanup it was registered with.

import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readMountInfo, type MountInfoEntry } from '../../src/fuse/mount.js';
import { firstChildPid, TIME_SCALE, unmountAll, type Cleanup } from './processes.js';

export interface Bind {
  /** A host path. */
  source: string;
  /** A path inside the container; it must exist in the host's root filesystem or in what is mounted. */
  target: string;
}

export interface ContainerOptions {
  /** Bind mounts (non-recursive), made in this order once the container has joined its cgroups. */
  binds?: Bind[];
  /** Host directories shown inside with slave propagation, like docker's -v SOURCE:TARGET:rslave: if
   * SOURCE sits on a shared mount, what the host mounts below it later appears below TARGET. */
  propagated?: Bind[];
  /** cgroup directories (cgroup v1: one per controller, see cgroups.ts) that the container's init joins
   * before any mount. */
  cgroups?: string[];
  /** Plants booby-trapped /usr/bin/mount and /usr/bin/umount that log each run (see trapRuns). */
  trapped?: boolean;
  /** Shell lines run inside once it has its own root (before the traps), e.g. to make mounts of its own. */
  inside?: string[];
}

export interface Container {
  /** Host pid of the container's init (pid 1 inside). */
  pid: number;
  /** Runs a command inside the container's mount and pid namespaces (nsenter: fine for tests only). */
  exec(command: string, args?: string[]): SpawnSyncReturns<string>;
  /** Its mount table, read from the host (mount points as the container sees them). */
  mountInfo(): MountInfoEntry[];
  /** What the booby traps logged: one "PROGRAM ARGS" line per run. */
  trapRuns(): string[];
  /** Kills it; its namespaces go with it. */
  stop(): Promise<void>;
}

/** Binds of files of our tree, from the lxcfs mountpoint over the container's own copies. */
export function lxcfsFileBinds(lxcfsDir: string, files: string[]): Bind[] {
  return files.map((file) => ({ source: path.join(lxcfsDir, file), target: '/' + file }));
}

const TRAP_SCRIPT = '/run/lxcfs-ts-trap.sh';
const TRAP_LOG = '/run/lxcfs-ts-trap.log';

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function containerScript(root: string, options: ContainerOptions): string {
  const inside = (target: string): string => shellQuote(path.join(root, target));
  const lines = [
    'set -e',
    'read go # until the host has placed us in our cgroups',
    `mount --bind / ${inside('/')}`,
    `mount --rbind /dev ${inside('/dev')}`,
    `mount -t proc proc ${inside('/proc')}`,
    `mount --bind /sys ${inside('/sys')}`,
    `mount -t tmpfs -o size=1m,mode=755 lxcfs-ts-container ${inside('/run')}`,
  ];
  for (const bind of options.binds ?? []) lines.push(`mount --bind ${shellQuote(bind.source)} ${inside(bind.target)}`);
  for (const bind of options.propagated ?? []) {
    lines.push(`mount --rbind ${shellQuote(bind.source)} ${inside(bind.target)}`, `mount --make-rslave ${inside(bind.target)}`);
  }
  // As runc does: the new root becomes /, and the old one (the host's tree) is detached.
  lines.push(`cd ${inside('/')}`, 'pivot_root . .', 'umount -l .', 'cd /', ...(options.inside ?? []));
  if (options.trapped) {
    lines.push(
      `printf '#!/bin/sh\\necho "$0 $*" >> ${TRAP_LOG}\\nexit 1\\n' > ${TRAP_SCRIPT}`,
      `chmod 755 ${TRAP_SCRIPT}`,
      // mount itself last: from then on every mount run inside is the trap.
      `mount --bind ${TRAP_SCRIPT} /usr/bin/umount`,
      `mount --bind ${TRAP_SCRIPT} /usr/bin/mount`,
    );
  }
  lines.push('echo ready', 'exec sleep infinity');
  return lines.join('\n');
}

/** Starts a container and resolves once its mounts are in place. */
export async function startContainer(cleanup: Cleanup, options: ContainerOptions = {}): Promise<Container> {
  // An empty directory: the container's root is bound on it in the container's namespace only.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lxcfs-ts-container-'));
  cleanup.add(() => fs.rmdirSync(root));
  // --kill-child: killing unshare kills the container's init, and with it the whole pid namespace.
  const unshare = spawn('unshare', ['--pid', '--mount', '--fork', '--kill-child', '--propagation', 'slave', 'sh', '-c', containerScript(root, options)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  unshare.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  unshare.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = once(unshare, 'exit');
  let pid = 0;
  const stop = async (): Promise<void> => {
    if (unshare.exitCode === null && unshare.signalCode === null) {
      unshare.kill('SIGKILL');
      await exited;
    }
    for (let attempt = 0; pid && fs.existsSync(`/proc/${pid}`) && attempt < 250; attempt++) await sleep(20);
  };
  cleanup.add(stop);
  pid = await firstChildPid(unshare.pid!);
  for (const cgroup of options.cgroups ?? []) fs.writeFileSync(path.join(cgroup, 'cgroup.procs'), String(pid));
  unshare.stdin.write('go\n');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`container did not start within ${10 * TIME_SCALE} s:\n${output}`)),
      10_000 * TIME_SCALE,
    );
    unshare.stdout.on('data', () => {
      if (output.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`container exited before it was ready:\n${output}`));
    });
  });
  return {
    pid,
    exec: (command, args = []) =>
      spawnSync('nsenter', ['-t', String(pid), '-m', '-p', '--', command, ...args], {
        encoding: 'utf8',
        timeout: 10_000,
        env: { ...process.env, LC_ALL: 'C' },
      }),
    mountInfo: () => readMountInfo(`/proc/${pid}/mountinfo`),
    trapRuns: () => {
      try {
        // A tmpfs inside the container: safe to read from here.
        return fs.readFileSync(`/proc/${pid}/root${TRAP_LOG}`, 'utf8').split('\n').filter(Boolean);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
    },
    stop,
  };
}

/** Makes `dir` a shared mount (a bind of itself), so that mounts made below it later propagate into
 * containers started afterwards (their copies are slaves), as a systemd host's shared / does. */
export function makeSharedDirectory(cleanup: Cleanup, dir: string): void {
  const mount = (...args: string[]): void => {
    const result = spawnSync('mount', args, { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`mount ${args.join(' ')} failed: ${result.stderr.trim()}`);
  };
  fs.mkdirSync(dir, { recursive: true });
  mount('--bind', dir, dir);
  cleanup.add(() => unmountAll(dir));
  mount('--make-shared', dir);
}
