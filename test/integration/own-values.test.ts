// A container reads its own numbers, never the host's or another container's, in the corners where that
// used to fail: v1 thread lists another process keeps re-reading, every read path including mmap and
// sendfile, an init whose main thread has exited, and a full per-cgroup loadavg table.
//
// Containers are simulated: a process in new pid namespace (unshare) whose init joined cgroups the test
// made; it reads our mount directly (the caller's pid namespace decides what it sees).

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCgroup, type TestCgroup } from '../helpers/cgroups.js';
import { childPids, Cleanup, run, startDaemon } from '../helpers/processes.js';

const cleanup = new Cleanup();
let mnt: string;

beforeAll(async () => {
  const dir = cleanup.tempDir();
  mnt = path.join(dir, 'mnt');
  await startDaemon(cleanup, ['-l', '-p', path.join(dir, 'pid'), mnt], mnt);
}, 60_000);

afterAll(() => cleanup.run());

/** Runs `argv` as pid 1 of a new pid namespace whose init joined `cgroups` first; resolves with its stdout. */
function inNamespace(cgroups: TestCgroup[], argv: string[], timeoutMs = 120_000): Promise<string> {
  const join = cgroups.map((cgroup) => `echo $$ > ${cgroup.dir}/cgroup.procs`).join(' && ') || 'true';
  const child = spawn('sh', ['-c', `${join} && exec unshare --pid --fork --kill-child "$@"`, 'sh', ...argv], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_ALL: 'C', MNT: mnt },
  });
  cleanup.own(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    // 'close', not 'exit': the output may still be on its way when the process has exited.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${argv.join(' ')} failed (${code ?? signal}): ${stderr}\n${stdout}`));
    });
  });
}

function memoryCgroup(name: string, bytes: number): TestCgroup {
  const cgroup = createCgroup(cleanup, 'memory', name);
  cgroup.write('memory.limit_in_bytes', bytes);
  return cgroup;
}

function memTotalKb(meminfo: string): number {
  return Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1]);
}

describe('loadavg thread lists on cgroup v1', () => {
  it('stay current while another process re-reads the same tasks file every 20 ms through an open descriptor', async () => {
    const cpu = createCgroup(cleanup, 'cpu', 'lxcfs-ts-truth-tasks');
    // Keeps the kernel's pid list of the cgroup alive, as monitoring agents do.
    const watcher = spawn(
      'python3',
      [
        '-c',
        `import os, time\nfd = os.open(${JSON.stringify(cpu.dir + '/tasks')}, os.O_RDONLY)\nwhile True:\n    os.pread(fd, 1 << 16, 0)\n    time.sleep(0.02)`,
      ],
      { stdio: 'ignore' },
    );
    cleanup.own(watcher);
    // One runnable thread at almost every moment, each a new process living 0.3 s.
    const script = `
      while :; do timeout 0.3 sh -c 'while :; do :; done'; done &
      for i in $(seq 1 36); do cat "$MNT/proc/loadavg"; sleep 1; done`;
    const lines = (await inNamespace([cpu], ['sh', '-c', script])).trim().split('\n');
    watcher.kill('SIGKILL');
    expect(lines.length).toBeGreaterThanOrEqual(30);
    // From the second sample (5 s period) on, the runnable count is the busy child's.
    const running = lines.slice(8).map((line) => Number(line.split(' ')[3]!.split('/')[0]));
    const busy = running.filter((n) => n >= 1).length;
    expect(busy / running.length, lines.join('\n')).toBeGreaterThan(0.5);
    // About 6 samples of one runnable thread: 1 - e^(-30/60) ≈ 0.39.
    expect(Number(lines.at(-1)!.split(' ')[0]), lines.join('\n')).toBeGreaterThan(0.2);
  }, 120_000);
});

