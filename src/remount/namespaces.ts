// Finding the mount namespaces that hold lxcfs mounts, without any container runtime: every process's
// /proc/PID/ns/mnt names its namespace, and one /proc/PID/mountinfo per namespace lists its mounts
// (dead FUSE mounts included). Each table is read once, whatever its size. Nothing here touches a FUSE
// path or any path inside a container.

import type { Result } from '../host/result.js';
import fs from 'node:fs';
import { mountsBelow, mountsOfType, type MountInfoEntry } from '../fuse/mount.js';
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

function namespaceOf(proc: string, pid: number | 'self'): string | undefined {
  try {
    return fs.readlinkSync(`${proc}/${pid}/ns/mnt`);
  } catch {
    // The process exited, or it is not ours to inspect (e.g. pid 1 of a sandbox).
    return undefined;
  }
}

function inodeOf(id: string): number {
  return Number(/\[(\d+)\]/.exec(id)?.[1]);
}

function allPids(proc: string): number[] {
  return fs
    .readdirSync(proc)
    .filter((name) => /^\d+$/.test(name))
    .map(Number);
}

/** Whether the process is pid 1 of its pid namespace: the container's init is the process a person
 * recognizes in the report, rather than one that merely shares its mount namespace (such as the
 * unshare(1) that made it). */
function isPidNamespaceInit(proc: string, pid: number): boolean {
  try {
    const nspid = /^NSpid:\s*(.*)$/m.exec(fs.readFileSync(`${proc}/${pid}/status`, 'utf8'))?.[1];
    return nspid?.trim().split(/\s+/).at(-1) === '1';
  } catch {
    return false;
  }
}

/** The lxcfs mounts in the process's mount table that are not hidden by a mount stacked on the same
 * mountpoint (undefined: the table cannot be read). The table is read once; of a container's other
 * mounts (up to fs.mount-max, 100,000) only the parent ID is looked at, so they cost that read and
 * little more: what remount does in a namespace grows with its lxcfs mounts, not with its table. */
function uncoveredLxcfsMounts(proc: string, pid: number): MountInfoEntry[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`${proc}/${pid}/mountinfo`, 'utf8');
  } catch {
    return undefined;
  }
  const lxcfs = mountsOfType(text, FS_TYPE);
  if (lxcfs.length === 0) return lxcfs;
  const stackedOn = new Set(
    mountsBelow(
      text,
      lxcfs.map((entry) => entry.mountId),
    ).map((entry) => `${entry.parentId} ${entry.mountPoint}`),
  );
  return lxcfs.filter((entry) => !stackedOn.has(`${entry.mountId} ${entry.mountPoint}`));
}

/** PF_KTHREAD in the flags of /proc/PID/stat: set by the kernel alone, so no process can pose as one. */
const PF_KTHREAD = 0x00200000;

/** Whether pid 2 is kthreadd, the kernel's thread spawner, which never leaves the initial namespaces;
 * in a pid namespace of its own, pid 2 is some process of the container. */
function isKthreadd(proc: string): boolean {
  try {
    const stat = fs.readFileSync(`${proc}/2/stat`, 'utf8');
    // The fields after "(comm)": state, ppid, pgrp, session, tty_nr, tpgid, flags.
    const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
    return (flags & PF_KTHREAD) !== 0;
  } catch {
    return false;
  }
}

/** The host's mount namespace: pid 1's, or, where that cannot be read (a hostPID container may not read
 * pid 1's namespace links), kthreadd's. */
function hostNamespaces(proc: string): (string | undefined)[] {
  return [namespaceOf(proc, 1), isKthreadd(proc) ? namespaceOf(proc, 2) : undefined];
}

/** The namespaces, other than ours and the host's, whose mount table lists a fuse.lxcfs mount. With
 * `pids`, only the namespaces of those processes are considered. `proc`: where procfs is mounted. */
export function findLxcfsNamespaces(pids?: number[], proc = '/proc'): Result<MountNamespace[]> {
  const own = new Set(
    [namespaceOf(proc, 'self'), ...hostNamespaces(proc)].filter((id): id is string => id !== undefined),
  );
  const members = new Map<string, number[]>();
  for (const pid of pids ?? allPids(proc)) {
    const id = namespaceOf(proc, pid);
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
    const inits = group.filter((pid) => isPidNamespaceInit(proc, pid));
    for (const pid of [...inits.sort((a, b) => a - b), ...group.sort((a, b) => a - b)]) {
      const lxcfsMounts = uncoveredLxcfsMounts(proc, pid);
      if (lxcfsMounts === undefined) continue;
      if (lxcfsMounts.length > 0) namespaces.push({ id, inode: inodeOf(id), pid, lxcfsMounts });
      break;
    }
  }
  return { ok: true, value: namespaces.sort((a, b) => a.pid - b.pid) };
}
