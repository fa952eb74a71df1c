// The FUSE layer alone, on a real mount of a test filesystem (test/fixtures/echo-fs.mjs): caller
// identity, snapshots across READs, large files in small pieces, directory listings.

import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, run, startFixture, TIME_SCALE } from '../helpers/processes.js';

const cleanup = new Cleanup();
let mnt: string;

beforeAll(async () => {
  mnt = path.join(cleanup.tempDir(), 'mnt');
  fs.mkdirSync(mnt);
  await startFixture(cleanup, mnt, 'echo');
}, 30_000 * TIME_SCALE);

afterAll(() => cleanup.run());

function python(script: string, ...args: string[]): string {
  const result = run('python3', ['-c', script, ...args], { timeout: 60_000 * TIME_SCALE });
  if (result.status !== 0) throw new Error(`python failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

describe('caller identity', () => {
  it('shows each of two concurrent readers its own content, never another reader\'s snapshot', async () => {
    // Each process reads the file 300 times in uneven chunks and checks that every line names its own pid;
    // where everything runs several times slower (the v2 guest emulates its CPUs), proportionally fewer
    // times: still thousands of reads from the two processes interleaved.
    const rounds = Math.round(300 / TIME_SCALE);
    const script = `
import os, sys
path = sys.argv[1]
me = os.getpid()
for round in range(int(sys.argv[2])):
    fd = os.open(path, os.O_RDONLY)
    chunks = []
    size = 1000 + round * 37
    while True:
        b = os.read(fd, size)
        if not b: break
        chunks.append(b)
    os.close(fd)
    text = b''.join(chunks).decode()
    lines = text.splitlines()
    assert len(lines) == 4000, (round, len(lines))
    bad = [l for l in lines if not l.startswith('pid %d ' % me)]
    assert not bad, (round, bad[:2])
print('ok', me)
`;
    const { spawn } = await import('node:child_process');
    const readers = [0, 1].map(
      () =>
        new Promise<string>((resolve, reject) => {
          const child = spawn('python3', ['-c', script, path.join(mnt, 'whoami'), String(rounds)], { stdio: ['ignore', 'pipe', 'pipe'] });
          cleanup.own(child);
          let out = '';
          let err = '';
          child.stdout.on('data', (c: Buffer) => (out += c.toString()));
          child.stderr.on('data', (c: Buffer) => (err += c.toString()));
          // 'close', not 'exit': a process can exit before its last output has been read from the pipe.
          child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(err))));
        }),
    );
    const outputs = await Promise.all(readers);
    const pids = outputs.map((o) => o.trim().split(' ')[1]);
    expect(outputs.every((o) => o.startsWith('ok '))).toBe(true);
    expect(pids[0]).not.toBe(pids[1]);
  }, 60_000 * TIME_SCALE);

  it('passes the thread id of a reading thread, and the uid', () => {
    const out = python(`
import os, sys, threading
result = {}
def read():
    with open(sys.argv[1]) as f:
        result['line'] = f.readline()
    result['tid'] = threading.get_native_id()
t = threading.Thread(target=read); t.start(); t.join()
print(result['line'].split()[1], result['tid'], result['line'].split()[3])
`, path.join(mnt, 'whoami'));
    const [seenPid, tid, uid] = out.trim().split(' ');
    expect(seenPid).toBe(tid);
    expect(uid).toBe('0');
  });
});

describe('snapshots', () => {
  it('serves a 1 MiB file read in 4 KiB chunks whole and identical to one big read', () => {
    const out = python(`
import os, sys, hashlib
p = sys.argv[1]
with open(p, 'rb', buffering=0) as f:
    whole = f.read(2 << 20)
fd = os.open(p, os.O_RDONLY)
parts = []
while True:
    b = os.read(fd, 4096)
    if not b: break
    parts.append(b)
os.close(fd)
chunked = b''.join(parts)
print(len(whole), len(chunked), whole == chunked, hashlib.sha256(whole).hexdigest())
`, path.join(mnt, 'big'));
    const [wholeLength, chunkedLength, same] = out.trim().split(' ');
    expect(wholeLength).toBe(String(1 << 20));
    expect(chunkedLength).toBe(String(1 << 20));
    expect(same).toBe('True');
    const expected = Buffer.alloc(1 << 20);
    for (let i = 0; i < expected.length; i++) expected[i] = (i * 7 + (i >> 12)) % 251;
    expect(fs.readFileSync(path.join(mnt, 'big')).equals(expected)).toBe(true);
  });

  it('never tears a file whose every rendering differs, with many readers across reader threads', () => {
    // 4 processes × 200 chunked reads of a file whose length and content change at every rendering
    // (proportionally fewer where everything runs slower, as above).
    const out = python(`
import os, sys
from multiprocessing import Pool
def check(n):
    for i in range(int(sys.argv[2])):
        fd = os.open(sys.argv[1], os.O_RDONLY)
        parts = []
        while True:
            b = os.read(fd, 512 + 97 * (i % 13))
            if not b: break
            parts.append(b)
        os.close(fd)
        lines = b''.join(parts).decode().splitlines()
        head = lines[0].split()
        render, count = head[1], int(head[3])
        assert len(lines) == count, (len(lines), count)
        assert all(l.split()[1] == render for l in lines), 'mixed renderings'
    return True
with Pool(4) as p:
    print(all(p.map(check, range(4))))
`, path.join(mnt, 'changing'), String(Math.round(200 / TIME_SCALE)));
    expect(out.trim()).toBe('True');
  }, 60_000 * TIME_SCALE);

  it('follows lxcfs offset rules: EOF before the first read, EINVAL past the end, slices after', () => {
    const out = python(`
import os, sys, errno
fd = os.open(sys.argv[1], os.O_RDONLY)
r = []
r.append(len(os.pread(fd, 100, 100)))          # no snapshot yet: EOF
first = os.pread(fd, 64, 0)                     # renders
r.append(len(first))
r.append(os.pread(fd, 64, 64) == os.pread(fd, 64, 64))
whole = os.pread(fd, 1 << 20, 0)
r.append(len(os.pread(fd, 10, len(whole))))     # at the end: 0 bytes
try:
    os.pread(fd, 10, len(whole) + 1)
    r.append('no error')
except OSError as e:
    r.append(errno.errorcode[e.errno])
print(*r)
`, path.join(mnt, 'whoami'));
    expect(out.trim()).toBe('0 64 True 0 EINVAL');
  });
});

describe('directories', () => {
  it('lists entries with . and .., stats them, and pages large listings correctly', () => {
    expect(run('ls', ['-a', mnt]).stdout.split('\n').filter(Boolean)).toEqual(['.', '..', 'big', 'changing', 'sub', 'whoami']);
    const long = run('ls', ['-ln', mnt]).stdout;
    // Size 0 whatever the content, as procfs: the kernel then never caches one caller's rendering.
    expect(long).toMatch(/^-r--r--r-- 1 0 0 +0 .* big$/m);
    expect(fs.readFileSync(path.join(mnt, 'big')).length).toBe(1048576);
    expect(long).toMatch(/^dr-xr-xr-x 2 0 0 +0 .* sub$/m);
    expect(fs.readdirSync(path.join(mnt, 'sub'))).toEqual(['empty']);
    expect(fs.readFileSync(path.join(mnt, 'sub/empty')).length).toBe(0);
    expect(() => fs.readdirSync(path.join(mnt, 'big'))).toThrow(/ENOTDIR/);
    expect(() => fs.statSync(path.join(mnt, 'nothing'))).toThrow(/ENOENT/);
  });
});
