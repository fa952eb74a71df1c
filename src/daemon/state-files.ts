// Where the serving process's per-cgroup state (the /proc/stat counters, the cgroup2 /proc/stat model,
// the load averages, which files have PSI triggers polled) outlives the serving process: anonymous tmpfs files that the supervisor creates and
// holds open for its whole life, inherited by every serving process at fixed descriptors. The tables are
// written through to them (SharedTable), and each serving process restores them before it reads its
// first request, so neither a graceful upgrade nor a crash of the serving process resets a counter.
// They vanish with the supervisor: a restart of the whole daemon starts from zero.

import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';

/** Descriptors of the state files in a serving process (after the FUSE fd 3 and the IPC channel 4). */
export const STATE_FDS = { cpu: 5, loadavg: 6, psi: 7 } as const;
export type StateTable = keyof typeof STATE_FDS;

/** Linux's O_TMPFILE (which Node's constants lack): an unnamed file in the given directory. */
const O_TMPFILE = 0o20200000;

/** Opens an unnamed file in memory (tmpfs) or, failing that, on disk; undefined when nothing works. */
export function openStateFile(log: Logger): number | undefined {
  for (const dir of ['/dev/shm', '/run', os.tmpdir()]) {
    try {
      return fs.openSync(dir, fs.constants.O_RDWR | O_TMPFILE, 0o600);
    } catch {
      // Not there, not writable, or a filesystem without O_TMPFILE: try the next.
    }
  }
  log.warn(
    'cannot create a state file (O_TMPFILE in /dev/shm, /run or the temp dir): /proc/stat counters and load averages restart from zero when the serving process is replaced',
  );
  return undefined;
}

/** In a serving process: the inherited descriptor of a table's state file, if the supervisor gave one. */
export function inheritedStateFile(table: StateTable): number | undefined {
  const fd = STATE_FDS[table];
  try {
    return fs.fstatSync(fd).isFile() ? fd : undefined;
  } catch {
    return undefined;
  }
}
