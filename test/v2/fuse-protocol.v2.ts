// The daemon on an older FUSE: Linux 6.1 speaks protocol 7.38, before FUSE_NOTIFY_RESEND (7.40, Linux
// 6.9). The daemon must negotiate down, serve normally, and say at startup what the missing RESEND costs.

import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, isMounted, run, startDaemon, type Daemon } from '../helpers/processes.js';

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

const PINO_WARN = 40;

const cleanup = new Cleanup();
let dir: string;
let mnt: string;
let daemon: Daemon;

/** The daemon's complete JSON log lines so far. */
function logLines(): LogLine[] {
  return daemon
    .output()
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** The first log line matching `test`, waiting up to 10 s for it. */
async function waitForLine(test: (line: LogLine) => boolean): Promise<LogLine | undefined> {
  for (let i = 0; i < 100; i++) {
    const found = logLines().find(test);
    if (found) return found;
    await sleep(100);
  }
  return undefined;
}

beforeAll(async () => {
  dir = cleanup.tempDir();
  mnt = path.join(dir, 'mnt');
  daemon = await startDaemon(cleanup, ['-p', path.join(dir, 'pid'), mnt], mnt);
});

afterAll(() => cleanup.run());

describe('the daemon on Linux 6.1 (FUSE 7.38, no FUSE_NOTIFY_RESEND)', () => {
  it('negotiates 7.38 and reports that the kernel has no RESEND', async () => {
    const serving = await waitForLine((line) => line.msg === 'serving');
    expect(serving).toBeDefined();
    expect(serving).toMatchObject({ kernelProtocol: '7.38', protocol: '7.38', resend: false });
  });

  it('logs a warning that names FUSE_NOTIFY_RESEND and what its absence disables', async () => {
    const warning = await waitForLine((line) => line.msg.includes('FUSE_NOTIFY_RESEND'));
    expect(warning, daemon.output()).toBeDefined();
    expect(warning!.level).toBe(PINO_WARN);
    expect(warning!.kernelProtocol).toBe('7.38');
  });

  it('serves the tree on the older protocol', () => {
    expect(fs.readdirSync(path.join(mnt, 'proc')).sort()).toEqual(
      ['cpuinfo', 'diskstats', 'loadavg', 'meminfo', 'pressure', 'slabinfo', 'stat', 'swaps', 'uptime'],
    );
    expect(run('cat', [path.join(mnt, 'proc/meminfo')]).stdout).toMatch(/^MemTotal:\s+\d+ kB\n/);
    expect(run('dd', [`if=${path.join(mnt, 'proc/cpuinfo')}`, 'bs=7', 'status=none']).stdout).toBe(fs.readFileSync('/proc/cpuinfo', 'utf8'));
  });

  it('stops cleanly on SIGTERM', async () => {
    const { code } = await daemon.stop();
    expect(code).toBe(0);
    expect(isMounted(mnt)).toBe(false);
    expect(fs.existsSync(path.join(dir, 'pid'))).toBe(false);
  });
});
