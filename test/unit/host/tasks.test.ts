// Thread lists of cgroups and the R/D probe of the loadavg sampler, on fixture trees (and one thread list
// of a real cgroup2 cgroup, where the host has the unified hierarchy).

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { CgroupV1Reader } from '../../../src/host/cgroup-v1.js';
import { CgroupV2Reader } from '../../../src/host/cgroup-v2.js';
import { fileBudget, KeptFiles, openFileLimit } from '../../../src/host/files.js';
import { readThreadIds, ThreadStateProbe, childCgroupDirectories } from '../../../src/host/tasks.js';
import { createCgroup } from '../../helpers/cgroups.js';
import { Cleanup } from '../../helpers/processes.js';
import { HostTree } from '../../fixtures/host-tree.js';
import { writeThread } from '../../fixtures/activity.js';

const V1 = new CgroupV1Reader();
const V2 = new CgroupV2Reader();

let tree: HostTree;
const cleanup = new Cleanup();
afterEach(async () => {
  tree?.remove();
  await cleanup.run();
});

describe('thread lists', () => {
  it('reads tasks (v1) and cgroup.threads (v2), and undefined for a removed cgroup', () => {
    tree = HostTree.create();
    tree.cgroup('cpu', '/a', { tasks: '12\n7\n123456\n' });
    tree.cgroup('unified', '/b', { 'cgroup.threads': '5\n' });
    tree.cgroup('cpu', '/a/child');
    const dir = `${tree.roots.cgroupRoot}/cpu/a`;
    expect(readThreadIds(dir, V1)).toEqual([12, 7, 123456]);
    expect(readThreadIds(`${tree.roots.cgroupRoot}/unified/b`, V2)).toEqual([5]);
    expect(readThreadIds(`${tree.roots.cgroupRoot}/cpu/gone`, V1)).toBeUndefined();
    expect(childCgroupDirectories(dir)).toEqual([`${dir}/child`]);
    expect(childCgroupDirectories(`${dir}/gone`)).toEqual([]);
  });

  it("knows this process's open-file limit, and shares out all but 1024 of it", () => {
    expect(openFileLimit()).toBeGreaterThanOrEqual(1024);
    const budget = fileBudget();
    expect(budget.samplerThreads + budget.samplerCgroupFiles + budget.readers).toBeLessThanOrEqual(openFileLimit() - 1024);
    expect(budget.readers).toBe(Math.floor(((openFileLimit() - 1024) * 3) / 8));
  });
});

