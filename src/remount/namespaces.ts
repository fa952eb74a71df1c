// Finding the mount namespaces that hold lxcfs mounts, without any container runtime: every process's
// /proc/PID/ns/mnt names its namespace, and one /proc/PID/mountinfo per namespace lists its mounts
// (dead FUSE mounts included). Each table is read once, whatever its size. Nothing here touches a FUSE
// path or any path inside a container.

import type { Result } from '../host/result.js';
import fs from 'node:fs';
import { readMountInfo, type MountInfoEntry } from '../fuse/mount.js';
import { FS_TYPE } from '../daemon/mountpoint.js';

export interface MountNamespace {
  /** As /proc/PID/ns/mnt reads, e.g. "mnt:[4026532301]". */
  id: string;
  /** The namespace's inode number, to check that an opened /proc/PID/ns/mnt is still this namespace. */
  inode: number;
  /** A process in the namespace, our way in through /proc/PID: the init of a pid namespace if one is
   * in it (a container's pid 1), else the lowest pid. */
  pid: number;
  /** Its lxcfs mounts that nothing is mounted over, as its mount table listed them. */
  lxcfsMounts: MountInfoEntry[];
}

function namespaceOf(pid: number | 'self'): string | undefined {
  try {
    return fs.readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    // The process exited, or it is not ours to inspect (e.g. pid 1 of a sandbox).
    return undefined;
  }
}

function inodeOf(id: string): number {
  return Number(/\[(\d+)\]/.exec(id)?.[1]);
}

function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Whether the process is pid 1 of its pid namespace: the container's init is the process a person
 * recognizes in the report, rather than one that merely shares its mount namespace (such as the
 * unshare(1) that made it). */
function isPidNamespaceInit(pid: number): boolean {
  try {
    const nspid = /^NSpid:\s*(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return nspid?.trim().split(/\s+/).at(-1) === '1';
  } catch {
    return false;
  }
}

/** The lxcfs mounts in the process's mount table that are not hidden by a mount stacked on the same
 * mountpoint (undefined: the table cannot be read). */
function uncoveredLxcfsMounts(pid: number): MountInfoEntry[] | undefined {
  let entries: MountInfoEntry[];
  try {
    entries = readMountInfo(`/proc/${pid}/mountinfo`);
  } catch {
    return undefined;
  }
  const lxcfs = entries.filter((entry) => entry.fsType === FS_TYPE);
  if (lxcfs.length === 0) return lxcfs;
  const stackedOn = new Set(entries.map((entry) => `${entry.parentId} ${entry.mountPoint}`));
  return lxcfs.filter((entry) => !stackedOn.has(`${entry.mountId} ${entry.mountPoint}`));
}

/** The namespaces, other than ours and the host's (pid 1's), whose mount table lists a fuse.lxcfs mount.
 * With `pids`, only the namespaces of those processes are considered. */
export function findLxcfsNamespaces(pids?: number[]): Result<MountNamespace[]> {
  const own = new Set([namespaceOf('self'), namespaceOf(1)].filter((id): id is string => id !== undefined));
  const members = new Map<string, number[]>();
  for (const pid of pids ?? allPids()) {
    const id = namespaceOf(pid);
    if (id === undefined) {
      if (pids) return { ok: false, error: `--pid ${pid}: no such process, or its namespace cannot be read` };
      continue;
    }
    if (own.has(id)) {
      if (pids)
        return {
          ok: false,
          error: `--pid ${pid}: the process is in the host's mount namespace, which remount never changes`,
        };
      continue;
    }
    members.set(id, [...(members.get(id) ?? []), pid]);
  }
  const namespaces: MountNamespace[] = [];
  for (const [id, group] of members) {
    const inits = group.filter(isPidNamespaceInit);
    for (const pid of [...inits.sort((a, b) => a - b), ...group.sort((a, b) => a - b)]) {
      const lxcfsMounts = uncoveredLxcfsMounts(pid);
      if (lxcfsMounts === undefined) continue;
      if (lxcfsMounts.length > 0) namespaces.push({ id, inode: inodeOf(id), pid, lxcfsMounts });
      break;
    }
  }
  return { ok: true, value: namespaces.sort((a, b) => a.pid - b.pid) };
}
