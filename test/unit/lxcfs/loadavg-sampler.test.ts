// The loadavg sampler on fixture trees: registration by readers, one pass, nested cgroups sharing work,
// forgetting, and the numbers readers then see.

import fs from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { allocateLoadavgTable, LoadavgField, LoadavgSampler, readLoadavg } from '../../../src/lxcfs/loadavg-sampler.js';
import { SharedTable } from '../../../src/lxcfs/shared-table.js';
import { detectCgroupLayout } from '../../../src/host/cgroup-layout.js';
import { loadavgHierarchy } from '../../../src/host/tasks.js';
import { renderLoadavg } from '../../../src/views/loadavg.js';
import { openStateFile } from '../../../src/daemon/state-files.js';
import { populate, writeThread } from '../../fixtures/activity.js';
import { hybridHost, unifiedHost, type HostTree } from '../../fixtures/host-tree.js';

const silent = pino({ level: 'silent' });
let tree: HostTree;
let sampler: LoadavgSampler | undefined;
afterEach(() => {
  sampler?.stop();
  sampler = undefined;
  tree?.remove();
});

function setUp(
  host: HostTree,
  now: () => number = Date.now,
  periodMs?: number,
  store?: number,
): { table: SharedTable; sampler: LoadavgSampler; dir: (path: string) => string } {
  tree = host;
  const layout = detectCgroupLayout(tree.roots);
  const hierarchy = loadavgHierarchy(layout)!;
  const memory = allocateLoadavgTable(64, store);
  sampler = new LoadavgSampler({ memory, hierarchy, layout, procRoot: tree.roots.procRoot, log: silent, now, maxOpenFiles: 1000, periodMs });
  return { table: new SharedTable(memory), sampler, dir: (path) => hierarchy.mountPoint + path };
}

const read = (table: SharedTable, dir: string, pid = 1): string => renderLoadavg(readLoadavg(table, dir, pid, Date.now()));

