import { readdirSync } from 'node:fs';
import { liveThreadOf, readInnermostPid, readPidNamespaceInode, readProcessStat, readStartTime } from './process.js';
import { fail, ok, type Result } from './result.js';

/** Who is reading, and whose cgroups describe what it should see. */
export interface Caller {
  /** The FUSE request pid (a thread id, in the daemon's pid namespace). */
  readonly pid: number;
  /** Init of the caller's pid namespace as seen by the daemon; 1 for the daemon's own namespace. Used by uptime. */
  readonly initPid: number;
  /** When that init started, in clock ticks since boot (undefined if its /proc entry is unreadable). */
  readonly initStartTime: number | undefined;
  /** Whose cgroups to use: the caller itself in the daemon's namespace, else its namespace's init (lxcfs
   * rule), or a live thread of that init when its main thread has exited. */
  readonly cgroupPid: number;
  readonly inDaemonNamespace: boolean;
  /** Inode of the caller's pid namespace: which container a per-cgroup record is charged to. */
  readonly pidNamespace: number;
}

interface NamespaceInit {
  readonly pid: number;
  /** Identifies the process together with pid: a recycled pid has another start time. */
  readonly startTime: number;
  /** Its main thread has exited (pthread_exit) while other threads live on. */
  readonly zombieLeader: boolean;
}

/** Enough for every container on a large host; the oldest entries go first beyond it. */
const MAX_CACHED_NAMESPACES = 4096;

/**
 * Maps a request pid to its Caller. Container inits are found by scanning /proc
 * once per pid namespace (for the process of that namespace whose NSpid ends in
 * 1, because processes attached with setns — docker exec, nsenter — have
 * parents outside the namespace) and cached by namespace inode.
 */
export class CallerResolver {
  private readonly initsByNamespace = new Map<number, NamespaceInit>();
  private readonly daemonNamespace: number;
  /** The daemon's namespace's init lives as long as the daemon does. */
  private readonly daemonInitStartTime: number | undefined;

  constructor(private readonly procRoot: string) {
    this.daemonNamespace = readPidNamespaceInode(procRoot, 'self');
    this.daemonInitStartTime = readStartTime(procRoot, 1);
  }

  /** `pidNamespace`: the inode of the caller's pid namespace when the request already knows it (its
   * tenant, see lxcfs/tenancy.ts); 0 to read it here. */
  resolve(pid: number, pidNamespace = 0): Result<Caller> {
    if (!Number.isInteger(pid) || pid <= 0) {
      return fail(`request pid ${pid}: the reader is not visible in the daemon's pid namespace; host values apply`);
    }
    if (pidNamespace === 0) pidNamespace = readPidNamespaceInode(this.procRoot, pid);
    if (pidNamespace === 0) {
      return fail(`process ${pid} has exited before its request was served; host values apply`);
    }
    if (pidNamespace === this.daemonNamespace) {
      return ok({
        pid,
        initPid: 1,
        initStartTime: this.daemonInitStartTime,
        cgroupPid: pid,
        inDaemonNamespace: true,
        pidNamespace,
      });
    }
    const init = this.initOf(pidNamespace);
    if (init === undefined) {
      return fail(
        `no init process found for the pid namespace pid:[${pidNamespace}] of process ${pid}; host values apply`,
      );
    }
    // The kernel shows an exited main thread in the root cgroup: its live threads tell the truth.
    const cgroupPid = init.zombieLeader ? liveThreadOf(this.procRoot, init.pid) : init.pid;
    if (cgroupPid === undefined)
      return fail(`the init ${init.pid} of the pid namespace of process ${pid} is exiting; host values apply`);
    return ok({
      pid,
      initPid: init.pid,
      initStartTime: init.startTime,
      cgroupPid,
      inDaemonNamespace: false,
      pidNamespace,
    });
  }

  private initOf(namespace: number): NamespaceInit | undefined {
    const cached = this.initsByNamespace.get(namespace);
    if (cached !== undefined) {
      const stat = readProcessStat(this.procRoot, cached.pid);
      if (stat?.startTime === cached.startTime) return { ...cached, zombieLeader: stat.state === 'Z' };
      this.initsByNamespace.delete(namespace); // the init exited; its pid may belong to someone else now
    }
    const found = this.scanForInit(namespace);
    if (found !== undefined) {
      if (this.initsByNamespace.size >= MAX_CACHED_NAMESPACES) {
        this.initsByNamespace.delete(this.initsByNamespace.keys().next().value!);
      }
      this.initsByNamespace.set(namespace, found);
    }
    return found;
  }

  /** Compares the cheap ns link first; reads status and stat only for processes of that namespace. */
  private scanForInit(namespace: number): NamespaceInit | undefined {
    let entries: string[];
    try {
      entries = readdirSync(this.procRoot);
    } catch {
      return undefined;
    }
    for (const entry of entries) {
      const firstChar = entry.charCodeAt(0);
      if (firstChar < 48 || firstChar > 57) continue; // not a pid directory
      if (readPidNamespaceInode(this.procRoot, entry) !== namespace) continue;
      const pid = Number(entry);
      if (readInnermostPid(this.procRoot, pid) !== 1) continue;
      const stat = readProcessStat(this.procRoot, pid);
      if (stat !== undefined) return { pid, startTime: stat.startTime, zombieLeader: stat.state === 'Z' };
    }
    return undefined;
  }
}
