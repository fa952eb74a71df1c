// lxcfs -l: per-cgroup load averages. The readers of /proc/loadavg register the cgroup they need in a
// SharedTable (shared by every reader thread and the main thread); the sampler, in the main thread and
// never on the FUSE request path, updates every registered cgroup every 5 s from the R and D threads of
// the cgroup and all its descendants.
//
// Work is shared: each cgroup directory is listed and its threads probed once per pass, however many
// registered cgroups contain it; a registered cgroup's counts are sums over its subtree. A pass yields to
// the event loop every few milliseconds, so even a huge host never stalls the main thread.

import type { Logger } from 'pino';
import fs from 'node:fs';
import type { CgroupReader } from '../host/cgroup-reader.js';
import { readerOf } from '../host/readers.js';
import { fileBudget, KeptFiles } from '../host/files.js';
import { detectCgroupLayout, type CgroupHierarchy, type CgroupLayout } from '../host/cgroup-layout.js';
import { CgroupUsage, childCgroupDirectories, loadavgHierarchy, readThreadIds, ThreadStateProbe, type ProbeCounters } from '../host/tasks.js';
import { nextLoads, SAMPLE_SECONDS, type LoadavgValues } from '../views/loadavg.js';
import { SharedTable, type SharedTableMemory } from './shared-table.js';

/** Fields of a record of the loadavg table (float64 each). */
export const LoadavgField = {
  LOAD1: 0,
  LOAD5: 1,
  LOAD15: 2,
  RUNNING: 3,
  TOTAL: 4,
  LAST: 5,
  /** Date.now() of the last read by a container, for forgetting unread cgroups. */
  LAST_READ_MS: 6,
  /** Samples taken since the record was created (the store has it as of the record's last change). */
  SAMPLES: 7,
} as const;
export const LOADAVG_FIELDS = 8;
/** The fields /proc/loadavg shows, in the order a pass computes them: the three loads, then the counts. */
const SHOWN_FIELDS = [LoadavgField.LOAD1, LoadavgField.LOAD5, LoadavgField.LOAD15, LoadavgField.RUNNING, LoadavgField.TOTAL, LoadavgField.LAST];
/** Cgroups tracked at once; beyond that the least recently read give way (see SharedTable). */
export const LOADAVG_CAPACITY = 4096;
/** Cgroups one container (pid namespace) may have tracked. */
export const LOADAVG_SHARE = 64;
/** A cgroup nobody has read for this long is no longer sampled (its next read starts again from 0). */
export const FORGET_AFTER_MS = 3600_000;
/** A pass yields to the event loop after this much work. */
const SLICE_MS = 10;

/** `store`: a file to write the table through to (see SharedTable). */
export function allocateLoadavgTable(capacity = LOADAVG_CAPACITY, store?: number): SharedTableMemory {
  return SharedTable.allocate(capacity, LOADAVG_FIELDS, { share: Math.min(LOADAVG_SHARE, capacity), store });
}

/**
 * The reader side: the current values of the cgroup at `directory`, registering it for sampling if it is
 * new (lxcfs shows a new cgroup as `0.00 0.00 0.00 0/1 <pid>`, `pid` being whose cgroup it is), charged
 * to `owner` (the reader's container).
 */
export function readLoadavg(table: SharedTable, directory: string, pid: number, nowMs: number, owner = 0): LoadavgValues {
  return table.update(directory, owner, (fields, created) => {
    if (created) {
      fields[LoadavgField.TOTAL] = 1;
      fields[LoadavgField.LAST] = pid;
    }
    fields[LoadavgField.LAST_READ_MS] = nowMs;
    return {
      load1: fields[LoadavgField.LOAD1]!,
      load5: fields[LoadavgField.LOAD5]!,
      load15: fields[LoadavgField.LOAD15]!,
      running: fields[LoadavgField.RUNNING]!,
      total: fields[LoadavgField.TOTAL]!,
      last: fields[LoadavgField.LAST]!,
    };
  });
}

export interface LoadavgSamplerOptions {
  memory: SharedTableMemory;
  /** The hierarchy the table's directories belong to (loadavgHierarchy()). */
  hierarchy: CgroupHierarchy;
  /** The host's layout, to find CPU time counters (CgroupUsage); without it every thread is probed. */
  layout?: CgroupLayout;
  procRoot: string;
  log: Logger;
  periodMs?: number;
  forgetAfterMs?: number;
  /** Descriptors the thread probe may keep open; default: its share of fileBudget(). */
  maxOpenFiles?: number;
  now?: () => number;
}

