/**
 * Against the real kernel of the development host (cgroup v1 hybrid, run as
 * root). Test cgroups are created only beneath this process's own memory
 * cgroup and removed afterwards; only processes started here are killed, by pid.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Host } from '../../../src/host/host.js';
import { renderMeminfo } from '../../../src/views/meminfo.js';
import { MiB } from '../../fixtures/memory-facts.js';
import { firstChildPid } from '../../helpers/processes.js';

const V1_MEMORY_MOUNT = '/sys/fs/cgroup/memory';
const ownMemoryCgroup = /^\d+:memory:(.*)$/m.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
const runnable = process.getuid?.() === 0 && ownMemoryCgroup !== undefined && existsSync(join(V1_MEMORY_MOUNT, ownMemoryCgroup));

const OPTIONS = { disableSwap: false, disableZswap: false };
const ALLOCATE_ON_INPUT =
  "process.stdin.once('data', () => { globalThis.kept = Buffer.alloc(32 * 1024 * 1024, 1); process.stdout.write('allocated\\n'); });";

function valueOf(meminfo: string, key: string): number {
  return Number(/^\S+:\s+(\d+)/.exec(meminfo.split('\n').find((line) => line.startsWith(key + ':')) ?? '')?.[1]);
}

describe.skipIf(!runnable)('real kernel (cgroup v1, root)', () => {
  const testCgroup = `${ownMemoryCgroup!.replace(/\/$/, '')}/lxcfs-ts-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const testDir = join(V1_MEMORY_MOUNT, testCgroup);
  const createdDirs: string[] = [];
  const started: ChildProcess[] = [];

  function makeCgroup(relative: string, limitBytes?: number): string {
    const dir = join(testDir, relative);
    mkdirSync(dir);
    createdDirs.push(dir);
    if (limitBytes !== undefined) writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
    return dir;
  }

  function start(command: string, args: string[]): ChildProcess {
    const child = spawn(command, args, { stdio: 'ignore' });
    started.push(child);
    return child;
  }

  beforeAll(() => {
    makeCgroup('', 256 * MiB);
  });

  afterAll(async () => {
    for (const child of started) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await once(child, 'exit');
      }
    }
    for (const dir of createdDirs.reverse()) {
      for (let attempt = 0; existsSync(dir); attempt++) {
        try {
          rmdirSync(dir);
        } catch (error) {
          if (attempt >= 50) throw error;
          await sleep(20); // exiting tasks leave the cgroup a moment later
        }
      }
    }
  });

  it('detects the hybrid layout and the own memory cgroup', () => {
    const host = new Host();
    expect(host.layout.kind).toBe('hybrid');
    const own = host.cgroupOf('self', 'memory');
    expect(own).toMatchObject({ ok: true, value: { path: ownMemoryCgroup, directory: join(V1_MEMORY_MOUNT, ownMemoryCgroup!), hierarchy: { version: 1 } } });
  });

  it('a process in a cgroup limited to 256 MiB sees MemTotal = the limit and MemFree fall as it allocates', async () => {
    const host = new Host();
    const hostMeminfo = host.readProcFile('meminfo')!;
    // allocates 32 MiB when told to, after it has been moved into the test cgroup
    const allocator = spawn(process.execPath, ['-e', ALLOCATE_ON_INPUT], { stdio: ['pipe', 'pipe', 'ignore'] });
    started.push(allocator);
    const pid = allocator.pid!;
    const meminfoOf = (): string => {
      const facts = host.memoryFacts(pid);
      if (!facts.ok) throw new Error(facts.error);
      return renderMeminfo(hostMeminfo, facts.value, OPTIONS);
    };

    writeFileSync(join(testDir, 'cgroup.procs'), String(pid));
    const before = meminfoOf();
    expect(valueOf(before, 'MemTotal')).toBe(262144);
    allocator.stdin.write('go\n');
    await once(allocator.stdout, 'data');
    const after = meminfoOf();
    expect(valueOf(after, 'MemTotal')).toBe(262144);
    expect(valueOf(after, 'MemFree')).toBeLessThanOrEqual(valueOf(before, 'MemFree') - 32768);

    // nested: no limit of its own, the parent's applies
    writeFileSync(join(makeCgroup('unlimited'), 'cgroup.procs'), String(pid));
    expect(valueOf(meminfoOf(), 'MemTotal')).toBe(262144);
    // <cgroup>/init.scope counts as <cgroup>, whatever its own limit
    writeFileSync(join(makeCgroup('init.scope', 64 * MiB), 'cgroup.procs'), String(pid));
    expect(valueOf(meminfoOf(), 'MemTotal')).toBe(262144);
    // a smaller limit of its own applies
    writeFileSync(join(makeCgroup('small', 64 * MiB), 'cgroup.procs'), String(pid));
    expect(valueOf(meminfoOf(), 'MemTotal')).toBe(65536);
  });

  it('a host process in an unlimited cgroup sees the host MemTotal', () => {
    const host = new Host();
    const hostMeminfo = host.readProcFile('meminfo')!;
    const facts = host.memoryFacts(process.pid);
    expect(facts).toMatchObject({ ok: true, value: { limitBytes: Infinity } });
    if (facts.ok) expect(valueOf(renderMeminfo(hostMeminfo, facts.value, OPTIONS), 'MemTotal')).toBe(valueOf(hostMeminfo, 'MemTotal'));
  });

  it('callers in a new pid namespace, including one entered with nsenter, resolve to its init', async () => {
    const host = new Host();
    const unshare = start('unshare', ['--pid', '--fork', '--kill-child', 'sleep', '60']);
    const init = await firstChildPid(unshare.pid!);
    writeFileSync(join(makeCgroup('container', 128 * MiB), 'cgroup.procs'), String(init));

    const nsenter = start('nsenter', ['--target', String(init), '--pid', 'sleep', '60']);
    const entered = await firstChildPid(nsenter.pid!);

    for (const caller of [init, entered]) {
      const resolved = host.callers.resolve(caller);
      expect(resolved).toEqual({ ok: true, value: { pid: caller, initPid: init, initStartTime: expect.any(Number), cgroupPid: init, inDaemonNamespace: false, pidNamespace: expect.any(Number) } });
    }
    // the entered process sits in this test's cgroup, yet the container's 128 MiB applies
    const facts = host.memoryFacts(init);
    expect(facts).toMatchObject({ ok: true, value: { limitBytes: 128 * MiB } });
    expect(host.callers.resolve(process.pid)).toMatchObject({ ok: true, value: { initPid: 1, cgroupPid: process.pid, inDaemonNamespace: true } });

    process.kill(init, 'SIGKILL'); // ends the namespace, and with it the entered sleep
    await Promise.all([once(unshare, 'exit'), once(nsenter, 'exit')]);
    expect(host.callers.resolve(entered)).toMatchObject({ ok: false, error: expect.stringMatching(/has exited/) });
  });
});
