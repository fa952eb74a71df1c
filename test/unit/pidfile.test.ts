import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PidFileError, acquirePidFile, isLxcfsTsProcess } from '../../src/daemon/pidfile.js';

const childPids: number[] = [];

/** Starts a long-sleeping node process with `args` after the script, so they show in its cmdline. */
function spawnSleeper(args: string[], script = ['-e', 'setTimeout(() => {}, 60000)']): number {
  const child = spawn(process.execPath, [...script, ...args], { stdio: 'ignore' });
  if (child.pid === undefined) throw new Error('could not spawn a child process');
  childPids.push(child.pid);
  return child.pid;
}

/** The pid of a process that has already exited. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  expect(existsSync(`/proc/${pid}`)).toBe(false);
  return pid;
}

afterAll(() => {
  for (const pid of childPids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

let dir: string;
let pidPath: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-pidfile-'));
  pidPath = join(dir, 'lxcfs-ts.pid');
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The message of the PidFileError `action` throws; fails if it throws nothing or something else. */
function pidFileErrorOf(action: () => unknown): string {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(PidFileError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('expected a PidFileError, but nothing was thrown');
}

describe('acquirePidFile', () => {
  it('creates the file with our pid', () => {
    const handle = acquirePidFile(pidPath);
    expect(readFileSync(pidPath, 'utf8')).toBe(`${process.pid}\n`);
    expect(handle.pid).toBe(process.pid);
    expect(handle.path).toBe(pidPath);
  });

  it('makes the file mode 0644 even under a restrictive umask', () => {
    const previous = process.umask(0o077);
    try {
      acquirePidFile(pidPath);
    } finally {
      process.umask(previous);
    }
    expect(statSync(pidPath).mode & 0o777).toBe(0o644);
  });

  it('replaces a file naming a dead process', () => {
    writeFileSync(pidPath, `${deadPid()}\n`);
    acquirePidFile(pidPath);
    expect(readFileSync(pidPath, 'utf8')).toBe(`${process.pid}\n`);
  });

  it.each(['', 'garbage\n', '0\n', '-5\n', '12abc\n', '1 2\n', '99999999999999999999\n'])(
    'replaces a file with the garbage content %j',
    (content) => {
      writeFileSync(pidPath, content);
      acquirePidFile(pidPath);
      expect(readFileSync(pidPath, 'utf8')).toBe(`${process.pid}\n`);
    },
  );

  it('refuses a file naming a running lxcfs-ts process and leaves it untouched', () => {
    const owner = spawnSleeper(['lxcfs-ts']);
    writeFileSync(pidPath, `${owner}\n`);
    const before = statSync(pidPath);

    expect(pidFileErrorOf(() => acquirePidFile(pidPath))).toBe(
      `pid file ${pidPath} belongs to running lxcfs-ts process ${owner}; stop it first or use --pidfile`,
    );
    const after = statSync(pidPath);
    expect(readFileSync(pidPath, 'utf8')).toBe(`${owner}\n`);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('replaces a file whose pid was reused by another program', () => {
    const stranger = spawnSleeper([]);
    writeFileSync(pidPath, `${stranger}\n`);
    acquirePidFile(pidPath);
    expect(readFileSync(pidPath, 'utf8')).toBe(`${process.pid}\n`);
  });

  it('asks isOurs about a live owner and replaces the file when it says no', () => {
    const owner = spawnSleeper(['lxcfs-ts']);
    writeFileSync(pidPath, `${owner}\n`);
    const asked: number[] = [];
    acquirePidFile(pidPath, { isOurs: (pid) => (asked.push(pid), false) });
    expect(asked).toEqual([owner]);
    expect(readFileSync(pidPath, 'utf8')).toBe(`${process.pid}\n`);
  });

  it('refuses when isOurs says yes, whatever the cmdline', () => {
    const owner = spawnSleeper([]);
    writeFileSync(pidPath, `${owner}\n`);
    expect(pidFileErrorOf(() => acquirePidFile(pidPath, { isOurs: () => true }))).toContain(
      `running lxcfs-ts process ${owner}`,
    );
  });

  it('does not ask isOurs about a dead process', () => {
    writeFileSync(pidPath, `${deadPid()}\n`);
    const asked: number[] = [];
    acquirePidFile(pidPath, { isOurs: (pid) => (asked.push(pid), true) });
    expect(asked).toEqual([]);
  });

  it('replaces a file naming our own pid, left over from an earlier run', () => {
    // Mode 0600 marks the old file: a re-created one is 0644. (Inode numbers get reused, so no help.)
    writeFileSync(pidPath, `${process.pid}\n`, { mode: 0o600 });
    acquirePidFile(pidPath, { isOurs: () => true });
    expect(statSync(pidPath).mode & 0o777).toBe(0o644);
  });

  it('reports a missing parent directory', () => {
    const missing = join(dir, 'no-such-dir', 'lxcfs-ts.pid');
    expect(pidFileErrorOf(() => acquirePidFile(missing))).toBe(
      `pid file ${missing}: directory ${join(dir, 'no-such-dir')} does not exist; create it or use --pidfile`,
    );
  });

  it('reports a pid file path that is a directory', () => {
    mkdirSync(pidPath);
    expect(pidFileErrorOf(() => acquirePidFile(pidPath))).toBe(
      `pid file ${pidPath} is a directory; remove it or use --pidfile`,
    );
  });
});

describe('release', () => {
  it('removes our file', () => {
    const handle = acquirePidFile(pidPath);
    expect(handle.release()).toBe(true);
    expect(existsSync(pidPath)).toBe(false);
  });

  it('is idempotent and leaves a later pid file alone', () => {
    const handle = acquirePidFile(pidPath);
    handle.release();
    // Someone else's pid file at the same path must survive a second release.
    writeFileSync(pidPath, `${process.pid}\n`);
    expect(handle.release()).toBe(false);
    expect(readFileSync(pidPath, 'utf8')).toBe(`${process.pid}\n`);
  });

  it('leaves a file that names another process', () => {
    const handle = acquirePidFile(pidPath);
    writeFileSync(pidPath, '4242\n');
    expect(handle.release()).toBe(false);
    expect(readFileSync(pidPath, 'utf8')).toBe('4242\n');
  });

  it('leaves a file that no longer holds a pid', () => {
    const handle = acquirePidFile(pidPath);
    writeFileSync(pidPath, 'garbage\n');
    expect(handle.release()).toBe(false);
    expect(readFileSync(pidPath, 'utf8')).toBe('garbage\n');
  });

  it('does not mind a file that is already gone', () => {
    const handle = acquirePidFile(pidPath);
    rmSync(pidPath);
    expect(handle.release()).toBe(false);
  });
});

describe('isLxcfsTsProcess', () => {
  it('recognizes a process with an lxcfs-ts argument', () => {
    expect(isLxcfsTsProcess(spawnSleeper(['lxcfs-ts']))).toBe(true);
  });

  it('recognizes the installed bin by its basename', () => {
    expect(isLxcfsTsProcess(spawnSleeper(['/usr/local/bin/lxcfs-ts']))).toBe(true);
  });

  it('recognizes the built entry point', () => {
    mkdirSync(join(dir, 'dist'));
    const entry = join(dir, 'dist', 'cli.js');
    writeFileSync(entry, 'setTimeout(() => {}, 60000);\n');
    expect(isLxcfsTsProcess(spawnSleeper([], [entry]))).toBe(true);
  });

  it('does not count a program that merely names an lxcfs-ts file', () => {
    expect(isLxcfsTsProcess(spawnSleeper(['/etc/lxcfs-ts.conf']))).toBe(false);
  });

  it('does not count an unrelated process', () => {
    expect(isLxcfsTsProcess(spawnSleeper([]))).toBe(false);
  });

  it('does not count a dead process', () => {
    expect(isLxcfsTsProcess(deadPid())).toBe(false);
  });
});
