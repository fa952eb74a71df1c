// The activity views on the real kernel (cgroup v1 hybrid here): per-container load averages next to
// Debian's lxcfs 5.0.3 -l on the same cgroups, per-container diskstats from a loop device the test makes,
// pressure from the container's cgroup2 cgroup, slabinfo without host lines.
//
// Containers are simulated as in memory.test.ts: `unshare --pid --fork --mount --mount-proc`, placed in
// cgroups the test creates, with our files bind-mounted over their own. lxcfs's 5 s sampling period is
// the contract, so the loadavg tests take about 20 s.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCgroup, type TestCgroup } from '../helpers/cgroups.js';
import { startLxcfs, type LxcfsPeer } from '../helpers/lxcfs-peer.js';
import { Cleanup, LXCFS_TS, run, startDaemon, type Daemon } from '../helpers/processes.js';
import { formatLoad, nextLoads } from '../../src/views/loadavg.js';

const cleanup = new Cleanup();
let dir: string;
let mnt: string;
let daemon: Daemon;
let lxcfs: LxcfsPeer;

beforeAll(async () => {
  dir = cleanup.tempDir();
  mnt = path.join(dir, 'mnt');
  [lxcfs, daemon] = await Promise.all([startLxcfs(cleanup, ['-l']), startDaemon(cleanup, ['-l', '-p', path.join(dir, 'pid'), mnt], mnt)]);
}, 60_000);

afterAll(() => cleanup.run());

/**
 * Runs `script` as pid 1 of a fresh pid + mount namespace whose init joined `cgroups` first, with our
 * `files` bind-mounted over the container's own. `$LXCFS` is Debian lxcfs's mount, `$MNT` ours.
 */
function inContainer(cgroups: TestCgroup[], files: string[], script: string, timeoutMs = 60_000): Promise<string> {
  const join = cgroups.map((cgroup) => `echo $$ > ${cgroup.dir}/cgroup.procs`).join(' && ');
  const binds = files.map((file) => `mount --bind ${mnt}/${file} /${file}`).join(' && ');
  // A line of its own: `binds && script` would put the binds in the background with the script's first
  // `cmd &`, racing the reads that follow.
  const inner = `${binds || 'true'} || exit 1\n${script}`;
  const child = spawn('sh', ['-c', `${join} && exec unshare --pid --fork --mount --mount-proc --propagation private sh -c "$1"`, 'sh', inner], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C', LXCFS: lxcfs.mountPoint, MNT: mnt },
  });
  cleanup.own(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`container script failed (${code ?? signal}): ${stderr}\n${stdout}`));
    });
  });
}

/** The loadavg lines whose load triple differs from the line before: one per sample the daemon took. */
function samples(lines: string[]): string[] {
  const triple = (line: string): string => line.split(' ').slice(0, 3).join(' ');
  return lines.filter((line, i) => i === 0 || triple(line) !== triple(lines[i - 1]!));
}

/** The 1-minute load after each of n samples of `running` threads, as lxcfs computes it. */
function expectedLoad1(running: number, n: number): number[] {
  const shown: number[] = [];
  let loads: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    loads = nextLoads(loads, running);
    shown.push(Number(formatLoad(loads[0])));
  }
  return shown;
}

