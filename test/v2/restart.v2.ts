// A graceful upgrade on a kernel without FUSE_NOTIFY_RESEND (6.1, FUSE 7.38): the in-band handoff
// needs no RESEND, so readers lose nothing; and the daemon says at start what a crash would cost here.
// One upgrade is the kernel-facing proof: a second one hands the same connection over the same way
// (the host suite chains five), and under emulation each costs about a minute.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Cleanup, startDaemon, TIME_SCALE, upgradeDaemon } from '../helpers/processes.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

// Reads meminfo and stat in a loop until the stop file appears; counts reads that fail or come back
// incomplete.
const READER = `
import os, sys
stop, files = sys.argv[1], sys.argv[2:]
reads = failures = 0
while not os.path.exists(stop):
    for name in files:
        try:
            with open(name, 'rb', buffering=0) as f:
                text = f.read(1 << 20).decode()
            ok = text.endswith('\\n') and (text.startswith('MemTotal:') or text.startswith('cpu '))
        except OSError:
            ok = False
        reads += 1
        failures += not ok
print(reads, failures)
`;

it('loses no read over a graceful upgrade, and logs what a crash would cost without RESEND', async () => {
  const dir = cleanup.tempDir();
  const mnt = path.join(dir, 'mnt');
  const daemon = await startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt);
  expect(daemon.output()).toMatch(/"resend":false/);
  // Logged right after "serving".
  for (let i = 0; i < 100 && !/FUSE_NOTIFY_RESEND/.test(daemon.output()); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  expect(daemon.output()).toMatch(/"level":40,.*FUSE_NOTIFY_RESEND.*graceful upgrades lose nothing/);
  const stop = path.join(dir, 'stop');
  const readers = [0, 1].map(
    () =>
      new Promise<string>((resolve, reject) => {
        const child = spawn('python3', ['-c', READER, stop, path.join(mnt, 'proc/meminfo'), path.join(mnt, 'proc/stat')], { stdio: ['ignore', 'pipe', 'inherit'] });
        cleanup.own(child);
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        // 'close', not 'exit': a process can exit before its last output has been read from the pipe.
        child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`reader exited with ${code}`))));
      }),
  );
  await upgradeDaemon(path.join(dir, 'pid'));
  const deadline = Date.now() + 30_000 * TIME_SCALE;
  while (!/"msg":"upgraded the serving process"/.test(daemon.output())) {
    if (Date.now() > deadline) throw new Error(`the upgrade did not finish:\n${daemon.output().slice(-2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // In-band, not by killing the old serving process: that would lose the requests it held on this kernel.
  const upgraded = daemon
    .output()
    .split('\n')
    .find((line) => line.includes('"msg":"upgraded the serving process"'));
  console.log(`the upgrade under emulation: ${upgraded}`);
  expect(upgraded).toMatch(/"handedOver":true/);
  fs.writeFileSync(stop, '');
  const results = (await Promise.all(readers)).map((out) => out.trim().split(' ').map(Number));
  for (const [reads, failures] of results) {
    expect(reads).toBeGreaterThan(10);
    expect(failures).toBe(0);
  }
  expect((await daemon.stop()).code).toBe(0);
});
