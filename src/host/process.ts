import { readlinkSync } from 'node:fs';
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
  const stat = readRenderedFile(`${procRoot}/${pid}/stat`, { singleRecord: true });
  if (stat === undefined) return undefined;
  const fieldsAfterName = stat.slice(stat.lastIndexOf(')') + 1).trim().split(' ');
  const startTime = Number(fieldsAfterName[22 - 3]); // fieldsAfterName[0] is field 3
  return Number.isInteger(startTime) ? startTime : undefined;
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
