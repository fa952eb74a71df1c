// A noisy neighbour: one container keeps a hundred one-byte reads of a served file in flight at all times;
// another container's reads must be served in fair order (round robin between containers), not behind
// the noisy container's whole queue, as the kernel's single FIFO would have them. Judged by counts, not
// by times: how many reads of the noisy container complete while one read of the quiet one is under way.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, startDaemon } from '../helpers/processes.js';

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

const NOISY = path.join(REPO, 'test/fixtures/noisy-reader.py');
const VICTIM = path.join(REPO, 'test/fixtures/victim-reader.py');
const NOISY_PROCESSES = 4;
const THREADS_EACH = 32;
const IN_FLIGHT = NOISY_PROCESSES * THREADS_EACH;
const QUIET_READS = 300;

function noisyReads(counter: string): number {
  const bytes = fs.readFileSync(counter);
  let sum = 0;
  for (let i = 0; i < NOISY_PROCESSES; i++) sum += Number(bytes.readBigUInt64LE(i * 8));
  return sum;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe('a noisy neighbour', () => {
  it("does not put a quiet container's reads behind its own queue", async () => {
    const dir = cleanup.tempDir();
    const mnt = path.join(dir, 'mnt');
    await startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt);
    const counter = path.join(dir, 'counter');
    fs.writeFileSync(counter, Buffer.alloc(8 * NOISY_PROCESSES));

    // The noisy container: its own pid namespace (killing unshare kills everything in it).
    const starts = Array.from(
      { length: NOISY_PROCESSES },
      (_, i) => `python3 ${NOISY} ${path.join(mnt, 'proc/meminfo')} ${THREADS_EACH} ${counter} ${i} &`,
    );
    const inside = `${starts.join(' ')} wait`;
    const noisy = spawn('unshare', ['--pid', '--fork', '--kill-child', 'sh', '-c', inside], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    cleanup.own(noisy);
    await new Promise<void>((resolve, reject) => {
      let ready = 0;
      noisy.stdout.on('data', (chunk: Buffer) => {
        ready += chunk.toString().split('ready').length - 1;
        if (ready === NOISY_PROCESSES) resolve();
      });
      noisy.on('exit', (code) => reject(new Error(`the noisy container exited (${code}) before it was ready`)));
    });
    const started = noisyReads(counter);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const perSecond = noisyReads(counter) - started;
    expect(perSecond).toBeGreaterThan(IN_FLIGHT); // it is reading, many at once

    // The quiet container is this host's pid namespace: another tenant. It runs with a real-time priority,
    // so that what it waits for is the daemon, not a CPU the noisy container's threads keep busy.
    const victim = [VICTIM, path.join(mnt, 'proc/uptime'), String(QUIET_READS), counter];
    const quiet = spawnSync('chrt', ['--fifo', '10', 'python3', ...victim], {
      encoding: 'utf8',
      timeout: 180_000,
    });
    expect(quiet.status, quiet.stderr).toBe(0);
    // Fewer noisy rounds per quiet read would also come from noise that stopped: it must still be going.
    const after = noisyReads(counter);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(noisyReads(counter) - after).toBeGreaterThan(IN_FLIGHT);
    const during = quiet.stdout.trim().split('\n').map(Number);
    console.log(JSON.stringify({ noisyPerSecond: perSecond, median: median(during), max: Math.max(...during) }));
    expect(during).toHaveLength(QUIET_READS);
    // Each noisy thread keeps one request in flight. In one FIFO for everyone (measured with every request
    // queued as one tenant), each of the quiet read's requests (open, read, read at the end) waits for
    // the noisy requests queued ahead of it, and about 45 noisy open-read-close rounds complete meanwhile;
    // in fair order it waits for at most one noisy request per reader, and about 5 do.
    expect(median(during)).toBeLessThan(IN_FLIGHT / 8);
  }, 300_000);
});
