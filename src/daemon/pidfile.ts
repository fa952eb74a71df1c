// Exclusive pid file. Node has no flock, so exclusivity comes from O_EXCL creation plus a
// liveness check of whoever the existing file names.
import { closeSync, constants, existsSync, fchmodSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

export class PidFileError extends Error {
  override name = 'PidFileError';
}

export interface PidFile {
  readonly path: string;
  /** The pid written to the file. */
  readonly pid: number;
  /**
   * Removes the file if it still names our pid; a file someone else replaced it with is left alone.
   * Returns whether it removed the file. Later calls do nothing and return false.
   */
  release(): boolean;
}

export interface AcquirePidFileOptions {
  /** Whether the live process `pid` is an lxcfs-ts daemon; defaults to isLxcfsTsProcess. */
  isOurs?: (pid: number) => boolean;
}

/** Whether /proc/<pid>/cmdline looks like an lxcfs-ts daemon (the bin name or the built entry point). */
export function isLxcfsTsProcess(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return false;
  }
  // Match whole arguments, so e.g. `vim /etc/lxcfs-ts.conf` holding a reused pid does not count.
  return cmdline
    .split('\0')
    .some((arg) => path.basename(arg) === 'lxcfs-ts' || arg === 'dist/cli.js' || arg.endsWith('/dist/cli.js'));
}

/**
 * Creates `pidPath` exclusively and writes our pid to it. An existing file is replaced only if it is
 * stale: unparsable, naming a dead process, naming us, or naming a live process that isOurs rejects.
 */
export function acquirePidFile(pidPath: string, options: AcquirePidFileOptions = {}): PidFile {
  const isOurs = options.isOurs ?? isLxcfsTsProcess;
  const pid = process.pid;

  if (!createExclusive(pidPath, pid)) {
    const owner = readOwner(pidPath);
    // Our own pid in the file is left over from an earlier boot or pid namespace, not a live rival.
    if (owner !== undefined && owner !== pid && existsSync(`/proc/${owner}`) && isOurs(owner)) {
      throw new PidFileError(
        `pid file ${pidPath} belongs to running lxcfs-ts process ${owner}; stop it first or use --pidfile`,
      );
    }
    removeFile(pidPath, 'is stale but cannot be removed');
    // Without flock a second starter can slip in between unlink and create; refuse rather than fight.
    if (!createExclusive(pidPath, pid)) {
      throw new PidFileError(
        `pid file ${pidPath} was created by another process while replacing a stale one; is another lxcfs-ts starting?`,
      );
    }
  }

  let released = false;
  return {
    path: pidPath,
    pid,
    release(): boolean {
      if (released) return false;
      released = true;
      if (readOwner(pidPath) !== pid) return false;
      removeFile(pidPath, 'cannot be removed');
      return true;
    },
  };
}

/** Creates the file with our pid; false if it already exists. */
function createExclusive(pidPath: string, pid: number): boolean {
  let fd: number;
  try {
    fd = openSync(pidPath, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new PidFileError(
        `pid file ${pidPath}: directory ${path.dirname(pidPath)} does not exist; create it or use --pidfile`,
      );
    }
    throw new PidFileError(`pid file ${pidPath} cannot be created: ${(error as Error).message}`);
  }
  try {
    // The umask may have narrowed the mode; pid files are meant to be world-readable.
    fchmodSync(fd, 0o644);
    writeSync(fd, `${pid}\n`);
  } catch (error) {
    closeSync(fd);
    removeFile(pidPath, 'could not be written and cannot be removed');
    throw new PidFileError(`pid file ${pidPath} cannot be written: ${(error as Error).message}`);
  }
  closeSync(fd);
  return true;
}

/** The pid the file names, or undefined if it is gone or does not hold a pid. */
function readOwner(pidPath: string): number | undefined {
  let content: string;
  try {
    content = readFileSync(pidPath, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EISDIR') throw new PidFileError(`pid file ${pidPath} is a directory; remove it or use --pidfile`);
    throw new PidFileError(`pid file ${pidPath} cannot be read: ${(error as Error).message}`);
  }
  const match = /^\s*(\d+)\s*$/.exec(content);
  const pid = match ? Number(match[1]) : 0;
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Unlinks the file; already gone is fine. */
function removeFile(pidPath: string, problem: string): void {
  try {
    unlinkSync(pidPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new PidFileError(`pid file ${pidPath} ${problem}: ${(error as Error).message}`);
  }
}
