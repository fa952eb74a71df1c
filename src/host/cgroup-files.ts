// Reading a cgroup's files, and what the v1 and v2 CgroupReaders do alike on their own file names.
// (memory.stat is a ReadonlyMap here, the CgroupReader's MemoryStat, without importing the interface.)

import { existsSync } from 'node:fs';
import { cgroupFilePath, isHierarchyTop, parentCgroup, type CgroupLocation } from './cgroup-location.js';
import { readRenderedFile } from './files.js';
import { digitsIn, isBlank } from '../util/text-scan.js';
import { fail, ok, type Result } from './result.js';

/** Where one cgroup version keeps the numbers both versions have, and how it writes "no limit". */
export interface CgroupFileNames {
  readonly limit: string;
  readonly swapLimit: string;
  readonly usage: string;
  readonly swapUsage: string;
  readonly parseLimit: (text: string) => number | undefined;
  /** The cpuset files, the first non-empty one wins. */
  readonly cpuset: readonly string[];
}

/** The part of a CgroupReader that both versions do alike, on their own file names. */
export abstract class CgroupFilesReader {
  constructor(private readonly files: CgroupFileNames) {}

  /** quota/period of the cgroup itself; undefined without a quota or without the files. */
  protected abstract quotaOf(cgroup: CgroupLocation): number | undefined;

  memoryLimit(cgroup: CgroupLocation): Result<number> {
    return minLimitOverAncestors(cgroup, this.files.limit, this.files.parseLimit);
  }

  swapLimit(cgroup: CgroupLocation): Result<number> {
    return minLimitOverAncestors(cgroup, this.files.swapLimit, this.files.parseLimit);
  }

  memoryUsage(cgroup: CgroupLocation): Result<number> {
    return readCgroupValue(cgroup, this.files.usage, parseCount);
  }

  swapUsage(cgroup: CgroupLocation): Result<number> {
    return readCgroupValue(cgroup, this.files.swapUsage, parseCount);
  }

  memoryStat(cgroup: CgroupLocation): Result<ReadonlyMap<string, number>> {
    return readMemoryStat(cgroup);
  }

  cpuset(cgroup: CgroupLocation): Result<string> {
    for (let level: CgroupLocation | undefined = cgroup; level !== undefined; level = parentCgroup(level)) {
      for (const name of this.files.cpuset) {
        const text = readCgroupFile(level, name)?.trim();
        if (text) return ok(text);
      }
      // The cgroup itself must exist (lxcfs opens it before walking up), or a removed cgroup would show its parent's.
      if (level === cgroup && !existsSync(cgroup.directory)) {
        return fail(`cannot read cgroup ${cgroup.path} (${cgroup.directory}): it was removed`);
      }
    }
    return fail(`no cpuset in cgroup ${cgroup.path} nor in any of its ancestors`);
  }

  cpuQuota(cgroup: CgroupLocation): number | undefined {
    let minimum: number | undefined;
    for (let level: CgroupLocation | undefined = cgroup; level !== undefined; level = parentCgroup(level)) {
      const ratio = this.quotaOf(level);
      if (ratio !== undefined && (minimum === undefined || ratio < minimum)) minimum = ratio;
    }
    return minimum;
  }
}

/** quota/period, or undefined unless both are positive numbers ("max" and -1 mean no quota). */
export function quotaRatio(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return quota / period;
}

/** Parses a value written as decimal digits (blanks around it allowed); undefined for anything else. */
export function parseCount(text: string): number | undefined {
  return countIn(text, 0, text.length);
}

/** parseCount of text[start, end), without slicing it out: memory.stat has dozens of lines per read. */
function countIn(text: string, start: number, end: number): number | undefined {
  while (start < end && isBlank(text.charCodeAt(start))) start++;
  while (end > start && isBlank(text.charCodeAt(end - 1))) end--;
  return digitsIn(text, start, end);
}

/** `key value` lines; malformed lines are skipped, so one odd line never costs the whole view. */
export function parseMemoryStat(text: string): Map<string, number> {
  const stat = new Map<string, number>();
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const space = text.indexOf(' ', start);
    if (space > start && space < end) {
      const value = countIn(text, space + 1, end);
      if (value !== undefined) stat.set(text.slice(start, space), value);
    }
    start = end + 1;
  }
  return stat;
}

/**
 * Text of a file of the cgroup. `optional`: a file this kernel may not have at all (CFQ's, BFQ's). At the
 * top of a hierarchy files are often legitimately absent too (the v2 root has no memory.max).
 */
export function readCgroupFile(cgroup: CgroupLocation, name: string, optional = false): string | undefined {
  return readRenderedFile(cgroupFilePath(cgroup, name), { singleRecord: true, oftenMissing: optional || isHierarchyTop(cgroup) });
}

/** One value of the cgroup itself, e.g. memory.current. */
export function readCgroupValue(
  cgroup: CgroupLocation,
  name: string,
  parse: (text: string) => number | undefined,
): Result<number> {
  const text = readCgroupFile(cgroup, name);
  if (text === undefined) return fail(unreadable(cgroup, name));
  const value = parse(text);
  return value === undefined ? fail(unexpected(cgroup, name, text)) : ok(value);
}

export function readMemoryStat(cgroup: CgroupLocation): Result<ReadonlyMap<string, number>> {
  const text = readCgroupFile(cgroup, 'memory.stat');
  return text === undefined ? fail(unreadable(cgroup, 'memory.stat')) : ok(parseMemoryStat(text));
}

/**
 * The smallest limit over the cgroup and all its ancestors: a container is
 * bound by every limit above it, and a nested container's own cgroup often has
 * none. The top of the hierarchy is never read: it cannot be limited (the v2
 * root has no limit files, the v1 root's cannot be written).
 */
export function minLimitOverAncestors(
  cgroup: CgroupLocation,
  name: string,
  parseLimit: (text: string) => number | undefined,
): Result<number> {
  let minimum = Infinity;
  for (let level: CgroupLocation | undefined = cgroup; level !== undefined && minimum > 0 && !isHierarchyTop(level); level = parentCgroup(level)) {
    const text = readCgroupFile(level, name);
    if (text === undefined) return fail(unreadable(level, name));
    const limit = parseLimit(text);
    if (limit === undefined) return fail(unexpected(level, name, text));
    minimum = Math.min(minimum, limit);
  }
  return ok(minimum);
}

export function unreadable(cgroup: CgroupLocation, name: string): string {
  return `cannot read ${name} of cgroup ${cgroup.path} (${cgroup.directory}): the cgroup was removed, or its controller is not enabled there`;
}

function unexpected(cgroup: CgroupLocation, name: string, text: string): string {
  return `unexpected content ${JSON.stringify(text.trim())} in ${cgroupFilePath(cgroup, name)}`;
}
