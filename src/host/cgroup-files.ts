import { join } from 'node:path';
import type { CgroupVersion } from './cgroup-layout.js';
import { isHierarchyTop, parentCgroup, type CgroupLocation } from './cgroup-location.js';
import { readRenderedFile } from './files.js';
import type { MemoryStatKeys } from './memory-facts.js';
import { fail, ok, type Result } from './result.js';

/** memory.stat as key → value, keys exactly as the kernel spells them. */
export type MemoryStat = ReadonlyMap<string, number>;

/**
 * Reads cgroup files of one cgroup version. Every method takes the cgroup to
 * read; byte values are numbers, `Infinity` meaning "no limit". A failure means
 * the caller should serve host values (cgroup removed, controller not enabled).
 *
 * Later controllers (cpuset, cpu quota, cpu usage, io, pressure) become more
 * methods here, implemented by both back ends.
 */
export interface CgroupReader {
  readonly version: CgroupVersion;
  /** memory.stat key of each counter in this version; a counter without a key does not exist here (reads as 0). */
  readonly memoryStatKeys: MemoryStatKeys;
  /** RAM limit, minimum over the cgroup and its ancestors. */
  memoryLimit(cgroup: CgroupLocation): Result<number>;
  /** Swap limit, minimum over the cgroup and its ancestors. v1: of RAM+swap together (memsw); v2: of swap alone. */
  swapLimit(cgroup: CgroupLocation): Result<number>;
  /** RAM in use. */
  memoryUsage(cgroup: CgroupLocation): Result<number>;
  /** Swap in use. v1: RAM+swap together; v2: swap alone. */
  swapUsage(cgroup: CgroupLocation): Result<number>;
  memoryStat(cgroup: CgroupLocation): Result<MemoryStat>;
  /** memory.swappiness; undefined where the knob does not exist (v2) or cannot be read. */
  swappiness(cgroup: CgroupLocation): number | undefined;
  /** Whether the kernel accounts swap per cgroup, probed from this cgroup (the daemon's own, at startup). */
  hasSwapAccounting(cgroup: CgroupLocation): boolean;
  /** Whether the kernel accounts zswap per cgroup (v2 only). */
  hasZswapAccounting(cgroup: CgroupLocation): boolean;
}

/** Where one cgroup version keeps the memory numbers, and how it writes "no limit". */
export interface MemoryFiles {
  readonly limit: string;
  readonly swapLimit: string;
  readonly usage: string;
  readonly swapUsage: string;
  readonly parseLimit: (text: string) => number | undefined;
}

/** The part of a CgroupReader that both versions do alike, on their own file names. */
export abstract class MemoryFilesReader {
  constructor(private readonly files: MemoryFiles) {}

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

  memoryStat(cgroup: CgroupLocation): Result<MemoryStat> {
    return readMemoryStat(cgroup);
  }
}

/** Parses a value written as decimal digits; undefined for anything else. */
export function parseCount(text: string): number | undefined {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : undefined;
}

/** `key value` lines; malformed lines are skipped, so one odd line never costs the whole view. */
export function parseMemoryStat(text: string): Map<string, number> {
  const stat = new Map<string, number>();
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    const value = parseCount(line.slice(space + 1));
    if (value !== undefined) stat.set(line.slice(0, space), value);
  }
  return stat;
}

/**
 * Text of a file of the cgroup. `optional`: a file this kernel may not have at all (CFQ's, BFQ's). At the
 * top of a hierarchy files are often legitimately absent too (the v2 root has no memory.max).
 */
export function readCgroupFile(cgroup: CgroupLocation, name: string, optional = false): string | undefined {
  return readRenderedFile(join(cgroup.directory, name), { singleRecord: true, oftenMissing: optional || isHierarchyTop(cgroup) });
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

export function readMemoryStat(cgroup: CgroupLocation): Result<MemoryStat> {
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

function unreadable(cgroup: CgroupLocation, name: string): string {
  return `cannot read ${name} of cgroup ${cgroup.path} (${cgroup.directory}): the cgroup was removed, or its controller is not enabled there`;
}

function unexpected(cgroup: CgroupLocation, name: string, text: string): string {
  return `unexpected content ${JSON.stringify(text.trim())} in ${join(cgroup.directory, name)}`;
}
