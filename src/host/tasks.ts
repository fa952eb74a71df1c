// Threads of cgroups and their scheduler states, for the loadavg sampler: what lxcfs -l gets by listing
// /proc/<pid>/task/* of every process and reading each thread's `status`, at a fraction of the cost.
//
// * Threads come from the cgroup's own list (`tasks` on v1, `cgroup.threads` on v2): one read per cgroup
//   instead of a directory listing per process.
// * A thread's state is one letter of /proc/<tid>/task/<tid>/stat, read with pread on a descriptor kept
//   open across passes (no path walk, no open/close).
// * Before that, /proc/<tid>/task/<tid>/schedstat (run time, run-queue wait, times scheduled: three
//   numbers, cheap for the kernel to print) is compared with the previous pass. A thread changes state
//   only by running: sleeping, blocking and exiting all happen on a CPU. So when none of the three moved,
//   the state read last time still holds, and the stat read is skipped. The one miss: a thread woken
//   after the previous pass that has not got a CPU for the whole interval since is still counted as
//   sleeping. A thread that was blocked (D) and is now waiting to run (R) counts the same either way.
//   Kernels without scheduler statistics print "0 0 0": the state is then always read. schedstat is
//   parsed in place, so a pass allocates next to nothing per thread.
// * The same reasoning one level up: when the CPU time of a cgroup (its descendants included) has not
//   moved since the previous pass, none of its threads ran, and each keeps the state read last time
//   without any per-thread read (CgroupUsage: cgroup2 cpu.stat usage_usec, or cpuacct.usage of the same
//   cgroup or of the cpuacct cgroup at the same path holding exactly the same threads, as container
//   runtimes make them on v1). Threads new to the cgroup are probed as above.

import fs from 'node:fs';
import { join } from 'node:path';
import type { CgroupHierarchy, CgroupLayout } from './cgroup-layout.js';
import { findHierarchy } from './cgroup-layout.js';
import type { CgroupReader } from './cgroup-reader.js';
import { KeptFiles, readTextFile } from './files.js';
import { readerOf } from './readers.js';

/** The hierarchy whose cgroups key the load averages: lxcfs's cpu controller, else the cgroup2 one
 * (whose thread lists exist whichever controllers are enabled). */
export function loadavgHierarchy(layout: CgroupLayout): CgroupHierarchy | undefined {
  return findHierarchy(layout, 'cpu') ?? layout.hierarchies.find((h) => h.version === 2);
}

function parseIds(buffer: Buffer, length: number): number[] {
  const ids: number[] = [];
  let value = 0;
  let digits = false;
  for (let i = 0; i < length; i++) {
    const c = buffer[i]!;
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48);
      digits = true;
    } else if (digits) {
      ids.push(value);
      value = 0;
      digits = false;
    }
  }
  if (digits) ids.push(value);
  return ids;
}

/**
 * Thread ids of the cgroup itself (not its descendants), in the kernel's order (sorted for v1 `tasks`);
 * undefined when the cgroup is gone. Read through `files` when given: on cgroup2 it keeps the descriptor
 * for the next read, on v1 it only lends its buffer.
 */
export function readThreadIds(directory: string, reader: CgroupReader, files?: KeptFiles): number[] | undefined {
  // cgroup v1 builds a pid list per cgroup and pid namespace and hands it to every reader that reads
  // from offset 0 through an already open file, for as long as anyone read it within the last second: a
  // kept descriptor would see the list another process's open made, however old. Only an open builds a
  // fresh one. cgroup2 walks the live threads on every read from offset 0.
  if (files !== undefined) {
    const length = files.read(reader.threadListPath(directory), reader.version === 2 ? {} : OPEN_EACH_TIME);
    return typeof length === 'number' ? parseIds(files.content(length), length) : undefined;
  }
  const text = readTextFile(reader.threadListPath(directory));
  return text === undefined ? undefined : parseIds(Buffer.from(text, 'latin1'), text.length);
}

const OPEN_EACH_TIME = { openEachTime: true } as const;

/** Directories of the child cgroups; empty when there are none or the cgroup is gone. */
export function childCgroupDirectories(directory: string): string[] {
  try {
    const children: string[] = [];
    for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
      if (entry.isDirectory()) children.push(join(directory, entry.name));
    }
    return children;
  } catch {
    return [];
  }
}

const CLOSED = -1;
/** Bytes of /proc/<tid>/stat that always include `pid (comm) S` (comm: 64 bytes at most). */
const STAT_PREFIX_BYTES = 160;
const R = 82;
const D = 68;
const CLOSE_PAREN = 41;