export interface PassReport {
  /** Registered cgroups sampled, and forgotten (unread too long, removed or empty). */
  cgroups: number;
  forgotten: number;
  /** Cgroup directories listed (registered ones and their descendants, each once). */
  directories: number;
  probe: ProbeCounters;
  wallMs: number;
  /** CPU time of the process during the pass (the readers' included, if any was busy meanwhile). */
  cpuMs: number;
}

interface DirectorySample {
  gone: boolean;
  running: number;
  total: number;
  last: number;
  children: string[];
}

/** A cgroup directory across passes. */
interface DirectoryInfo {
  /** Its number for the thread probe. */
  id: number;
  /** Link count when `children` was listed (2 + subdirectories on cgroupfs); -1: list again. */
  nlink: number;
  children: string[];
  /** Passes since the children were last listed. */
  listedAgo: number;
  /** Its CPU time counter, thread list, the probe's slots of those threads (when all of them had one)
   * and its own counts at the previous pass. */
  usage: string | undefined;
  tids: number[] | undefined;
  slots: Int32Array | undefined;
  running: number;
  total: number;
  last: number;
}

/** Children are listed again at least this often (a child removed and another created between two
 * passes leaves the link count as it was). */
const RELIST_PASSES = 12;

interface Counts {
  running: number;
  total: number;
  last: number;
}

export class LoadavgSampler {
  private readonly table: SharedTable;
  private readonly probe: ThreadStateProbe;
  /** Thread lists (cgroup2) and CPU counters of the sampled cgroups, re-read from offset 0 through
   * descriptors kept open between passes: that saves the open and close, which for a thread list cost
   * more than the read. Those a pass did not read are closed after it. */
  private readonly files: KeptFiles;
  private readonly usage: CgroupUsage | undefined;
  /** Reads the thread lists of options.hierarchy. */
  private readonly reader: CgroupReader;
  /** What is known of each cgroup directory sampled in the last pass. */
  private directories = new Map<string, DirectoryInfo>();
  private nextDirectoryId = 1;
  private readonly periodMs: number;
  private readonly forgetAfterMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private wakeTimer: (() => void) | undefined;
  private running = false;
  private stopped = false;
  /** Counts start() calls: a loop left waiting by stop() that wakes after a later start() ends itself. */
  private runs = 0;
  /** The last pass's report, for tools and tests. */
  lastReport: PassReport | undefined;

  constructor(private readonly options: LoadavgSamplerOptions) {
    this.table = new SharedTable(options.memory);
    this.periodMs = options.periodMs ?? SAMPLE_SECONDS * 1000;
    this.forgetAfterMs = options.forgetAfterMs ?? FORGET_AFTER_MS;
    this.now = options.now ?? Date.now;
    const budget = fileBudget();
    const maxOpenFiles = options.maxOpenFiles ?? budget.samplerThreads;
    this.files = new KeptFiles(budget.samplerCgroupFiles, 'read-through');
    this.probe = new ThreadStateProbe(options.procRoot, maxOpenFiles);
    this.reader = readerOf(options.hierarchy);
    this.usage = options.layout === undefined ? undefined : new CgroupUsage(options.hierarchy, options.layout, this.files);
  }