// Each of two containers reads its meminfo by every read path, concurrently, and reports the MemTotal
// values it got per path: its own, another's, or nothing (mmap of a file of size 0).
const READ_PATHS = `
import json, mmap, os, re, sys
path, own, tries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def total(data):
    m = re.search(rb'^MemTotal:\\s+(\\d+) kB', data, re.M)
    return int(m.group(1)) if m else None
def by_read(fd): return os.read(fd, 1 << 16)
def by_pread(fd): return os.pread(fd, 1 << 16, 0)
def by_readv(fd):
    buf = bytearray(1 << 16)
    n = os.readv(fd, [buf])
    return bytes(buf[:n])
sink = os.memfd_create('sink')
def by_sendfile(fd):
    os.ftruncate(sink, 0)
    n = os.sendfile(sink, fd, 0, 1 << 16)
    return os.pread(sink, n, 0)
def by_mmap(fd):
    size = os.fstat(fd).st_size
    if size == 0: return b''
    with mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ) as m: return m[:]
paths = {'read': (0, by_read), 'pread': (0, by_pread), 'readv': (0, by_readv), 'sendfile': (0, by_sendfile),
         'O_DIRECT': (os.O_DIRECT, by_read), 'mmap': (0, by_mmap)}
counts = {name: {'own': 0, 'other': 0, 'nothing': 0} for name in paths}
others = set()
for i in range(tries):
    for name, (flags, read) in paths.items():
        fd = os.open(path, os.O_RDONLY | flags)
        try: value = total(read(fd))
        finally: os.close(fd)
        kind = 'nothing' if value is None else 'own' if value == own else 'other'
        counts[name][kind] += 1
        if kind == 'other': others.add(value)
print(json.dumps({'counts': counts, 'others': sorted(others)}))
`;

describe('read paths', () => {
  it('never give one container the meminfo rendered for another: read, pread, readv, sendfile, O_DIRECT, mmap', async () => {
    const big = memoryCgroup('lxcfs-ts-truth-256m', 256 << 20);
    const small = memoryCgroup('lxcfs-ts-truth-128m', 128 << 20);
    const tries = 1000;
    const results = await Promise.all(
      (
        [
          [big, 262144],
          [small, 131072],
        ] as const
      ).map(
        async ([cgroup, own]) =>
          JSON.parse(
            await inNamespace(
              [cgroup],
              ['python3', '-c', READ_PATHS, path.join(mnt, 'proc/meminfo'), String(own), String(tries)],
            ),
          ) as {
            counts: Record<string, { own: number; other: number; nothing: number }>;
            others: number[];
          },
      ),
    );
    for (const result of results) {
      const summary = JSON.stringify(result);
      expect(result.others, summary).toEqual([]);
      for (const name of ['read', 'pread', 'readv', 'O_DIRECT'])
        expect(result.counts[name]!.own, `${name}: ${summary}`).toBe(tries);
      // Size 0: the page-cache paths (a reader that maps what stat says; sendfile) get nothing, never a
      // page another container filled.
      expect(result.counts.mmap!.nothing, summary).toBe(tries);
      expect(result.counts.sendfile!.nothing, summary).toBe(tries);
    }
    // A mapping past the size faults: SIGBUS, no content.
    const mapPage = [
      'import ctypes, os',
      'libc = ctypes.CDLL(None)',
      'libc.mmap.restype = ctypes.c_void_p',
      'libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]',
      `fd = os.open(${JSON.stringify(path.join(mnt, 'proc/meminfo'))}, os.O_RDONLY)`,
      'page = libc.mmap(None, 4096, 1, 2, fd, 0)  # PROT_READ, MAP_PRIVATE',
      'print(ctypes.string_at(page, 16))',
    ].join('\n');
    const mapped = run('python3', ['-c', mapPage]);
    expect(mapped.signal, mapped.stdout + mapped.stderr).toBe('SIGBUS');
  }, 180_000);
});

// The init calls pthread_exit in its main thread (ctypes releases the GIL around the call); its other
// thread keeps the process alive.
const ZOMBIE_LEADER_INIT = `
import ctypes, threading, time
def live():
    while True: time.sleep(1)
threading.Thread(target=live).start()
ctypes.CDLL(None).pthread_exit(None)
`;