export interface ProbeCounters {
  /** Threads probed. */
  threads: number;
  /** Threads whose cgroup's CPU time had not moved: nothing read for them. */
  unchanged: number;
  /** State reads (stat) done; the rest were skipped because schedstat had not moved. */
  stateReads: number;
  /** Descriptors held open. */
  openFiles: number;
}

/**
 * The R/D state of threads, probed once per pass. Keeps two descriptors per thread while it is listed,
 * within `maxOpenFiles`; beyond that a thread's stat is opened, read and closed on every probe.
 *
 * Per-thread records live in typed arrays indexed by a slot (tid → slot in a Map): updating them every
 * 5 s allocates nothing, so sampling does not wake the garbage collector.
 */
export class ThreadStateProbe {
  private readonly slots = new Map<number, number>();
  private readonly free: number[] = [];
  private capacity = 0;
  private schedFd = new Int32Array(0);
  private statFd = new Int32Array(0);
  /** schedstat at the last state read (run time ns, run-queue wait ns, times scheduled); run 0 when
   * unknown (no descriptor, or a kernel without scheduler statistics). */
  private run = new Float64Array(0);
  private wait = new Float64Array(0);
  private slices = new Float64Array(0);
  /** 1 when R or D at the last state read. */
  private active = new Uint8Array(0);
  /** Pass in which the thread was last probed, and the cgroup (a caller's number) it was listed in. */
  private seen = new Int32Array(0);
  private directory = new Int32Array(0);
  private readonly buffer = Buffer.alloc(STAT_PREFIX_BYTES);
  /** The slot of the thread the last unchangedState() or isActive() answered for (-1: none, gone). */
  lastSlot = -1;
  private pass = 0;
  /** Threads of `slots` probed in this pass: when that is all of them, endPass() has nothing to close
   * and skips its walk over every thread. */
  private seenThisPass = 0;
  private openFiles = 0;
  private stateReads = 0;
  private probes = 0;
  private unchanged = 0;

  constructor(
    private readonly procRoot: string,
    private readonly maxOpenFiles: number,
  ) {}

  /** Starts a pass: threads not probed until endPass() are forgotten then. */
  beginPass(): void {
    this.pass++;
    this.seenThisPass = 0;
    this.stateReads = 0;
    this.probes = 0;
    this.unchanged = 0;
  }

  /**
   * The state read in the previous pass, if thread `tid` was listed in the same cgroup (`directory`, a
   * number the caller gives each cgroup) then: for a cgroup whose CPU time has not moved since (none of
   * its threads ran). Undefined otherwise.
   */
  unchangedState(tid: number, directory: number): boolean | undefined {
    const slot = this.slots.get(tid);
    if (slot === undefined || this.seen[slot] !== this.pass - 1 || this.directory[slot] !== directory) return undefined;
    this.probes++;
    this.unchanged++;
    this.seen[slot] = this.pass;
    this.seenThisPass++;
    this.lastSlot = slot;
    return this.active[slot] === 1;
  }

  /**
   * For a cgroup whose CPU time has not moved and whose thread list is the one of the previous pass:
   * keeps its threads (by the slots lastSlot gave for them then) without reading or looking up anything.
   * False if one of them is not a thread of that cgroup seen in the previous pass any more (probe them
   * one by one then).
   */
  keepUnchanged(slots: Int32Array, directory: number): boolean {
    for (let i = 0; i < slots.length; i++) {
      const slot = slots[i]!;
      if (this.seen[slot] !== this.pass - 1 || this.directory[slot] !== directory) return false;
    }
    for (let i = 0; i < slots.length; i++) this.seen[slots[i]!] = this.pass;
    this.seenThisPass += slots.length;
    this.probes += slots.length;
    this.unchanged += slots.length;
    return true;
  }

  /** Whether thread `tid`, listed in cgroup number `directory`, is runnable or uninterruptible (R or D);
   * undefined when it is gone. */
  isActive(tid: number, directory = 0): boolean | undefined {
    this.probes++;
    const slot = this.slots.get(tid);
    this.lastSlot = slot ?? -1;
    if (slot !== undefined) {
      if (this.seen[slot] === this.pass) return this.active[slot] === 1; // listed twice (moved mid-pass)
      this.seen[slot] = this.pass;
      this.seenThisPass++;
      this.directory[slot] = directory;
      const run = this.run[slot]!;
      const wait = this.wait[slot]!;
      const slices = this.slices[slot]!;
      if (this.readSched(slot)) {
        if (run !== 0 && this.run[slot] === run && this.wait[slot] === wait && this.slices[slot] === slices) return this.active[slot] === 1;
        const active = this.readState(tid, slot);
        if (active !== undefined) {
          this.active[slot] = active ? 1 : 0;
          return active;
        }
      }
      // Our descriptors belong to a thread that exited; a tid listed now is a new thread.
      this.seenThisPass--;
      this.forget(tid, slot);
      this.lastSlot = -1;
    }
    return this.probeNew(tid, directory);
  }