describe('loadavg with -l', () => {
  it('shows a busy container its own load (lxcfs\'s sequence, next to lxcfs -l) and an idle one ≈ 0 while the host is busy', async () => {
    const busy = createCgroup(cleanup, 'cpu', 'lxcfs-ts-busy');
    const idle = createCgroup(cleanup, 'cpu', 'lxcfs-ts-idle');
    // Two busy threads (two single-threaded loops, R all the time) until the container has read ours and
    // lxcfs's every second 17 times: at least 3 samples of each daemon. They stop when the reads are done,
    // not after a fixed time that a loaded host's slow reads could outlast.
    const busyRun = inContainer([busy], ['proc/loadavg'], `
      timeout 120 sh -c 'while :; do :; done' & first=$!
      timeout 120 sh -c 'while :; do :; done' & second=$!
      for i in $(seq 17); do echo "ours $(cat /proc/loadavg)"; echo "lxcfs $(cat $LXCFS/proc/loadavg)"; sleep 1; done
      kill $first $second; wait`);
    // The idle container reads once to be tracked, sleeps through 3 samples, and reads again.
    const idleRun = inContainer([idle], ['proc/loadavg'], `
      echo "ours $(cat /proc/loadavg)"; echo "lxcfs $(cat $LXCFS/proc/loadavg)"; sleep 16;
      echo "ours $(cat /proc/loadavg)"; echo "lxcfs $(cat $LXCFS/proc/loadavg)"`);
    const [busyOut, idleOut] = await Promise.all([busyRun, idleRun]);

    const lines = (out: string, who: string) => out.trim().split('\n').filter((l) => l.startsWith(who + ' ')).map((l) => l.slice(who.length + 1));
    const ours = lines(busyOut, 'ours');
    const theirs = lines(busyOut, 'lxcfs');
    // First sight: identical lines, the container's init as the "last pid".
    expect(ours[0]).toMatch(/^0\.00 0\.00 0\.00 0\/1 \d+$/);
    expect(ours[0]).toBe(theirs[0]);

    const ourLines = samples(ours).slice(1);
    const ourSamples = ourLines.map((line) => Number(line.split(' ')[0]));
    const theirSamples = samples(theirs)
      .slice(1)
      .map((line) => Number(line.split(' ')[0]));
    expect(ourSamples.length, ours.join('\n')).toBeGreaterThanOrEqual(3);
    expect(theirSamples.length, theirs.join('\n')).toBeGreaterThanOrEqual(3);
    // Each sample's line says how many threads it found running (R of R/T): the two loops always, and the
    // reader's shell and cat when a sample catches them runnable (on a loaded machine, at every sample).
    // The loads must follow from those counts exactly as lxcfs computes them.
    let loads: [number, number, number] = [0, 0, 0];
    ourLines.forEach((line, i) => {
      const [load1, load5, load15, counts] = line.split(' ');
      const running = Number(counts!.split('/')[0]);
      const context = `sample ${i + 1}: ${ours.join(' | ')}`;
      expect(running, context).toBeGreaterThanOrEqual(2);
      expect(running, context).toBeLessThanOrEqual(4);
      loads = nextLoads(loads, running);
      expect([load1, load5, load15], context).toEqual(loads.map(formatLoad));
    });
    for (let i = 1; i < ourSamples.length; i++) expect(ourSamples[i]!).toBeGreaterThan(ourSamples[i - 1]!);
    // lxcfs's sampler runs at its own moments, catches the reader's shell and cat runnable when it may,
    // and carries what it caught into every later value: comparing it with ours pass by pass within one
    // tolerance failed when it caught them early (0.24,0.54,0.66 against 0.16,0.31,0.44). So its pass k
    // lies between the average of the 2 busy threads and that of 4 (the loops, the shell and cat).
    const busiest = expectedLoad1(4, theirSamples.length);
    const leastBusy = expectedLoad1(2, theirSamples.length);
    theirSamples.forEach((load, i) => {
      const context = `lxcfs sample ${i + 1}: ours ${ourSamples.join(',')} lxcfs ${theirSamples.join(',')}`;
      expect(load, context).toBeGreaterThanOrEqual(leastBusy[i]!);
      expect(load, context).toBeLessThanOrEqual(busiest[i]! + 0.01);
    });
    // running/total: the two loops (and maybe the reader) of the container's threads.
    const last = ours.at(-1)!.split(' ');
    expect(Number(last[3]!.split('/')[0])).toBeGreaterThanOrEqual(2);

    const idleOurs = lines(idleOut, 'ours');
    const idleTheirs = lines(idleOut, 'lxcfs');
    expect(idleOurs[0]).toBe(idleTheirs[0]);
    const [load1, load5, load15] = idleOurs[1]!.split(' ').slice(0, 3).map(Number);
    expect(Math.max(load1!, load5!, load15!), idleOurs.join('\n')).toBeLessThanOrEqual(0.02);
    expect(idleOurs[1]).toMatch(/^0\.0\d 0\.0\d 0\.0\d 0\/\d+ \d+$/);
    // The host was busy meanwhile (two loops of the other container at least).
    expect(Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0])).toBeGreaterThan(0.3);
  }, 60_000);

  it('samples off the request path: reads stay fast and the sampler logs nothing alarming', () => {
    const started = process.hrtime.bigint();
    for (let i = 0; i < 200; i++) fs.readFileSync(path.join(mnt, 'proc/loadavg'));
    const perReadUs = Number(process.hrtime.bigint() - started) / 1000 / 200;
    expect(perReadUs).toBeLessThan(5000);
    expect(daemon.output()).toContain('loadavg: sampling the cgroups containers read /proc/loadavg from');
    expect(daemon.output()).not.toMatch(/"level":50/);
  });

  it('serves the host file without -l (lxcfs-ts show, same code as the daemon)', () => {
    // The kernel updates its averages every 5 s: the host's file read just before and just after.
    const triple = (text: string): string => text.split(' ').slice(0, 3).join(' ');
    const before = triple(fs.readFileSync('/proc/loadavg', 'utf8'));
    const shown = triple(run(LXCFS_TS, ['show', 'loadavg']).stdout);
    const after = triple(fs.readFileSync('/proc/loadavg', 'utf8'));
    expect([before, after]).toContain(shown);
  });
});