describe('an init whose main thread has exited', () => {
  it("still gets its container's values (the cgroups of its live threads)", async () => {
    const memory = memoryCgroup('lxcfs-ts-truth-zombie', 256 << 20);
    const launcher = spawn(
      'sh',
      [
        '-c',
        `echo $$ > ${memory.dir}/cgroup.procs && exec unshare --pid --fork --kill-child python3 -c "$1"`,
        'sh',
        ZOMBIE_LEADER_INIT,
      ],
      { stdio: 'ignore' },
    );
    cleanup.own(launcher);
    let init = 0;
    let thread = 0;
    for (let attempt = 0; attempt < 250 && !thread; attempt++) {
      await sleep(20);
      const [child] = childPids(launcher.pid!);
      if (child === undefined) continue;
      init = child;
      const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${init}/status`, 'utf8'))?.[1];
      const tids = fs
        .readdirSync(`/proc/${init}/task`)
        .map(Number)
        .filter((tid) => tid !== init);
      if (state === 'Z' && tids.length === 1) thread = tids[0]!;
    }
    expect(thread, 'the init became a zombie leader with one live thread').toBeGreaterThan(0);
    // What the kernel says: the exited leader is in the root memory cgroup, its thread in ours.
    expect(fs.readFileSync(`/proc/${init}/cgroup`, 'utf8')).toMatch(/:memory:\/\n/);
    expect(fs.readFileSync(`/proc/${thread}/cgroup`, 'utf8')).toContain(`:memory:${memory.path}\n`);
    const readings = [];
    for (let i = 0; i < 20; i++) {
      const cat = spawnSync('nsenter', ['-t', String(thread), '-p', '--', 'cat', path.join(mnt, 'proc/meminfo')], {
        encoding: 'utf8',
      });
      readings.push(memTotalKb(cat.stdout));
    }
    expect(new Set(readings)).toEqual(new Set([262144]));
    launcher.kill('SIGKILL');
  }, 60_000);
});

describe('the per-cgroup loadavg table', () => {
  it("never shows a new container, or one with a long cgroup path, the host's loadavg after 4,200 other cgroups were read", async () => {
    const parent = createCgroup(cleanup, 'cpu', 'lxcfs-ts-truth-fill');
    const count = 4200;
    for (let i = 0; i < count; i++) parent.child(`c${i}`);
    // One process in the daemon's pid namespace: it is read as whatever cgroup it is in.
    const fill = run(
      'python3',
      [
        '-c',
        `
import os, sys
base, loadavg, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    with open(f'{base}/c{i}/cgroup.procs', 'w') as f: f.write(str(os.getpid()))
    with open(loadavg) as f: f.read()
with open(f'{base}/cgroup.procs', 'w') as f: f.write(str(os.getpid()))
print('filled')`,
        parent.dir,
        path.join(mnt, 'proc/loadavg'),
        String(count),
      ],
      { timeout: 120_000 },
    );
    expect(fill.stdout + fill.stderr).toContain('filled');
    const fresh = createCgroup(cleanup, 'cpu', 'lxcfs-ts-truth-new');
    // 3 levels of 200 characters: beyond the 512-byte keys the table used to take.
    let deep = createCgroup(cleanup, 'cpu', 'lxcfs-ts-truth-deep');
    for (const letter of ['a', 'b', 'c']) deep = deep.child(letter.repeat(200));
    expect(deep.dir.length).toBeGreaterThan(613);
    const hostTotal = Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[3]!.split('/')[1]);
    expect(hostTotal).toBeGreaterThan(20);
    for (const cgroup of [fresh, deep]) {
      const line = (await inNamespace([cgroup], ['cat', path.join(mnt, 'proc/loadavg')])).trim();
      // Its own: a new cgroup shows lxcfs's first line, 0.00 0.00 0.00 0/1 <pid>; never the host's x/<hundreds>.
      expect(line, `${cgroup.path}: ${line} (host total ${hostTotal})`).toMatch(/^0\.00 0\.00 0\.00 0\/1 \d+$/);
    }
  }, 240_000);
});
