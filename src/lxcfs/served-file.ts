// What one served file is: how it is rendered for a container, and what is served instead when it cannot
// be. Each file is one ServedFile, registered under its path in registry.ts; tree.ts and bind.ts do the
// rest (node ids, the host fallback, resolving the caller) the same way for every file.

import type { Log } from '../util/thread-log.js';
import type { Caller } from '../host/caller.js';
import type { Host } from '../host/host.js';
import type { Result } from '../host/result.js';
import type { CpuStateMemory } from './cpu-state.js';
import type { SharedTableMemory } from './shared-table.js';

/** What the daemon's configuration says about rendering, and the state shared by every reader thread. */
export interface ViewOptions {
  procRoot: string;
  cgroupRoot: string;
  /** lxcfs -u: no swap in meminfo and swaps. */
  disableSwap: boolean;
  /** lxcfs --disable-zswap (cgroup2): zswap not counted as swap. */
  disableZswap: boolean;
  /** lxcfs --enable-cfs: the CFS quota sets the number of CPUs shown. */
  enableCfs: boolean;
  /** Per-cgroup /proc/stat state (cpu-state.ts). */
  cpuState: CpuStateMemory;
  /** lxcfs -l: per-container /proc/loadavg; without it the host's file is served. */
  enableLoadavg?: boolean;
  /** The loadavg table the main thread's sampler updates. Absent (lxcfs-ts show): a private, never
   * sampled one, so the view shows what a first read shows. */
  loadavgTable?: SharedTableMemory;
}

/** The host's own version of the file as text, read only if asked for (several files never need it);
 * undefined when it cannot be read. */
export type HostText = () => string | undefined;

/** Renders the file for the container of a resolved caller; a failure says why the fallback is served. */
export type Render = (container: Caller, hostText: HostText) => Result<string>;

/** What a file's renderer may use; one per reader thread. */
export interface FileContext {
  readonly host: Host;
  readonly options: ViewOptions;
  readonly log: Log;
}

export interface ServedFile {
  /** What a container reads in it, in a line of the README's file table. */
  readonly shows: string;
  /** The kernel hands the host's file out a record (CPU, disk, swap area, slab) at a time rather than in
   * one piece (see readRenderedFile). The host file is the served path under the proc or sys root. */
  readonly recordwise?: boolean;
  /** Sets the file up in one reader thread: its renderer, or undefined where this configuration serves
   * the host's file (loadavg without -l). */
  bind(context: FileContext): Render | undefined;
  /** What is served instead of a rendered file (virtualization off, or no container to render for),
   * made from the host's file: the host's file itself if absent. */
  readonly fallback?: Fallback;
}

export interface Fallback {
  /** What it is, in a line of the README's file table. */
  readonly shows: string;
  /** The content from the host's bytes; both need only last until the thread's next read. */
  from(host: Buffer): Buffer;
}
