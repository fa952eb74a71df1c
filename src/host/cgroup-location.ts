import { dirname, join, posix } from 'node:path';
import { findHierarchy, type CgroupHierarchy, type CgroupLayout } from './cgroup-layout.js';
import { readRenderedFile } from './files.js';
import { BoundedMap } from '../util/bounded-map.js';
import { fail, ok, type Result } from './result.js';

/** A cgroup of one hierarchy, as the daemon sees it. */
export interface CgroupLocation {
  readonly hierarchy: CgroupHierarchy;
  /** Path as /proc/<pid>/cgroup shows it to the daemon, normalised, trailing `/init.scope` removed. */
  readonly path: string;
  /** Its directory on disk. */
  readonly directory: string;
}

/** One line of /proc/<pid>/cgroup: `hierarchy-id:controller,list:path`. */
export interface ProcCgroupLine {
  readonly hierarchyId: number;
  /** Empty for the cgroup v2 line (`0::/path`). */
  readonly controllers: readonly string[];
  readonly path: string;
}

export function parseProcCgroup(text: string): ProcCgroupLine[] {
  const lines: ProcCgroupLine[] = [];
  for (const line of text.split('\n')) {
    const firstColon = line.indexOf(':');
    const secondColon = line.indexOf(':', firstColon + 1);
    if (firstColon <= 0 || secondColon < 0) continue;
    const list = line.slice(firstColon + 1, secondColon);
    lines.push({
      hierarchyId: Number(line.slice(0, firstColon)),
      controllers: list === '' ? [] : list.split(','),
      path: line.slice(secondColon + 1), // a path may itself contain ':'
    });
  }
  return lines;
}

/**
 * Normalises a cgroup path and strips one trailing `init.scope` (lxcfs: a
 * container's init often sits in `<container>/init.scope`, yet the container's
 * limits are those of `<container>`). Undefined when `..` climbs above the root:
 * the kernel shows cgroups outside the reader's cgroup namespace that way, and
 * they must not be mapped onto some other cgroup.
 */
export function normalizeCgroupPath(raw: string): string | undefined {
  const segments: string[] = [];
  for (const segment of raw.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (segments.length === 0) return undefined;
      segments.pop();
    } else {
      segments.push(segment);
    }
  }
  if (segments[segments.length - 1] === 'init.scope') segments.pop();
  return '/' + segments.join('/');
}

/** The cgroup of `pid` (or the daemon itself) for `controller`, per its /proc/<pid>/cgroup. */
export function cgroupOfProcess(
  layout: CgroupLayout,
  procRoot: string,
  pid: number | 'self',
  controller: string,
): Result<CgroupLocation> {
  const hierarchy = findHierarchy(layout, controller);
  if (hierarchy === undefined) {
    const why = layout.problem === undefined ? '' : ` (${layout.problem})`;
    return fail(`no cgroup hierarchy with the ${controller} controller is mounted under the cgroup root (layout: ${layout.kind})${why}`);
  }
  return cgroupOfProcessIn(hierarchy, procRoot, pid, controller);
}

/** The cgroup of `pid` in one given hierarchy, e.g. the cgroup2 one, whose cpu.stat exists whichever
 * controllers are enabled. `controller` names the hierarchy in messages. */
export function cgroupOfProcessIn(
  hierarchy: CgroupHierarchy,
  procRoot: string,
  pid: number | 'self',
  controller: string = hierarchy.version === 2 ? 'cgroup2' : hierarchy.controllers.join(','),
): Result<CgroupLocation> {
  const procCgroupPath = `${procRoot}/${pid}/cgroup`;
  const text = readRenderedFile(procCgroupPath, { singleRecord: true });
  if (text === undefined) return fail(`cannot read ${procCgroupPath}: the process has exited`);
  const known = locationsOf(hierarchy).get(text);
  if (known !== undefined) return ok(known);

  const line = parseProcCgroup(text).find((entry) =>
    hierarchy.version === 2
      ? entry.hierarchyId === 0 && entry.controllers.length === 0
      : hierarchy.controllers.some((name) => entry.controllers.includes(name)),
  );
  if (line === undefined) return fail(`${procCgroupPath} has no line for the ${controller} hierarchy`);

  const path = normalizeCgroupPath(line.path);
  if (path === undefined) {
    return fail(`${procCgroupPath} places the process at ${line.path}, outside the daemon's cgroup namespace`);
  }
  const directory = directoryOf(hierarchy, path);
  if (directory === undefined) {
    return fail(`cgroup ${path} is outside the subtree ${hierarchy.mountRoot} mounted at ${hierarchy.mountPoint}`);
  }
  const location = { hierarchy, path, directory };
  locationsOf(hierarchy).set(text, location);
  return ok(location);
}

// Every request locates its caller's cgroups from /proc/<pid>/cgroup, read afresh each time (a process
// may move). Parsing that text and joining paths was a good part of what a request allocated, and each
// megabyte of garbage costs a reader thread a collection pause of ~150 µs, a request's tail latency. The
// same text always means the same cgroup, so each text's location is kept, with its parent and the
// paths of its files. Only names are kept: every value served is read afresh.
const MAX_KEPT = 4096; // texts, or files of one cgroup: far more than a host's containers
const locationsByHierarchy = new WeakMap<CgroupHierarchy, Map<string, CgroupLocation>>();
const parents = new WeakMap<CgroupLocation, CgroupLocation>();
const filePaths = new WeakMap<CgroupLocation, Map<string, string>>();

function locationsOf(hierarchy: CgroupHierarchy): Map<string, CgroupLocation> {
  let locations = locationsByHierarchy.get(hierarchy);
  if (locations === undefined) locationsByHierarchy.set(hierarchy, (locations = new BoundedMap(MAX_KEPT)));
  return locations;
}

/** The parent cgroup, or undefined at the top of what is mounted. */
export function parentCgroup(location: CgroupLocation): CgroupLocation | undefined {
  if (isHierarchyTop(location)) return undefined;
  let parent = parents.get(location);
  if (parent === undefined) {
    parent = { hierarchy: location.hierarchy, path: posix.dirname(location.path), directory: dirname(location.directory) };
    parents.set(location, parent);
  }
  return parent;
}

/** The path of the cgroup's file `name`. */
export function cgroupFilePath(location: CgroupLocation, name: string): string {
  let paths = filePaths.get(location);
  if (paths === undefined) filePaths.set(location, (paths = new BoundedMap(MAX_KEPT)));
  let path = paths.get(name);
  if (path === undefined) paths.set(name, (path = join(location.directory, name)));
  return path;
}

export function isHierarchyTop(location: CgroupLocation): boolean {
  return location.path === location.hierarchy.mountRoot;
}

function directoryOf(hierarchy: CgroupHierarchy, path: string): string | undefined {
  const { mountRoot, mountPoint } = hierarchy;
  if (mountRoot === '/') return join(mountPoint, path);
  if (path === mountRoot) return mountPoint;
  if (path.startsWith(mountRoot + '/')) return join(mountPoint, path.slice(mountRoot.length));
  return undefined;
}
