import { existsSync, readFileSync } from 'node:fs';

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