  /** Samples every period until stop(). While no cgroup is registered it waits for one without waking
   * (an idle daemon costs no CPU); the first pass then comes at the next point of the period's grid from
   * start(). A pass that overruns the period delays the next one. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    void this.run(++this.runs);
  }

  stop(): void {
    this.stopped = true;
    this.running = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.wakeTimer?.();
    this.probe.close();
    this.files.closeAll();
  }

  private async run(run: number): Promise<void> {
    const current = (): boolean => !this.stopped && run === this.runs;
    // Passes fall on a grid from start(), as an interval's would, not in step with the read that
    // registered the first cgroup: a container reading loadavg every second would then have its own
    // reader caught running at every pass.
    const origin = performance.now();
    let due = origin;
    while (current()) {
      if (this.table.size === 0 && this.directories.size === 0) {
        await this.table.notEmpty();
        continue;
      }
      const gridPoint = origin + Math.ceil((performance.now() - origin) / this.periodMs) * this.periodMs;
      due = Math.max(due + this.periodMs, gridPoint);
      await new Promise<void>((resolve) => {
        this.wakeTimer = resolve;
        this.timer = setTimeout(resolve, due - performance.now()).unref();
      });
      this.wakeTimer = undefined;
      if (!current()) return;
      try {
        const report = await this.pass();
        if (report.cgroups > 0 || report.forgotten > 0) this.options.log.debug(report, 'loadavg sample');
      } catch (err) {
        this.options.log.error({ err }, 'loadavg sampling pass failed');
      }
    }
  }

  /** One sample of every registered cgroup. */
  async pass(): Promise<PassReport> {
    const wallStart = performance.now();
    const cpuStart = process.cpuUsage();
    const now = this.now();
    const keys: string[] = [];
    let forgotten = 0;
    this.table.sweep((key, fields) => {
      if (now - fields[LoadavgField.LAST_READ_MS]! > this.forgetAfterMs) {
        forgotten++;
        return false;
      }
      keys.push(key);
      return true;
    });

    // Parents first: a nested registered cgroup is then already listed as part of its parent's subtree.
    keys.sort((a, b) => a.length - b.length);
    this.probe.beginPass();
    const previous = this.directories;
    this.directories = new Map();
    const samples = new Map<string, DirectorySample>();
    let sliceStart = performance.now();
    walk: for (const key of keys) {
      const stack = [key];
      while (stack.length > 0) {
        const directory = stack.pop()!;
        if (samples.has(directory)) continue;
        const sample = this.sampleDirectory(directory, previous.get(directory));
        samples.set(directory, sample);
        for (const child of sample.children) stack.push(child);
        if (performance.now() - sliceStart > SLICE_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (this.stopped) break walk;
          sliceStart = performance.now();
        }
      }
    }
    const probe = this.probe.endPass();
    this.usage?.retain(samples);
    this.files.sweep();
    if (this.stopped) return { cgroups: 0, forgotten, directories: samples.size, probe, wallMs: performance.now() - wallStart, cpuMs: cpuMs(process.cpuUsage(cpuStart)) };

    const subtree = new Map<string, Counts>();
    const sum = (directory: string): Counts => {
      const known = subtree.get(directory);
      if (known !== undefined) return known;
      const sample = samples.get(directory);
      if (sample === undefined) return { running: 0, total: 0, last: 0 };
      const counts: Counts = { running: sample.running, total: sample.total, last: sample.last };
      for (const child of sample.children) {
        const inner = sum(child);
        counts.running += inner.running;
        counts.total += inner.total;
        counts.last = Math.max(counts.last, inner.last);
      }
      subtree.set(directory, counts);
      return counts;
    };

    // Counted before taking the table's lock, which the readers wait for.
    const results = new Map<string, Counts | undefined>();
    for (const key of keys) {
      const sample = samples.get(key);
      results.set(key, sample === undefined || sample.gone ? undefined : sum(key));
    }
    let dropped = 0;
    this.table.sweepAndStore((key, fields) => {
      if (!results.has(key)) return 'keep'; // registered (and stored) during this pass: sampled from the next one
      const counts = results.get(key);
      // Like lxcfs: a removed cgroup, or one without any thread, is forgotten; a later read starts again.
      if (counts === undefined || counts.total === 0) {
        dropped++;
        return 'delete';
      }
      const shown = [
        ...nextLoads([fields[LoadavgField.LOAD1]!, fields[LoadavgField.LOAD5]!, fields[LoadavgField.LOAD15]!], counts.running),
        counts.running,
        counts.total,
        counts.last,
      ];
      fields[LoadavgField.SAMPLES]! += 1;
      let changed = false;
      SHOWN_FIELDS.forEach((field, i) => {
        if (fields[field] === shown[i]) return;
        fields[field] = shown[i]!;
        changed = true;
      });
      // A steady cgroup (an idle one: nothing running, loads decayed to 0) keeps every value it shows:
      // its record is not written to the store again. Only the sample count moves, which no view shows.
      return changed ? 'store' : 'keep';
    });

    const report: PassReport = {
      cgroups: keys.length - dropped,
      forgotten: forgotten + dropped,
      directories: samples.size,
      probe: { ...probe, openFiles: probe.openFiles + this.files.size },
      wallMs: performance.now() - wallStart,
      cpuMs: cpuMs(process.cpuUsage(cpuStart)),
    };
    this.lastReport = report;
    return report;
  }