describe('diskstats', () => {
  it('shows a container the sectors it wrote to a loop device, and a container without I/O no device lines', async () => {
    const image = path.join(dir, 'disk.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, 96 * 2 ** 20);
    const attach = run('losetup', ['--find', '--show', image]);
    expect(attach.status, attach.stderr).toBe(0);
    const device = attach.stdout.trim();
    cleanup.add(() => {
      run('losetup', ['--detach', device]);
    });
    const [major, minor] = fs.readFileSync(`/sys/block/${path.basename(device)}/dev`, 'utf8').trim().split(':');

    // Linux >= 6.10 counts per-cgroup I/O on a device only once a throttle rule exists on it: a no-op
    // rule (1 EiB/s) in a cgroup of our own, as --enable-blkio-accounting does for every disk.
    const rules = createCgroup(cleanup, 'blkio', 'lxcfs-ts-rules');
    rules.write('blkio.throttle.read_bps_device', `${major}:${minor} 1152921504606846976`);

    const writer = createCgroup(cleanup, 'blkio', 'lxcfs-ts-writer');
    const quiet = createCgroup(cleanup, 'blkio', 'lxcfs-ts-quiet');
    const written = await inContainer([writer], ['proc/diskstats'], `dd if=/dev/zero of=${device} bs=1M count=64 oflag=direct status=none && cat /proc/diskstats`);
    const line = written.split('\n').find((l) => l.trim().split(/\s+/)[2] === path.basename(device));
    expect(line, written).toBeDefined();
    const fields = line!.trim().split(/\s+/);
    expect(fields).toHaveLength(fs.readFileSync('/proc/diskstats', 'utf8').split('\n')[0]!.trim().split(/\s+/).length);
    expect(fields.slice(0, 2)).toEqual([major, minor]);
    expect(Math.abs(Number(fields[9]) - 131072), line).toBeLessThanOrEqual(2048); // sectors written
    expect(Number(fields[7]), line).toBeGreaterThan(0); // writes completed
    expect(Number(fields[5]), line).toBe(0); // sectors read

    const none = await inContainer([quiet], ['proc/diskstats'], 'cat /proc/diskstats');
    expect(none).toBe('');
    // lxcfs 5.0.3 reads only the CFQ-era files, gone from this kernel: it shows the host's lines.
    const theirs = await inContainer([quiet], [], 'cat $LXCFS/proc/diskstats');
    expect(theirs.split('\n')[0]!.trim().split(/\s+/).slice(0, 3)).toEqual(fs.readFileSync('/proc/diskstats', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(0, 3));
  }, 60_000);
});

describe('pressure', () => {
  /** The same cgroup path in several hierarchies, as runtimes with systemd cgroups make them. */
  function samePath(controllers: string[]): { path: string; dirs: Record<string, string> } {
    const first = createCgroup(cleanup, controllers[0]!, 'lxcfs-ts-psi');
    const dirs: Record<string, string> = { [controllers[0]!]: first.dir };
    for (const controller of controllers.slice(1)) {
      const dir = path.join('/sys/fs/cgroup', controller, first.path);
      fs.mkdirSync(dir);
      cleanup.add(() => fs.rmdirSync(dir)); // the container has exited by then
      dirs[controller] = dir;
    }
    return { path: first.path, dirs };
  }

  it('reads the container\'s cgroup2 cgroup (/sys/fs/cgroup/unified here) when it is at the container\'s own path', async () => {
    const { dirs } = samePath(['cpu', 'blkio', 'unified']);
    // memory cgroups live beneath our own here: this container's memory cgroup is elsewhere than its
    // cgroup2 cgroup, as with Docker's cgroupfs driver, so memory pressure is the host's
    const memory = createCgroup(cleanup, 'memory', 'lxcfs-ts-psi');
    const join = [dirs.cpu!, dirs.blkio!, dirs.unified!, memory.dir].map((dir) => ({ dir }) as TestCgroup);
    const out = await inContainer(join, ['proc/pressure/cpu', 'proc/pressure/io', 'proc/pressure/memory'], `
      for r in cpu io memory; do
        echo "== before $r"; cat ${dirs.unified}/$r.pressure; echo "== $r"; cat /proc/pressure/$r; echo "== after $r"; cat ${dirs.unified}/$r.pressure
      done`);
    const sections = new Map<string, string>();
    for (const part of out.split('== ').slice(1)) {
      const newline = part.indexOf('\n');
      sections.set(part.slice(0, newline), part.slice(newline + 1));
    }
    const total = (text: string) => Number(/^some .* total=(\d+)$/m.exec(text)![1]);
    for (const resource of ['cpu', 'io']) {
      const ours = sections.get(resource)!;
      const [before, after] = [sections.get(`before ${resource}`)!, sections.get(`after ${resource}`)!];
      expect(ours, resource).toMatch(/^some avg10=\d+\.\d\d avg60=\d+\.\d\d avg300=\d+\.\d\d total=\d+\nfull avg10=/);
      // The cgroup's totals only grow: ours lies between its file read just before and just after, however
      // much the container stalled meanwhile on a loaded host. The host's totals are far above a new cgroup's.
      expect(total(ours), `${resource}: ${ours} after ${before}`).toBeGreaterThanOrEqual(total(before));
      expect(total(ours), `${resource}: ${ours} before ${after}`).toBeLessThanOrEqual(total(after));
      expect(total(ours)).toBeLessThan(total(fs.readFileSync(`/proc/pressure/${resource}`, 'utf8')) || Infinity);
    }
    // memory: the host's file (read again just after; the unit tests tell the two cases apart when the
    // host has no memory pressure at all, as this one usually)
    expect(Math.abs(total(sections.get('memory')!) - total(fs.readFileSync('/proc/pressure/memory', 'utf8')))).toBeLessThanOrEqual(100_000);
    // A host process in the root of the unified hierarchy gets the host's own files.
    expect(run('cat', [path.join(mnt, 'proc/pressure/memory')]).stdout.split('\n')[0]!.split(' ')[0]).toBe('some');
  }, 30_000);
});

describe('slabinfo', () => {
  it('never shows host slab lines to a container (memory.kmem.slabinfo is empty on this kernel)', async () => {
    const memory = createCgroup(cleanup, 'memory', 'lxcfs-ts-slab');
    const out = await inContainer([memory], ['proc/slabinfo'], 'cat /proc/slabinfo');
    expect(out.split('\n')[0]).toBe('slabinfo - version: 2.1');
    expect(out.trim().split('\n')).toHaveLength(2);
    // lxcfs 5.0.3 serves the root-only host file through its 0444 file.
    const theirs = await inContainer([memory], [], 'cat $LXCFS/proc/slabinfo');
    expect(theirs.trim().split('\n').length).toBeGreaterThan(2);
  }, 30_000);
});
