import { readdirSync, readlinkSync } from 'node:fs';
import { readRenderedFile, readTextFile } from './files.js';
import { digitsIn } from '../util/text-scan.js';

export type ProcessId = number | 'self';

/**
 * Identity of the pid namespace of `pid`: the target of /proc/<pid>/ns/pid,
 * `pid:[<inode>]`. readlink rather than stat: stat follows the link and needs
 * ptrace access to the process (it fails on a non-dumpable pid 1 even for root),
 * readlink does not. `pid` may also be a /proc entry name, as the init scan has
 * them. Undefined when the process is gone.
 */
export function readPidNamespace(procRoot: string, pid: number | string): string | undefined {
  try {
    return readlinkSync(`${procRoot}/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

/** The inode of the pid namespace of `pid` (see readPidNamespace); 0 when the process is gone. */
export function readPidNamespaceInode(procRoot: string, pid: number | string): number {
  const link = readPidNamespace(procRoot, pid);
  return link === undefined ? 0 : namespaceInode(link);
}

/** The inode of a namespace link ("pid:[4026531836]" -> 4026531836); 0 if it is not one. */
export function namespaceInode(link: string): number {
  const open = link.indexOf('[');
  return open < 0 || !link.endsWith(']') ? 0 : (digitsIn(link, open + 1, link.length - 1) ?? 0);
}

/**
 * Start time of a process in clock ticks since boot: field 22 of
 * /proc/<pid>/stat. Fields are counted after the LAST ')' because the command
 * name (field 2) may itself contain spaces and parentheses.
 */
export function readStartTime(procRoot: string, pid: ProcessId): number | undefined {
  return readProcessStat(procRoot, pid)?.startTime;
}

/** The state letter (field 3: R, S, D, Z, ...) and start time of /proc/<pid>/stat. */
export function readProcessStat(procRoot: string, pid: ProcessId): { state: string; startTime: number } | undefined {
  const stat = readRenderedFile(`${procRoot}/${pid}/stat`, { singleRecord: true });
  if (stat === undefined) return undefined;
  // Fields counted by their separating spaces, not split into strings: this runs on every request of a
  // container (its init's start time tells that its pid was not reused).
  let at = stat.lastIndexOf(')') + 2; // field 3, after ") "
  const state = stat.charAt(at);
  for (let field = 3; field < 22 && at > 0; field++) at = stat.indexOf(' ', at) + 1;
  if (at === 0) return undefined;
  const end = stat.indexOf(' ', at);
  const startTime = digitsIn(stat, at, end < 0 ? stat.length : end);
  return startTime === undefined ? undefined : { state, startTime };
}

/**
 * A thread of process `pid` that has not exited, other than its main thread; undefined when there is
 * none. A process whose main thread called pthread_exit lives on in its other threads, while the kernel
 * shows the exited main thread (a zombie) in the root cgroup.
 */
export function liveThreadOf(procRoot: string, pid: number): number | undefined {
  let tids: string[];
  try {
    tids = readdirSync(`${procRoot}/${pid}/task`);
  } catch {
    return undefined;
  }
  for (const tid of tids) {
    if (Number(tid) === pid) continue;
    // /proc/<tid> is there for every thread, though not listed.
    const state = readProcessStat(procRoot, Number(tid))?.state;
    if (state !== undefined && state !== 'Z' && state !== 'X') return Number(tid);
  }
  return undefined;
}

/**
 * The process's pid in its own (innermost) pid namespace: the last number of
 * the `NSpid:` line of /proc/<pid>/status. 1 means it is that namespace's init.
 */
export function readInnermostPid(procRoot: string, pid: ProcessId): number | undefined {
  const status = readTextFile(`${procRoot}/${pid}/status`);
  if (status === undefined) return undefined;
  const nsPids = /^NSpid:(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
  const innermost = Number(nsPids?.[nsPids.length - 1]);
  return Number.isInteger(innermost) && innermost > 0 ? innermost : undefined;
}