describe('LoadavgSampler', () => {
  it('shows 0.00 0.00 0.00 0/1 <pid> before the first sample, then the kernel\'s sequence for 2 R threads', async () => {
    const { table, sampler, dir } = setUp(hybridHost());
    populate(tree, 'cpu', '/c1', 1, [{ tid: 501, state: 'R' }, { tid: 502, state: 'R' }, { tid: 503, state: 'S' }]);
    expect(read(table, dir('/c1'), 500)).toBe('0.00 0.00 0.00 0/1 500\n');
    await sampler.pass();
    expect(read(table, dir('/c1'))).toBe('0.16 0.03 0.01 2/3 503\n');
    // the busy threads keep running: their schedstat moves, so their state is read again
    writeThread(tree, { tid: 501, state: 'R' });
    writeThread(tree, { tid: 502, state: 'R' });
    await sampler.pass();
    expect(read(table, dir('/c1'))).toBe('0.31 0.07 0.02 2/3 503\n');
    expect(sampler.lastReport).toMatchObject({ cgroups: 1, directories: 1, probe: { threads: 3, stateReads: 2 } });
  });

  it('counts D threads and the whole subtree; nested registered cgroups share one listing of each directory', async () => {
    const { table, sampler, dir } = setUp(hybridHost());
    populate(tree, 'cpu', '/pod', 1, [{ tid: 600, state: 'S' }]);
    populate(tree, 'cpu', '/pod/c1', 1, [{ tid: 610, state: 'R' }, { tid: 611, state: 'D' }]);
    populate(tree, 'cpu', '/pod/c1/a/b/c/d', 1, [{ tid: 650, state: 'R' }]); // deeper than lxcfs's 3 levels
    populate(tree, 'cpu', '/pod/c2', 1, [{ tid: 620, state: 'S' }]);
    for (const path of ['/pod', '/pod/c1', '/pod/c2']) read(table, dir(path));
    await sampler.pass();
    expect(sampler.lastReport).toMatchObject({ cgroups: 3, directories: 7, probe: { threads: 5 } });
    const counts = (path: string) => table.read(dir(path), (f) => [f[LoadavgField.RUNNING], f[LoadavgField.TOTAL], f[LoadavgField.LAST]]);
    expect(counts('/pod')).toEqual([3, 5, 650]);
    expect(counts('/pod/c1')).toEqual([3, 3, 650]);
    expect(counts('/pod/c2')).toEqual([0, 1, 620]);
  });

  it('samples cgroup2 trees from cgroup.threads', async () => {
    const { table, sampler, dir } = setUp(unifiedHost());
    populate(tree, '', '/system.slice/app.service', 2, [{ tid: 700, state: 'R' }, { tid: 701, state: 'S' }]);
    read(table, dir('/system.slice/app.service'));
    await sampler.pass();
    expect(read(table, dir('/system.slice/app.service'))).toBe('0.08 0.02 0.01 1/2 701\n');
  });

  it('reads no thread at all in a cgroup whose CPU time has not moved (cgroup2 cpu.stat)', async () => {
    const { table, sampler, dir } = setUp(unifiedHost());
    populate(tree, '', '/app', 2, [{ tid: 710, state: 'R' }, { tid: 711, state: 'S' }]);
    const cpuStat = (usec: number) => tree.write('sys/fs/cgroup/app/cpu.stat', `usage_usec ${usec}\nuser_usec ${usec}\nsystem_usec 0\n`);
    cpuStat(1000);
    read(table, dir('/app'));
    await sampler.pass();
    expect(sampler.lastReport?.probe).toMatchObject({ threads: 2, unchanged: 0, stateReads: 2 });
    // Impossible for real threads (they change state only by running, which moves the counter): proof
    // that nothing was read for them.
    writeThread(tree, { tid: 711, state: 'R' });
    await sampler.pass();
    expect(sampler.lastReport?.probe).toMatchObject({ threads: 2, unchanged: 2, stateReads: 0 });
    expect(table.read(dir('/app'), (f) => f[LoadavgField.RUNNING])).toBe(1);
    cpuStat(1500);
    await sampler.pass();
    expect(sampler.lastReport?.probe).toMatchObject({ threads: 2, unchanged: 0, stateReads: 1 });
    expect(table.read(dir('/app'), (f) => f[LoadavgField.RUNNING])).toBe(2);
  });

  it('on v1 uses cpuacct.usage of the cpuacct cgroup at the same path only while it holds the same threads', async () => {
    const { table, sampler, dir } = setUp(hybridHost());
    populate(tree, 'cpu', '/ct', 1, [{ tid: 720, state: 'S' }, { tid: 721, state: 'S' }]);
    tree.cgroup('cpuacct', '/ct', { tasks: '720\n721\n', 'cpuacct.usage': '5000\n' });
    read(table, dir('/ct'));
    await sampler.pass();
    await sampler.pass();
    expect(sampler.lastReport?.probe).toMatchObject({ threads: 2, unchanged: 2 });
    // A sleeping thread moved into the cpu cgroup alone, from outside: no counter moved, so the passes
    // keep the last list without reading it, until they read it again (every 12th pass at the latest).
    // Then the cpuacct cgroup no longer holds the same threads: its counter says nothing about the new
    // one, and every thread is probed from then on.
    populate(tree, 'cpu', '/ct', 1, [{ tid: 720, state: 'S' }, { tid: 721, state: 'S' }, { tid: 722, state: 'S' }]);
    const seen: number[] = [];
    for (let i = 0; i < 12; i++) {
      await sampler.pass();
      seen.push(sampler.lastReport!.probe.threads);
    }
    expect(seen.slice(0, 9)).toEqual(Array(9).fill(2));
    expect(seen.at(-1)).toBe(3);
    expect(sampler.lastReport?.probe).toMatchObject({ threads: 3 });
    await sampler.pass();
    expect(sampler.lastReport?.probe).toMatchObject({ threads: 3, unchanged: 0 });
  });

  it('writes a record to its store only when a value it shows changed (an idle cgroup is not rewritten)', async () => {
    const store = openStateFile(silent)!;
    try {
      const { table, sampler, dir } = setUp(hybridHost(), Date.now, undefined, store);
      expect(table.restore()).toBe(0);
      populate(tree, 'cpu', '/idle', 1, [{ tid: 601, state: 'S' }]);
      populate(tree, 'cpu', '/busy', 1, [{ tid: 602, state: 'R' }]);
      read(table, dir('/idle'));
      read(table, dir('/busy'));
      for (let i = 0; i < 3; i++) {
        writeThread(tree, { tid: 602, state: 'R' });
        await sampler.pass();
      }
      // What a successor restores: the idle cgroup as its first sample left it (its loads stayed 0.00),
      // the busy one as of the last pass.
      const restored = new SharedTable(allocateLoadavgTable(64, store));
      expect(restored.restore()).toBe(2);
      const samples = (of: SharedTable, path: string) => of.read(dir(path), (f) => f[LoadavgField.SAMPLES]);
      expect([samples(restored, '/idle'), samples(restored, '/busy')]).toEqual([1, 3]);
      expect([samples(table, '/idle'), samples(table, '/busy')]).toEqual([3, 3]);
      for (const path of ['/idle', '/busy']) expect(read(restored, dir(path))).toBe(read(table, dir(path)));
      expect(read(restored, dir('/idle'))).toBe('0.00 0.00 0.00 0/1 601\n');
    } finally {
      fs.closeSync(store);
    }
  });

  it('forgets cgroups unread for too long, removed ones, and empty ones (a later read starts again)', async () => {
    let now = 1_000_000;
    const { table, sampler, dir } = setUp(hybridHost(), () => now);
    for (const name of ['/read', '/unread', '/removed', '/empty']) populate(tree, 'cpu', name, 1, name === '/empty' ? [] : [{ tid: 800 + name.length, state: 'R' }]);
    for (const name of ['/read', '/unread', '/removed', '/empty']) readLoadavg(table, dir(name), 1, now);
    fs.rmSync(dir('/removed'), { recursive: true });
    now += 3600_000 - 1;
    readLoadavg(table, dir('/read'), 1, now);
    now += 2;
    await sampler.pass();
    expect(sampler.lastReport).toMatchObject({ cgroups: 1, forgotten: 3 });
    expect(table.size).toBe(1);
    expect(table.read(dir('/read'), (f) => f[LoadavgField.SAMPLES])).toBe(1);
    expect(table.read(dir('/unread'), () => true)).toBeUndefined();
    expect(table.read(dir('/removed'), () => true)).toBeUndefined();
    expect(table.read(dir('/empty'), () => true)).toBeUndefined();
  });

  it('sleeps while no cgroup is registered, and samples every period once a reader registers one, until stop()', async () => {
    const { table, sampler, dir } = setUp(hybridHost(), Date.now, 40);
    populate(tree, 'cpu', '/c1', 1, [{ tid: 501, state: 'R' }]);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    const samples = () => table.read(dir('/c1'), (f) => f[LoadavgField.SAMPLES]) ?? 0;
    sampler.start();
    await sleep(200);
    expect(sampler.lastReport).toBeUndefined(); // no pass over an empty table
    read(table, dir('/c1'));
    for (const deadline = Date.now() + 5000; samples() < 3 && Date.now() < deadline; ) await sleep(20);
    expect(samples()).toBeGreaterThanOrEqual(3);
    sampler.stop();
    const stoppedAt = samples();
    await sleep(200);
    expect(samples()).toBe(stoppedAt);
  });

  it('samples on a grid from start(), not a period after the read that registered the first cgroup', async () => {
    const { table, sampler, dir } = setUp(hybridHost(), Date.now, 1000);
    populate(tree, 'cpu', '/c1', 1, [{ tid: 501, state: 'R' }]);
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    sampler.start();
    await sleep(300);
    read(table, dir('/c1'));
    const registered = performance.now();
    while (sampler.lastReport === undefined && performance.now() - registered < 3000) await sleep(5);
    // The grid point at 1,000 ms after start(), about 700 ms after the read; not 1,000 ms after it.
    expect(performance.now() - registered).toBeLessThan(900);
  });

  it('is stopped by stop() and keeps no descriptors', async () => {
    const { table, sampler, dir } = setUp(hybridHost());
    populate(tree, 'cpu', '/c', 1, [{ tid: 900, state: 'R' }]);
    read(table, dir('/c'));
    await sampler.pass();
    expect(sampler.lastReport?.probe.openFiles).toBe(2); // schedstat and stat of the thread (v1 tasks are opened anew each pass)
    sampler.stop();
    sampler.stop();
  });
});
