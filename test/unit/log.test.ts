// The daemon's log lines: pino's JSON on a plain stdout; on systemd's journal stream (JOURNAL_STREAM
// names stdout's device and inode) one readable line per event with its syslog priority, which journald
// takes as the line's PRIORITY. Run in a child process whose stdout is a file, as systemd would connect it.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { humanLine } from '../../src/util/log.js';

const LOG_MODULE = path.resolve(import.meta.dirname, '../../dist/util/log.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lxcfs-ts-log-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** What a process logging at each level writes to stdout (a file), with the given environment. */
function logged(format: string, journal: 'stdout' | 'another file' | 'none'): string[] {
  const out = path.join(dir, `out-${format}-${journal.replace(' ', '-')}`);
  const fd = fs.openSync(out, 'w');
  const stat = fs.fstatSync(fd, { bigint: true });
  const other = fs.statSync(dir, { bigint: true });
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  if (journal === 'stdout') env.JOURNAL_STREAM = `${stat.dev}:${stat.ino}`;
  if (journal === 'another file') env.JOURNAL_STREAM = `${other.dev}:${other.ino}`;
  const script = `
    const { createLogger } = await import(${JSON.stringify(LOG_MODULE)});
    const log = createLogger({ level: 'debug', format: ${JSON.stringify(format)} }, { pid: 42 });
    log.debug({ op: 'READ' }, 'request');
    log.info({ mountPoint: '/var/lib/lxcfs', resend: false }, 'serving');
    log.warn({ why: 'two words' }, 'careful');
    log.error({ err: new Error('boom') }, 'the serving process died');
    log.fatal('gone');`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', fd, 'pipe'],
    env,
    encoding: 'utf8',
  });
  fs.closeSync(fd);
  expect(result.status, result.stderr).toBe(0);
  return fs.readFileSync(out, 'utf8').split('\n').filter(Boolean);
}

describe('log lines', () => {
  it('on the journal stream: one line per event, led by its syslog priority', () => {
    expect(logged('auto', 'stdout')).toEqual([
      '<7>request pid=42 op=READ',
      '<6>serving pid=42 mountPoint=/var/lib/lxcfs resend=false',
      '<4>careful pid=42 why="two words"',
      '<3>the serving process died pid=42 err="boom"',
      '<2>gone pid=42',
    ]);
  });

  it("on the journal stream with --log-format json: the priority, then pino's JSON", () => {
    const lines = logged('json', 'stdout');
    expect(lines.map((line) => line.slice(0, 3))).toEqual(['<7>', '<6>', '<4>', '<3>', '<2>']);
    expect(JSON.parse(lines[1]!.slice(3))).toMatchObject({
      level: 30,
      pid: 42,
      msg: 'serving',
      mountPoint: '/var/lib/lxcfs',
    });
  });

  it("elsewhere, also when JOURNAL_STREAM was inherited but stdout goes somewhere else: pino's JSON", () => {
    for (const journal of ['none', 'another file'] as const) {
      const lines = logged('auto', journal);
      expect(lines).toHaveLength(5);
      expect(JSON.parse(lines[1]!)).toMatchObject({ level: 30, pid: 42, msg: 'serving', resend: false });
    }
  });

  it('--log-format text off the journal: the readable lines without priorities', () => {
    expect(logged('text', 'none')[1]).toBe('serving pid=42 mountPoint=/var/lib/lxcfs resend=false');
  });

  it('renders nested values as JSON and quotes what would break a key=value reading', () => {
    expect(
      humanLine({ level: 30, time: 1, msg: 'effective configuration', config: { readers: 2 }, path: 'a=b', empty: '' }),
    ).toBe('effective configuration config={"readers":2} path="a=b" empty=""');
  });
});
