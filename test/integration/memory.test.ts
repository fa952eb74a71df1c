// Memory views on the real kernel (cgroup v1 here): simulated containers in fresh pid and mount
// namespaces with our meminfo bind-mounted over theirs, real clients, and Debian's lxcfs 5.0.3 side by
// side on the same cgroups.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exemptFields } from '../compat/differences.js';
import { createCgroup, type TestCgroup } from '../helpers/cgroups.js';
import { startLxcfs, type LxcfsPeer } from '../helpers/lxcfs-peer.js';
import { Cleanup, firstChildPid, LXCFS_TS, run, startDaemon } from '../helpers/processes.js';

const MiB = 1024 * 1024;
const cleanup = new Cleanup();
let mnt: string;
let lxcfs: LxcfsPeer;

beforeAll(async () => {
  const dir = cleanup.tempDir();
  mnt = path.join(dir, 'mnt');
  [lxcfs] = await Promise.all([startLxcfs(cleanup), startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt)]);
}, 60_000);

afterAll(() => cleanup.run());

/** Runs `script` as pid 1 of a fresh pid + mount namespace placed in `cgroup`, with our meminfo and
 * swaps bind-mounted over its own (what `docker run -v /var/lib/lxcfs/proc/meminfo:/proc/meminfo`
 * does). `$LXCFS` names Debian lxcfs's mount for side-by-side reads. */
function inContainer(cgroup: TestCgroup, script: string): string {
  const setup = `mount --bind ${mnt}/proc/meminfo /proc/meminfo && mount --bind ${mnt}/proc/swaps /proc/swaps && ${script}`;
  const result = run('sh', [
    '-c',
    `echo $$ > ${cgroup.dir}/cgroup.procs && exec unshare --pid --fork --mount --mount-proc --propagation private sh -c "$1"`,
    'sh',
    setup,
  ], { timeout: 60_000 });
  if (result.status !== 0) throw new Error(`container script failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

function parseMeminfo(text: string): Map<string, number> {
  return new Map(text.trim().split('\n').map((line) => [line.split(':')[0]!, Number(line.split(/\s+/)[1])]));
}

/** Limits must match exactly, usage-derived counters within `toleranceKb` (or 2 % for big host-wide
 * counters such as Committed_AS, which move with everything else the host runs between the two reads),
 * the known differences not at all; returns the fields that differ beyond that. */
function unexplainedDifferences(ours: string, theirs: string, toleranceKb: number): string[] {
  const exempt = exemptFields('meminfo', 'v1');
  const a = parseMeminfo(ours);
  const b = parseMeminfo(theirs);
  const exact = new Set(['MemTotal', 'SwapTotal', 'Buffers', 'SwapCached']);
  const problems: string[] = [];
  if ([...a.keys()].join() !== [...b.keys()].join()) problems.push(`line keys differ: ${[...a.keys()].join(',')} vs ${[...b.keys()].join(',')}`);
  for (const [key, value] of a) {
    if (exempt.has(key)) continue;
    const other = b.get(key);
    const allowed = exact.has(key) ? 0 : Math.max(toleranceKb, value * 0.02);
    if (other === undefined || Math.abs(value - other) > allowed) problems.push(`${key}: ours ${value} lxcfs ${other}`);
  }
  return problems;
}

describe('a container with a 256 MiB limit', () => {
  let cgroup: TestCgroup;
  beforeAll(() => {
    cgroup = createCgroup(cleanup, 'memory');
    cgroup.write('memory.limit_in_bytes', 256 * MiB);
  });

  it('is seen by free, node and cat as 256 MiB of RAM', () => {
    const out = inContainer(cgroup, `free -b | awk '/^Mem:/{print $2}'; node -e 'console.log(require("os").totalmem())'; grep MemTotal /proc/meminfo`);
    expect(out.trim().split('\n')).toEqual(['268435456', '268435456', 'MemTotal:         262144 kB']);
  });

  it('shows MemFree falling when the container allocates 64 MiB and rising when it frees it', () => {
    const out = inContainer(
      cgroup,
      `python3 -c '
def free():
    return int([l for l in open("/proc/meminfo") if l.startswith("MemFree:")][0].split()[1])
before = free()
block = bytearray(b"x" * (64 << 20))
during = free()
del block
after = free()
print(before, during, after)
'`,
    );
    const [before, during, after] = out.trim().split(' ').map(Number) as [number, number, number];
    expect(before - during).toBeGreaterThan(56 * 1024);
    expect(after - during).toBeGreaterThan(56 * 1024);
  });

  it('matches Debian lxcfs field by field, except the listed differences', () => {
    // 32 MiB of dirty page cache first, so that Cached, the file LRUs and Dirty are not all zero.
    const scratch = path.join(path.dirname(mnt), 'page-cache');
    cleanup.add(() => fs.rmSync(scratch, { force: true }));
    const out = inContainer(
      cgroup,
      `dd if=/dev/zero of=${scratch} bs=1M count=32 status=none; cat /proc/meminfo; echo ---; cat ${lxcfs.mountPoint}/proc/meminfo; echo ---; cat /proc/swaps; echo ---; cat ${lxcfs.mountPoint}/proc/swaps`,
    );
    const [ours, theirs, ourSwaps, theirSwaps] = out.split('---\n');
    expect(parseMeminfo(ours!).get('MemTotal')).toBe(262144);
    expect(parseMeminfo(ours!).get('Cached')).toBeGreaterThan(30 * 1024);
    expect(unexplainedDifferences(ours!, theirs!, 4096)).toEqual([]);
    expect(ourSwaps).toBe(theirSwaps);
  });
});