describe('thread lists through kept files', () => {
  it('reads a list bigger than one read returns, and keeps no fixture file open', () => {
    tree = HostTree.create();
    tree.cgroup('cpu', '/a', { 'cgroup.threads': `${Array.from({ length: 20000 }, (_, i) => i + 1).join('\n')}\n` });
    const files = new KeptFiles(8, 'read-through');
    expect(readThreadIds(`${tree.roots.cgroupRoot}/cpu/a`, V2, files)?.length).toBe(20000);
    expect(readThreadIds(`${tree.roots.cgroupRoot}/cpu/gone`, V2, files)).toBeUndefined();
    expect(files.size).toBe(0);
  });

  it('never keeps a cgroup v1 tasks file open: only an open makes the kernel build a fresh list', () => {
    tree = HostTree.create();
    tree.cgroup('cpu', '/a', { tasks: '1\n2\n' });
    const files = new KeptFiles(8, 'read-through');
    expect(readThreadIds(`${tree.roots.cgroupRoot}/cpu/a`, V1, files)).toEqual([1, 2]);
    expect(files.size).toBe(0);
  });

  // cgroup.threads is a seq_file: one read returns about a page of it, whatever the buffer.
  it.skipIf(!fs.existsSync('/sys/fs/cgroup/unified/cgroup.threads'))(
    'lists every thread of a cgroup2 cgroup whose list is longer than a page',
    async () => {
      const cgroup = createCgroup(cleanup, 'unified', 'lxcfs-ts-abi-threads');
      const child = spawn('python3', ['-c', 'import threading,time\nfor _ in range(2500): threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\nprint("ready", flush=True)\ntime.sleep(600)'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      cleanup.own(child);
      await once(child.stdout, 'data');
      cgroup.add(child.pid!);
      const all = fs.readFileSync(`${cgroup.dir}/cgroup.threads`, 'latin1').trim().split('\n').map(Number);
      expect(all.length).toBe(2501);
      expect(all.join('\n').length).toBeGreaterThan(8192);
      const files = new KeptFiles(8, 'read-through');
      expect(readThreadIds(cgroup.dir, V2, files)).toEqual(all);
      expect(files.size).toBe(1);
      expect(readThreadIds(cgroup.dir, V2, files)).toEqual(all); // again from offset 0, through the kept descriptor
    },
    30_000,
  );
});

describe('ThreadStateProbe', () => {
  it('counts R and D as active, S/T/Z/I not, and reads the state after the last parenthesis', () => {
    tree = HostTree.create();
    const states = { 10: 'R', 11: 'D', 12: 'S', 13: 'T', 14: 'Z', 15: 'I' } as const;
    for (const [tid, state] of Object.entries(states)) writeThread(tree, { tid: Number(tid), state, comm: 'a) R (b' });
    const probe = new ThreadStateProbe(tree.roots.procRoot, 100);
    probe.beginPass();
    expect(Object.keys(states).map((tid) => probe.isActive(Number(tid)))).toEqual([true, true, false, false, false, false]);
    expect(probe.isActive(99)).toBeUndefined(); // no such thread
    expect(probe.endPass()).toEqual({ threads: 7, unchanged: 0, stateReads: 7, openFiles: 12 });
    probe.close();
  });

  it('skips the state read while schedstat has not moved, re-reads it when it has', () => {
    tree = HostTree.create();
    writeThread(tree, { tid: 20, state: 'S', schedstat: '5000 10 3\n' });
    const probe = new ThreadStateProbe(tree.roots.procRoot, 100);
    probe.beginPass();
    expect(probe.isActive(20)).toBe(false);
    probe.endPass();

    // The state changes but the scheduler counters do not: impossible for a real thread (it has to run to
    // change state), and proof that the stat file was not read.
    writeThread(tree, { tid: 20, state: 'R', schedstat: '5000 10 3\n' });
    probe.beginPass();
    expect(probe.isActive(20)).toBe(false);
    expect(probe.endPass().stateReads).toBe(0);

    writeThread(tree, { tid: 20, state: 'R', schedstat: '7000 10 4\n' });
    probe.beginPass();
    expect(probe.isActive(20)).toBe(true);
    expect(probe.endPass().stateReads).toBe(1);
    probe.close();
  });

  it('always reads the state without scheduler statistics ("0 0 0" or no schedstat file)', () => {
    tree = HostTree.create();
    writeThread(tree, { tid: 30, state: 'S', schedstat: '0 0 0\n' });
    writeThread(tree, { tid: 31, state: 'S', schedstat: null });
    const probe = new ThreadStateProbe(tree.roots.procRoot, 100);
    for (const state of ['S', 'R', 'D'] as const) {
      writeThread(tree, { tid: 30, state, schedstat: '0 0 0\n' });
      writeThread(tree, { tid: 31, state, schedstat: null });
      probe.beginPass();
      expect([probe.isActive(30), probe.isActive(31)]).toEqual([state !== 'S', state !== 'S']);
      expect(probe.endPass().stateReads).toBe(2);
    }
    probe.close();
  });

  it('closes the descriptors of threads no longer listed, and of threads that exited', () => {
    tree = HostTree.create();
    writeThread(tree, { tid: 40, state: 'R' });
    writeThread(tree, { tid: 41, state: 'R' });
    const probe = new ThreadStateProbe(tree.roots.procRoot, 100);
    probe.beginPass();
    probe.isActive(40);
    probe.isActive(41);
    expect(probe.endPass().openFiles).toBe(4);
    probe.beginPass();
    probe.isActive(40);
    expect(probe.endPass().openFiles).toBe(2);
    probe.close();
    probe.beginPass();
    expect(probe.endPass().openFiles).toBe(0);
  });

  it('keeps the descriptors of threads kept unchanged, and closes those of threads left out', () => {
    tree = HostTree.create();
    writeThread(tree, { tid: 40, state: 'R' });
    writeThread(tree, { tid: 41, state: 'S' });
    const probe = new ThreadStateProbe(tree.roots.procRoot, 100);
    probe.beginPass();
    probe.isActive(40, 7);
    const slot40 = probe.lastSlot;
    probe.isActive(41, 7);
    const slot41 = probe.lastSlot;
    probe.endPass();
    probe.beginPass();
    expect(probe.keepUnchanged(Int32Array.of(slot40, slot41), 7)).toBe(true);
    expect(probe.endPass()).toEqual({ threads: 2, unchanged: 2, stateReads: 0, openFiles: 4 });
    probe.beginPass();
    expect(probe.keepUnchanged(Int32Array.of(slot40), 7)).toBe(true);
    expect(probe.endPass().openFiles).toBe(2);
    probe.beginPass();
    // Thread 41 is forgotten: its slot is no thread of cgroup 7 seen in the previous pass any more.
    expect(probe.keepUnchanged(Int32Array.of(slot40, slot41), 7)).toBe(false);
    probe.close();
  });

  it('beyond its descriptor budget, opens and closes stat on every probe, with the same answers', () => {
    tree = HostTree.create();
    for (let tid = 50; tid < 60; tid++) writeThread(tree, { tid, state: tid % 2 === 0 ? 'R' : 'S' });
    const probe = new ThreadStateProbe(tree.roots.procRoot, 6);
    const before = fs.readdirSync('/proc/self/fd').length;
    for (let pass = 0; pass < 2; pass++) {
      probe.beginPass();
      let running = 0;
      for (let tid = 50; tid < 60; tid++) if (probe.isActive(tid)) running++;
      expect(running).toBe(5);
      const counters = probe.endPass();
      expect(counters.openFiles).toBe(6);
      expect(counters.stateReads).toBe(pass === 0 ? 10 : 7); // 3 cached threads skip on the 2nd pass
    }
    expect(fs.readdirSync('/proc/self/fd').length - before).toBe(6);
    probe.close();
  });
});
