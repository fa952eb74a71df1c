import { join } from 'node:path';
import { readTextFile } from './files.js';
import type { HostRoots } from './roots.js';

/** legacy = cgroup v1 only; hybrid = v1 controllers plus a cgroup2 mount; unified = cgroup2 only. */
export type CgroupLayoutKind = 'legacy' | 'hybrid' | 'unified' | 'none';

export type CgroupVersion = 1 | 2;

/** One mounted cgroup hierarchy. */
export interface CgroupHierarchy {
  readonly version: CgroupVersion;
  /**
   * v1: the controllers bound to it, named hierarchies as `name=X`;
   * v2: the controllers listed in cgroup.controllers at its mount root.
   */
  readonly controllers: readonly string[];
  /** Directory it is mounted on, re-based under HostRoots.cgroupRoot. */
  readonly mountPoint: string;
  /** The cgroup shown at mountPoint (mountinfo field 4): "/" unless a subtree was mounted. */
  readonly mountRoot: string;
}

export interface CgroupLayout {
  readonly kind: CgroupLayoutKind;
  readonly hierarchies: readonly CgroupHierarchy[];
  /** Set when mountinfo could not be read, so "no controller" errors can say why. */
  readonly problem?: string;
}

const HOST_CGROUP_MOUNT = '/sys/fs/cgroup';

/** cgroup v1 superblock options that are not controller names. */
const V1_NON_CONTROLLER_OPTIONS = new Set(['rw', 'ro', 'noprefix', 'xattr', 'clone_children', 'cpuset_v2_mode', 'favordynmods']);

/** Reads `<procRoot>/self/mountinfo` and finds the cgroup hierarchies mounted under /sys/fs/cgroup. */
export function detectCgroupLayout(roots: HostRoots): CgroupLayout {
  const mountinfoPath = join(roots.procRoot, 'self', 'mountinfo');
  const mountinfo = readTextFile(mountinfoPath);
  if (mountinfo === undefined) {
    return { kind: 'none', hierarchies: [], problem: `cannot read ${mountinfoPath}` };
  }
  return layoutFromMountinfo(mountinfo, roots.cgroupRoot);
}

/** Pure part of detectCgroupLayout; only cgroup.controllers of a v2 mount is read from disk. */
export function layoutFromMountinfo(mountinfo: string, cgroupRoot: string): CgroupLayout {
  const hierarchies: CgroupHierarchy[] = [];
  const seenV1ControllerSets = new Set<string>();
  let hasV2 = false;

  for (const line of mountinfo.split('\n')) {
    const mount = parseMountinfoLine(line);
    if (mount === undefined) continue;
    const mountPoint = rebaseCgroupMountPoint(mount.mountPoint, cgroupRoot);
    if (mountPoint === undefined) continue; // lxcfs only considers mounts under /sys/fs/cgroup

    if (mount.fsType === 'cgroup') {
      const controllers = mount.superOptions
        .split(',')
        .filter((option) => !V1_NON_CONTROLLER_OPTIONS.has(option) && !option.startsWith('release_agent='));
      const key = controllers.join(',');
      // The same hierarchy can be mounted twice (bind mounts); the first one wins.
      if (controllers.length === 0 || seenV1ControllerSets.has(key)) continue;
      seenV1ControllerSets.add(key);
      hierarchies.push({ version: 1, controllers, mountPoint, mountRoot: mount.root });
    } else if (mount.fsType === 'cgroup2' && !hasV2) {
      hasV2 = true;
      const listed = readTextFile(join(mountPoint, 'cgroup.controllers')) ?? '';
      hierarchies.push({ version: 2, controllers: listed.split(/\s+/).filter(Boolean), mountPoint, mountRoot: mount.root });
    }
  }

  const hasV1 = hierarchies.some((h) => h.version === 1);
  const kind: CgroupLayoutKind = hasV1 ? (hasV2 ? 'hybrid' : 'legacy') : hasV2 ? 'unified' : 'none';
  return { kind, hierarchies };
}

/** The hierarchy that carries `controller` (e.g. "memory", "name=systemd"), if any. */
export function findHierarchy(layout: CgroupLayout, controller: string): CgroupHierarchy | undefined {
  return layout.hierarchies.find((h) => h.controllers.includes(controller));
}

/** The v1 hierarchy of `controller`, if the host has one (not the cgroup2 tree that may hold it instead). */
export function findV1Hierarchy(layout: CgroupLayout, controller: string): CgroupHierarchy | undefined {
  const hierarchy = findHierarchy(layout, controller);
  return hierarchy?.version === 1 ? hierarchy : undefined;
}

interface MountinfoEntry {
  readonly root: string;
  readonly mountPoint: string;
  readonly fsType: string;
  readonly superOptions: string;
}

/**
 * `id parent maj:min root mountpoint options [optional fields...] - fstype source superoptions`
 * (proc(5)); paths escape space, tab, newline and backslash as octal.
 */
function parseMountinfoLine(line: string): MountinfoEntry | undefined {
  const fields = line.split(' ');
  const separator = fields.indexOf('-', 6);
  if (separator < 0 || fields.length < separator + 4) return undefined;
  return {
    root: unescapeMountinfo(fields[3]!),
    mountPoint: unescapeMountinfo(fields[4]!),
    fsType: fields[separator + 1]!,
    superOptions: fields[separator + 3]!,
  };
}

function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

function rebaseCgroupMountPoint(mountPoint: string, cgroupRoot: string): string | undefined {
  if (mountPoint === HOST_CGROUP_MOUNT) return cgroupRoot;
  if (mountPoint.startsWith(HOST_CGROUP_MOUNT + '/')) return join(cgroupRoot, mountPoint.slice(HOST_CGROUP_MOUNT.length));
  return undefined;
}