describe('nested limits', () => {
  it('takes the minimum over ancestors, and the container root\'s view applies to its sub-cgroups', () => {
    const parent = createCgroup(cleanup, 'memory', 'lxcfs-ts-nested');
    parent.write('memory.limit_in_bytes', 200 * MiB);
    const container = parent.child('container');
    const small = container.child('small');
    small.write('memory.limit_in_bytes', 64 * MiB);
    const out = inContainer(
      container,
      `grep MemTotal /proc/meminfo; grep MemTotal ${lxcfs.mountPoint}/proc/meminfo; sh -c 'echo $$ > ${small.dir}/cgroup.procs; exec grep MemTotal /proc/meminfo'`,
    );
    expect(out.trim().split('\n')).toEqual(Array(3).fill('MemTotal:         204800 kB'));
  });
});

describe('who is reading', () => {
  let init: number;
  let container: ChildProcess;
  let cgroup: TestCgroup;

  beforeAll(async () => {
    cgroup = createCgroup(cleanup, 'memory');
    cgroup.write('memory.limit_in_bytes', 128 * MiB);
    container = spawn('sh', [
      '-c',
      `echo $$ > ${cgroup.dir}/cgroup.procs && exec unshare --pid --fork --mount --mount-proc --propagation private sh -c "$1"`,
      'sh',
      `mount --bind ${mnt}/proc/meminfo /proc/meminfo && echo ready && exec sleep 600`,
    ], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.own(container);
    await new Promise<void>((resolve) => container.stdout!.once('data', () => resolve()));
    // The container's init is unshare's child.
    init = await firstChildPid(container.pid!);
    cleanup.add(() => {
      try {
        process.kill(init, 'SIGKILL');
      } catch {
        // Already gone with unshare.
      }
    });
  });

  it('gives a process that joins the container later (nsenter) the container\'s values, whatever its cgroup', () => {
    // nsenter runs from this test's (unlimited) cgroup and stays there.
    const out = run('nsenter', ['-t', String(init), '-p', '-m', '--', 'sh', '-c', 'grep MemTotal /proc/meminfo; cat /proc/self/cgroup | grep memory']);
    expect(out.stdout.split('\n')[0]).toBe('MemTotal:         131072 kB');
    expect(out.stdout).not.toContain(cgroup.path);
  });

  it('gives a host process its own cgroup\'s values: host values where it has no limit', () => {
    const hostTotal = parseMeminfo(fs.readFileSync('/proc/meminfo', 'utf8')).get('MemTotal');
    expect(parseMeminfo(run('cat', [path.join(mnt, 'proc/meminfo')]).stdout).get('MemTotal')).toBe(hostTotal);
    const limited = run('sh', ['-c', `echo $$ > ${cgroup.dir}/cgroup.procs && exec grep MemTotal ${mnt}/proc/meminfo`]);
    expect(limited.stdout.trim()).toBe('MemTotal:         131072 kB');
  });

  it('shows the same from `lxcfs-ts show --pid`', () => {
    const out = run(LXCFS_TS, ['show', 'meminfo', '--pid', String(init)]);
    expect(out.stdout.split('\n')[0]).toBe('MemTotal:         131072 kB');
  });
});

describe('a cgroup that goes away', () => {
  it('falls back to the host values when the container\'s init leaves its cgroup and it is removed, and keeps serving', () => {
    const doomed = createCgroup(cleanup, 'memory');
    doomed.write('memory.limit_in_bytes', 96 * MiB);
    // Inside the container, $$ is its init (pid 1 there): it moves itself to the parent cgroup, which
    // has no limit, and removes the old one.
    const out = inContainer(doomed, `grep MemTotal /proc/meminfo; echo $$ > ${path.dirname(doomed.dir)}/cgroup.procs; rmdir ${doomed.dir}; grep MemTotal /proc/meminfo`);
    const lines = out.trim().split('\n');
    expect(lines[0]).toBe('MemTotal:          98304 kB');
    const hostTotal = parseMeminfo(fs.readFileSync('/proc/meminfo', 'utf8')).get('MemTotal');
    expect(lines[1]).toBe(`MemTotal:       ${String(hostTotal).padStart(8)} kB`);
    expect(fs.readFileSync(path.join(mnt, 'proc/meminfo'), 'utf8')).toMatch(/^MemTotal:/);
  });
});