  /** Closes the descriptors of threads that were not probed in this pass. */
  endPass(): ProbeCounters {
    // Only when some thread went unprobed; forEach, since for-of over entries makes an array per thread.
    if (this.seenThisPass !== this.slots.size)
      this.slots.forEach((slot, tid) => {
        if (this.seen[slot] !== this.pass) this.forget(tid, slot);
      });
    return { threads: this.probes, unchanged: this.unchanged, stateReads: this.stateReads, openFiles: this.openFiles };
  }

  close(): void {
    for (const [tid, slot] of this.slots) this.forget(tid, slot);
  }

  private probeNew(tid: number, directory: number): boolean | undefined {
    const slot = this.allocate();
    this.seen[slot] = this.pass;
    this.directory[slot] = directory;
    this.schedFd[slot] = CLOSED;
    this.statFd[slot] = CLOSED;
    this.run[slot] = this.wait[slot] = this.slices[slot] = 0;
    if (this.openFiles + 2 <= this.maxOpenFiles) {
      // schedstat before stat: a change in between shows as a moved schedstat on the next pass.
      this.schedFd[slot] = this.open(tid, 'schedstat');
      this.statFd[slot] = this.open(tid, 'stat');
    }
    if (!this.readSched(slot)) this.run[slot] = 0;
    const active = this.readState(tid, slot);
    if (active === undefined) {
      this.closeFds(slot);
      this.free.push(slot);
      return undefined;
    }
    this.active[slot] = active ? 1 : 0;
    this.slots.set(tid, slot);
    this.seenThisPass++;
    this.lastSlot = slot;
    return active;
  }

  private allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const slot = this.slots.size;
    if (slot >= this.capacity) this.grow(Math.max(256, this.capacity * 2));
    return slot;
  }

  private grow(capacity: number): void {
    const grown = <T extends Int32Array | Float64Array | Uint8Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.schedFd = grown(this.schedFd, (n) => new Int32Array(n));
    this.statFd = grown(this.statFd, (n) => new Int32Array(n));
    this.run = grown(this.run, (n) => new Float64Array(n));
    this.wait = grown(this.wait, (n) => new Float64Array(n));
    this.slices = grown(this.slices, (n) => new Float64Array(n));
    this.active = grown(this.active, (n) => new Uint8Array(n));
    this.seen = grown(this.seen, (n) => new Int32Array(n));
    this.directory = grown(this.directory, (n) => new Int32Array(n));
    this.capacity = capacity;
  }

  private open(tid: number, file: string): number {
    try {
      const fd = fs.openSync(`${this.procRoot}/${tid}/task/${tid}/${file}`, 'r');
      this.openFiles++;
      return fd;
    } catch {
      return CLOSED;
    }
  }

  /** Reads schedstat into the slot (parsed in place); false when the thread is gone. Without a
   * descriptor the numbers stay 0 (unknown). */
  private readSched(slot: number): boolean {
    const fd = this.schedFd[slot]!;
    if (fd === CLOSED) return true;
    let n: number;
    try {
      n = fs.readSync(fd, this.buffer, 0, STAT_PREFIX_BYTES, 0);
    } catch {
      return false;
    }
    const buffer = this.buffer;
    let i = 0;
    let run = 0;
    for (let c = buffer[i]!; c >= 48 && c <= 57 && i < n; c = buffer[++i]!) run = run * 10 + (c - 48);
    i++;
    let wait = 0;
    for (let c = buffer[i]!; c >= 48 && c <= 57 && i < n; c = buffer[++i]!) wait = wait * 10 + (c - 48);
    i++;
    let slices = 0;
    for (let c = buffer[i]!; c >= 48 && c <= 57 && i < n; c = buffer[++i]!) slices = slices * 10 + (c - 48);
    this.run[slot] = run;
    this.wait[slot] = wait;
    this.slices[slot] = slices;
    return true;
  }

  /** R or D? From the kept descriptor, else by opening the file; undefined when the thread is gone. */
  private readState(tid: number, slot: number): boolean | undefined {
    this.stateReads++;
    let n: number;
    try {
      const kept = this.statFd[slot]!;
      if (kept !== CLOSED) {
        n = fs.readSync(kept, this.buffer, 0, STAT_PREFIX_BYTES, 0);
      } else {
        const fd = fs.openSync(`${this.procRoot}/${tid}/task/${tid}/stat`, 'r');
        try {
          n = fs.readSync(fd, this.buffer, 0, STAT_PREFIX_BYTES, 0);
        } finally {
          fs.closeSync(fd);
        }
      }
    } catch {
      return undefined;
    }
    // The state follows the last ')': the command name may contain anything, the fields after it only
    // digits, signs and spaces.
    let i = n - 1;
    while (i >= 0 && this.buffer[i] !== CLOSE_PAREN) i--;
    if (i < 0 || i + 2 >= n) return undefined;
    const state = this.buffer[i + 2];
    return state === R || state === D;
  }

  private forget(tid: number, slot: number): void {
    this.closeFds(slot);
    this.slots.delete(tid);
    this.free.push(slot);
  }

  private closeFds(slot: number): void {
    for (const fds of [this.schedFd, this.statFd]) {
      const fd = fds[slot]!;
      if (fd === CLOSED) continue;
      try {
        fs.closeSync(fd);
      } catch {
        // Already closed: nothing to release.
      }
      this.openFiles--;
      fds[slot] = CLOSED;
    }
  }
}

