// Debian's lxcfs 5.0.3, the reference peer: started on a private mountpoint with its own pid file
// (it deletes another instance's pid file when it refuses to start), stopped by its pid.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { probeFile } from '../../src/fuse/mount.js';
import { type Cleanup, isMounted, run, TIME_SCALE } from './processes.js';

export interface LxcfsPeer {
  mountPoint: string;
  pid: number;
  version: string;
  child: ChildProcess;
  /** What it wrote on stderr so far. */
  output(): string;
}

/** Starts lxcfs ARGS on a private mountpoint; resolves once it serves (within `timeoutMs`, default 15 s
 * stretched by TIME_SCALE). The cleanup stops it: SIGTERM, SIGKILL 8 s later. */
export async function startLxcfs(cleanup: Cleanup, args: string[] = [], options: { timeoutMs?: number } = {}): Promise<LxcfsPeer> {
  const dir = cleanup.tempDir('lxcfs-peer-');
  const mountPoint = path.join(dir, 'mnt');
  const probe = run('lxcfs', ['--version']);
  // 5.0.3 prints its version, quoted, on stderr; a missing binary leaves both streams null.
  const version = `${probe.stdout ?? ''}${probe.stderr ?? ''}`.trim().replace(/"/g, '');
  if (probe.error || !version) throw new Error('Debian lxcfs is not installed (bash scripts/test.sh installs it)');
  fs.mkdirSync(mountPoint);
  const child = spawn('lxcfs', [...args, '-p', path.join(dir, 'lxcfs.pid'), mountPoint], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  cleanup.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    // With -l lxcfs waits for its loadavg thread (up to ~5 s) before it exits.
    const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
    await exited;
    clearTimeout(timer);
  });
  const timeoutMs = options.timeoutMs ?? 15_000 * TIME_SCALE;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`lxcfs exited with ${child.exitCode} before mounting: ${stderr.trim()}`);
    if (isMounted(mountPoint) && (await probeFile(path.join(mountPoint, 'proc/uptime'), 2000)).state === 'live') {
      return { mountPoint, pid: child.pid!, version, child, output: () => stderr };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`lxcfs did not mount within ${timeoutMs / 1000} s`);
}
