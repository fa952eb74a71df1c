import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';

/**
 * The text of a file, or undefined when it cannot be read (missing, removed
 * meanwhile, not permitted). Use for files that normally exist: a miss costs an
 * exception internally, which is fine when rare.
 */
export function readTextFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Like readTextFile, for files that are often legitimately absent (the cgroup v2
 * root has no memory.max): an existence check first makes the miss cheap.
 */
export function readTextFileIfExists(path: string): string | undefined {
  return existsSync(path) ? readTextFile(path) : undefined;
}

// cgroup files are read on every request; re-reading an open file from offset 0 (the kernel renders it
// afresh) saves the path walk, open and close of each read. Each reader thread keeps its own few.
const MAX_OPEN_FILES = 128;
const openFiles = new Map<string, number>(); // oldest first
let scratch = Buffer.alloc(16 * 1024);

function readWhole(fd: number): string {
  let length = 0;
  for (;;) {
    if (length === scratch.length) {
      const bigger = Buffer.alloc(scratch.length * 2);
      scratch.copy(bigger);
      scratch = bigger;
    }
    const n = readSync(fd, scratch, length, scratch.length - length, length);
    if (n === 0) return scratch.toString('utf8', 0, length);
    length += n;
  }
}

function forget(path: string): void {
  const fd = openFiles.get(path);
  if (fd === undefined) return;
  openFiles.delete(path);
  try {
    closeSync(fd);
  } catch {
    // Already unusable; nothing to release.
  }
}

/**
 * Like readTextFile, for pseudo-files that render their content afresh on every read from offset 0
 * (cgroupfs, most of procfs), keeping the file open between calls. A file that went away (its cgroup
 * was removed) fails the read; it is then opened again once, which fails as readTextFile would.
 */
export function readRenderedFile(path: string): string | undefined {
  const cached = openFiles.get(path);
  if (cached !== undefined) {
    try {
      const text = readWhole(cached);
      // Most recently used last, so that the oldest is closed first.
      openFiles.delete(path);
      openFiles.set(path, cached);
      return text;
    } catch {
      forget(path);
    }
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const text = readWhole(fd);
    if (openFiles.size >= MAX_OPEN_FILES) forget(openFiles.keys().next().value!);
    openFiles.set(path, fd);
    return text;
  } catch {
    closeSync(fd);
    return undefined;
  }
}