/** CPU counters are one seq_file record: a short read is the whole file. */
const ONE_RECORD = { singleRecord: true } as const;

/**
 * The CPU time counter of a cgroup and its descendants, as text (compared, never computed with): v2
 * cpu.stat usage_usec; v1 cpuacct.usage when cpuacct shares the hierarchy, else that of the cpuacct
 * cgroup at the same path if it holds exactly the same threads (container runtimes create the same path
 * in every v1 hierarchy). Undefined when there is no such counter.
 */
export class CgroupUsage {
  private readonly mirrorRoot: string | undefined;
  private readonly mirrorReader: CgroupReader | undefined;
  /** Per directory: the thread list its cpuacct mirror was checked against, how many reads ago, and the
   * mirror's counter (undefined: the mirror holds other threads, or there is none). */
  private readonly mirrors = new Map<string, { tids: readonly number[]; checks: number; usagePath: string | undefined }>();

  constructor(
    private readonly hierarchy: CgroupHierarchy,
    layout: CgroupLayout,
    private readonly files: KeptFiles,
  ) {
    const cpuacct = hierarchy.version === 1 && !hierarchy.controllers.includes('cpuacct') ? findHierarchy(layout, 'cpuacct') : undefined;
    this.mirrorRoot = cpuacct?.version === 1 && cpuacct.mountRoot === hierarchy.mountRoot ? cpuacct.mountPoint : undefined;
    this.mirrorReader = cpuacct === undefined ? undefined : readerOf(cpuacct);
  }

  /**
   * The counter of `directory` (of this.hierarchy), whose own threads are `tids` (sorted, as `tasks`).
   * A cpuacct mirror is compared thread by thread when the list changed, and every 12th read anyway
   * (threads moved in the cpuacct hierarchy alone).
   */
  read(directory: string, tids: readonly number[]): string | undefined {
    if (this.hierarchy.version === 2) {
      const stat = this.files.text(directory + '/cpu.stat', ONE_RECORD);
      return stat === undefined ? undefined : /^usage_usec (\d+)$/m.exec(stat)?.[1];
    }
    if (this.mirrorRoot === undefined) return this.files.text(directory + '/cpuacct.usage', ONE_RECORD)?.trim();
    if (!directory.startsWith(this.hierarchy.mountPoint)) return undefined;
    let known = this.mirrors.get(directory);
    if (known === undefined || known.checks >= 12 || !sameList(known.tids, tids)) {
      const mirror = this.mirrorRoot + directory.slice(this.hierarchy.mountPoint.length);
      const mirrored = readThreadIds(mirror, this.mirrorReader!, this.files);
      // Remembered either way: a cgroup without a mirror is not checked again before its list changes.
      known = { tids, checks: 0, usagePath: mirrored !== undefined && sameList(mirrored, tids) ? mirror + '/cpuacct.usage' : undefined };
      this.mirrors.set(directory, known);
    } else {
      known.checks++;
    }
    return known.usagePath === undefined ? undefined : this.files.text(known.usagePath, ONE_RECORD)?.trim();
  }

  /** Forgets mirrors of directories no longer sampled. */
  retain(directories: ReadonlyMap<string, unknown>): void {
    for (const directory of this.mirrors.keys()) if (!directories.has(directory)) this.mirrors.delete(directory);
  }
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