  private sampleDirectory(directory: string, before: DirectoryInfo | undefined): DirectorySample {
    const info: DirectoryInfo = before ?? {
      id: this.nextDirectoryId++, nlink: -1, children: [], listedAgo: 0,
      usage: undefined, tids: undefined, slots: undefined, running: 0, total: 0, last: 0,
    };
    this.directories.set(directory, info);
    // Nothing ran in the cgroup since the last pass (its CPU time counter has not moved): no thread was
    // made, exited, slept or woke up in it, since each of those happens on a CPU. Last pass's thread list,
    // counts and children hold, without reading even the list. What this misses, until the list is read
    // again every RELIST_PASSES passes all the same: a sleeping thread moved in or out from outside, a
    // child cgroup made and filled from outside, and a thread woken but still waiting for a CPU.
    if (info.tids !== undefined && info.slots !== undefined && info.listedAgo + 1 < RELIST_PASSES) {
      const usage = this.usage?.read(directory, info.tids);
      if (usage !== undefined && usage === info.usage && this.probe.keepUnchanged(info.slots, info.id)) {
        info.listedAgo++;
        return { gone: false, running: info.running, total: info.total, last: info.last, children: info.children };
      }
    }
    const tids = readThreadIds(directory, this.reader, this.files);
    // A directory without a thread list is either gone (then it has no children either) or not a cgroup.
    if (tids === undefined) return { gone: true, running: 0, total: 0, last: 0, children: childCgroupDirectories(directory) };
    // The CPU time counter before any thread's state: if it has not moved by the next pass, no thread
    // read below has changed state meanwhile (except threads woken and still waiting for a CPU).
    const usage = this.usage?.read(directory, tids);
    const quiet = usage !== undefined && info.usage === usage;
    info.usage = usage;
    info.tids = tids;
    let running = 0;
    let total = 0;
    let last = 0;
    const slots = new Int32Array(tids.length);
    let complete = true;
    for (let i = 0; i < tids.length; i++) {
      const tid = tids[i]!;
      const active = (quiet ? this.probe.unchangedState(tid, info.id) : undefined) ?? this.probe.isActive(tid, info.id);
      if (active === undefined) {
        complete = false; // exited since the list was read
        continue;
      }
      slots[i] = this.probe.lastSlot;
      total++;
      if (active) running++;
      if (tid > last) last = tid;
    }
    info.slots = complete ? slots : undefined;
    info.running = running;
    info.total = total;
    info.last = last;
    return { gone: false, running, total, last, children: this.children(directory, info) };
  }

  /** Child cgroups, listed again only when the directory's link count moved (or now and then). */
  private children(directory: string, info: DirectoryInfo): string[] {
    let nlink: number;
    try {
      nlink = fs.statSync(directory).nlink;
    } catch {
      return [];
    }
    // cgroupfs counts subdirectories in the link count (2 + children); elsewhere (< 2) always list.
    if (nlink < 2 || nlink !== info.nlink || ++info.listedAgo >= RELIST_PASSES) {
      info.children = nlink === 2 ? [] : childCgroupDirectories(directory);
      info.nlink = nlink;
      info.listedAgo = 0;
    }
    return info.children;
  }
}

/** User + system time of a process.cpuUsage() difference, in ms. */
function cpuMs(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1000;
}

/** Starts the sampler of a serving process when -l is on (the table comes from treeOptionsFrom);
 * undefined without -l or without a hierarchy to sample (then /proc/loadavg shows the host's values). */
export function startLoadavgSampler(
  options: { enableLoadavg?: boolean; loadavgTable?: SharedTableMemory; procRoot: string; cgroupRoot: string },
  log: Logger,
): LoadavgSampler | undefined {
  if (!options.enableLoadavg || options.loadavgTable === undefined) return undefined;
  const layout = detectCgroupLayout({ procRoot: options.procRoot, cgroupRoot: options.cgroupRoot });
  const hierarchy = loadavgHierarchy(layout);
  if (hierarchy === undefined) {
    log.warn('--enable-loadavg: no cpu (v1) or cgroup2 hierarchy is mounted; /proc/loadavg shows the host values');
    return undefined;
  }
  const sampler = new LoadavgSampler({ memory: options.loadavgTable, hierarchy, layout, procRoot: options.procRoot, log });
  sampler.start();
  log.info({ hierarchy: hierarchy.mountPoint, periodSeconds: SAMPLE_SECONDS }, 'loadavg: sampling the cgroups containers read /proc/loadavg from');
  return sampler;
}
