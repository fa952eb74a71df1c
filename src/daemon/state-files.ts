// Where the serving process's per-cgroup state (the /proc/stat counters, the cgroup2 /proc/stat model,
// the load averages, which files have PSI triggers polled) outlives the serving process: anonymous tmpfs
// files that the supervisor creates and holds open for its whole life, inherited by every serving process
// at fixed descriptors. The tables are written through to them (SharedTable), and each serving process
// restores them before it reads its first request, so neither a graceful upgrade nor a crash of the
// serving process resets a counter. They vanish with the supervisor: a restart of the whole daemon starts
// from zero. One more file carries the open file handles and their snapshots across a graceful upgrade:
// written once by the old serving process when its readers have stopped, read once by its successor.

import fs from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import type { SnapshotDump } from '../fuse/snapshots.js';

/** Descriptors of the state files in a serving process (after the FUSE fd 3 and the IPC channel 4). */
export const STATE_FDS = { cpu: 5, loadavg: 6, psi: 7, handoff: 8 } as const;
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
    'cannot create a state file (O_TMPFILE in /dev/shm, /run or the temp dir): /proc/stat counters and load averages restart from zero, and open files end early, when the serving process is replaced',
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

/** Replaces the handoff file's content with `dump`: its control array, then its pages, each preceded by
 * its length. */
export function writeHandoff(fd: number, dump: SnapshotDump): void {
  fs.ftruncateSync(fd, 0);
  let position = 0;
  const write = (bytes: Uint8Array): void => {
    for (let done = 0; done < bytes.length;)
      done += fs.writeSync(fd, bytes, done, bytes.length - done, position + done);
    position += bytes.length;
  };
  for (const part of [dump.control, dump.pages]) {
    const length = new Uint8Array(8);
    new DataView(length.buffer).setBigUint64(0, BigInt(part.length), true);
    write(length);
    write(part);
  }
}

/** What writeHandoff wrote, and empties the file (its tmpfs pages would count against the daemon);
 * undefined when it holds no complete dump. */
export function takeHandoff(fd: number): SnapshotDump | undefined {
  const content = new Uint8Array(fs.fstatSync(fd).size);
  for (let done = 0; done < content.length;) {
    const n = fs.readSync(fd, content, done, content.length - done, done);
    if (n === 0) break;
    done += n;
  }
  fs.ftruncateSync(fd, 0);
  const parts: Uint8Array[] = [];
  const view = new DataView(content.buffer);
  for (let at = 0; parts.length < 2 && at + 8 <= content.length;) {
    const length = Number(view.getBigUint64(at, true));
    if (at + 8 + length > content.length) break;
    parts.push(content.subarray(at + 8, at + 8 + length));
    at += 8 + length;
  }
  const [control, pages] = parts;
  return control && pages ? { control, pages } : undefined;
}
