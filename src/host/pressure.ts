// Pressure stall information of a caller's cgroup for /proc/pressure/{cpu,io,memory}. PSI is tracked per
// cgroup of the cgroup2 hierarchy, whichever controllers are enabled there, so on hybrid hosts (v1
// controllers plus a cgroup2 mount, as /sys/fs/cgroup/unified) the caller's cgroup2 path is the one that
// counts, not its v1 cpu, blkio or memory cgroup.
//
// On hybrid hosts that cgroup2 cgroup is only used when it is at the same path as the container's v1
// cgroup of the resource's controller (cpu, blkio, memory). Runtimes with systemd cgroups (Docker's and
// Kubernetes' systemd driver, Podman, LXC) create the container at the same path in every tree; with
// Docker's cgroupfs driver the v1 cgroups are the container's but its cgroup2 cgroup is the one of the
// runtime's service, shared by every container, whose pressure is not this container's.

import { join } from 'node:path';
import { findHierarchy, type CgroupLayout } from './cgroup-layout.js';
import { cgroupOfProcessIn, isHierarchyTop } from './cgroup-location.js';
import { readCgroupFile } from './cgroup-files.js';
import type { ProcessId } from './process.js';
import { fail, ok, type Result } from './result.js';

export const PRESSURE_RESOURCES = ['cpu', 'io', 'memory'] as const;
export type PressureResource = (typeof PRESSURE_RESOURCES)[number];

/** The v1 controller whose cgroup must be at the same path on hybrid hosts. */
const V1_CONTROLLER: Readonly<Record<PressureResource, string>> = { cpu: 'cpu', io: 'blkio', memory: 'memory' };

/**
 * The text of `<resource>.pressure` of the cgroup2 cgroup of `pid`. Fails (host values apply) without a
 * cgroup2 hierarchy, at its root (whose pressure is the host's own), or when the file cannot be read
 * (cgroup removed; `cgroup.pressure` set to 0; a kernel without PSI).
 */
export function readCgroupPressure(layout: CgroupLayout, procRoot: string, pid: ProcessId, resource: PressureResource): Result<string> {
  const file = cgroupPressureFile(layout, procRoot, pid, resource);
  return file.ok ? ok(file.value.text) : file;
}

/** The pressure file of `pid`'s cgroup2 cgroup and its text, under the rules of readCgroupPressure. */
export function cgroupPressureFile(
  layout: CgroupLayout,
  procRoot: string,
  pid: ProcessId,
  resource: PressureResource,
): Result<{ path: string; text: string }> {
  const unified = layout.hierarchies.find((h) => h.version === 2);
  if (unified === undefined) return fail(`no cgroup2 hierarchy is mounted (layout: ${layout.kind}): pressure is only tracked per cgroup2 cgroup`);
  const cgroup = cgroupOfProcessIn(unified, procRoot, pid);
  if (!cgroup.ok) return cgroup;
  if (isHierarchyTop(cgroup.value)) return fail(`cgroup2 cgroup ${cgroup.value.path} is the top of the hierarchy: its pressure is the host's`);
  const v1 = findHierarchy(layout, V1_CONTROLLER[resource]);
  if (v1 !== undefined && v1.version === 1) {
    const own = cgroupOfProcessIn(v1, procRoot, pid);
    if (!own.ok) return own;
    if (own.value.path !== cgroup.value.path) {
      return fail(`cgroup2 cgroup ${cgroup.value.path} is not at the path of the container's ${V1_CONTROLLER[resource]} cgroup ${own.value.path}: it is shared (e.g. Docker's cgroupfs driver), its pressure is not the container's`);
    }
  }
  const name = `${resource}.pressure`;
  const text = readCgroupFile(cgroup.value, name);
  if (text === undefined) {
    return fail(`cannot read ${resource}.pressure of cgroup ${cgroup.value.path} (${cgroup.value.directory}): removed, PSI disabled (cgroup.pressure 0, psi=0) or not supported`);
  }
  return ok({ path: join(cgroup.value.directory, name), text });
}
