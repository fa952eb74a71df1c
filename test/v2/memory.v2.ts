// Memory views on a real cgroup2 kernel with real swap (zram): nested memory.max / memory.swap.max,
// the container root's view for its sub-cgroups, and Debian's lxcfs 5.0.3 side by side.

import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exemptFields } from '../compat/differences.js';
import { Cleanup, startDaemon } from '../helpers/processes.js';
import { enableZramSwap, inContainer, makeCgroup, meminfoValue } from './guest.js';
import { startLxcfs, type LxcfsPeer } from '../helpers/lxcfs-peer.js';

const MiB = 1024 * 1024;
const FILES = ['proc/meminfo', 'proc/swaps'];
const cleanup = new Cleanup();
let ours: string;
let lxcfs: LxcfsPeer;

beforeAll(async () => {
  const dir = cleanup.tempDir();
  ours = path.join(dir, 'mnt');
  enableZramSwap(cleanup, 256);
  [lxcfs] = await Promise.all([startLxcfs(cleanup), startDaemon(cleanup, ['-p', path.join(dir, 'pid'), ours], ours)]);
});

afterAll(() => cleanup.run());

function parseMeminfo(text: string): Map<string, number> {
  return new Map(text.trim().split('\n').map((line) => [line.split(':')[0]!, Number(line.split(/\s+/)[1])]));
}

describe('a container under a parent limited to 500M (swap 200M) with its own 900M (swap 450M)', () => {
  // cgroup2 keeps processes out of inner nodes, so the container's init lives in <container>/init.scope
  // (as under systemd), which the views strip: the container's own cgroup applies.
  let container: string;
  let deeper: string;
  beforeAll(() => {
    const parent = makeCgroup(cleanup, { 'memory.max': `${500 * MiB}`, 'memory.swap.max': `${200 * MiB}` });
    const root = makeCgroup(cleanup, { 'memory.max': `${900 * MiB}`, 'memory.swap.max': `${450 * MiB}` }, parent);
    container = makeCgroup(cleanup, {}, root, 'init.scope');
    deeper = makeCgroup(cleanup, { 'memory.max': `${64 * MiB}` }, root, 'small');
  });

  it('sees 512000 kB of RAM and 204800 kB of swap in meminfo, swaps, free and node', () => {
    const out = inContainer(container, ours, FILES, `cat /proc/meminfo; echo ---; cat /proc/swaps; echo ---; free -b | awk '/^Mem:/{print $2}'; node -e 'console.log(require("os").totalmem())'`);
    const [meminfo, swaps, clients] = out.split('---\n') as [string, string, string];
    expect(meminfoValue(meminfo, 'MemTotal')).toBe(512000);
    expect(meminfoValue(meminfo, 'SwapTotal')).toBe(204800);
    expect(meminfoValue(meminfo, 'SwapFree')).toBeLessThanOrEqual(204800);
    expect(swaps).toMatch(/^Filename\t+Type\t+Size\tUsed\tPriority\nnone {36}virtual\t\t204800\t\d+\t0\n$/);
    expect(clients.trim().split('\n')).toEqual([String(500 * MiB), String(500 * MiB)]);
  });

  it('gives a process moved into a smaller sub-cgroup the container root\'s view', () => {
    const out = inContainer(container, ours, FILES, `sh -c 'echo 0 > ${deeper}/cgroup.procs; exec grep MemTotal /proc/meminfo'`);
    expect(out.trim()).toBe('MemTotal:         512000 kB');
  });

  it('shows MemFree falling when the container allocates 64 MiB', () => {
    const out = inContainer(container, ours, FILES, `python3 -c '
def free():
    return int([l for l in open("/proc/meminfo") if l.startswith("MemFree:")][0].split()[1])
before = free()
block = bytearray(b"x" * (64 << 20))
print(before, free())
'`);
    const [before, during] = out.trim().split(' ').map(Number) as [number, number];
    expect(before - during).toBeGreaterThan(56 * 1024);
  });

  it('matches Debian lxcfs field by field, except the listed differences', () => {
    // lxcfs's file read just before and just after ours: host-wide counters (Committed_AS once moved 9 MB
    // between two reads under emulation) may drift, so ours must lie within what lxcfs showed around it.
    const L = `${lxcfs.mountPoint}/proc/meminfo`;
    const out = inContainer(container, ours, FILES, `cat ${L}; echo ---; cat /proc/meminfo; echo ---; cat ${L}`);
    const [before, a, after] = out.split('---\n').map(parseMeminfo) as [Map<string, number>, Map<string, number>, Map<string, number>];
    const exempt = exemptFields('meminfo', 'v2');
    const exact = new Set(['MemTotal', 'Buffers', 'SwapCached']);
    const problems: string[] = [];
    for (const [key, value] of a) {
      if (exempt.has(key)) continue;
      const [first, last] = [before.get(key), after.get(key)];
      if (first === undefined || last === undefined) {
        problems.push(`${key}: ours ${value}, lxcfs has none`);
        continue;
      }
      const allowed = exact.has(key) ? 0 : Math.max(4096, value * 0.02);
      if (value < Math.min(first, last) - allowed || value > Math.max(first, last) + allowed)
        problems.push(`${key}: ours ${value} lxcfs ${first} before, ${last} after`);
    }
    expect(problems).toEqual([]);
  });
});
