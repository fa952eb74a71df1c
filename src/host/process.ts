import { readdirSync, readlinkSync } from 'node:fs';
import { readRenderedFile, readTextFile } from './files.js';

export type ProcessId = number | 'self';

/**
 * Identity of the pid namespace of `pid`: the target of /proc/<pid>/ns/pid,
 * `pid:[<inode>]`. Compared as text, unparsed, because the init scan does this
 * for every process on the host. readlink rather than stat: stat follows the
 * link and needs ptrace access to the process (it fails on a non-dumpable pid 1
 * even for root), readlink does not. `pid` may also be a /proc entry name, as
 * the scan has them. Undefined when the process is gone.
 */
export function readPidNamespace(procRoot: string, pid: number | string): string | undefined {
  try {
    return readlinkSync(`${procRoot}/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
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
  const fieldsAfterName = stat.slice(stat.lastIndexOf(')') + 1).trim().split(' ');
  const startTime = Number(fieldsAfterName[22 - 3]); // fieldsAfterName[0] is field 3
  return Number.isInteger(startTime) ? { state: fieldsAfterName[0]!, startTime } : undefined;
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
