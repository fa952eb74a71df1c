// The CPU views (cpuinfo, stat, uptime, sys/devices/system/cpu/online) wired to host facts, and the
// per-cgroup state /proc/stat keeps across reads. That state lives in a SharedTable allocated once in
// the main thread: consecutive reads of one container may be served by different reader threads.

import fs from 'node:fs';
import type { Caller as RequestCaller } from '../fuse/filesystem.js';
import {
  CLOCK_TICKS_PER_SECOND,
  cgroupExists,
  cpuAccountingCgroupOf,
  cpuAccountingHierarchy,
  parseUptimeSeconds,
  readCpuLimits,
  readCpuTimeNs,
  readCpuUsage,
  type CpuUsage,
} from '../host/cpu.js';
import type { Host } from '../host/host.js';
import type { Caller } from '../host/caller.js';
import { fail, ok, type Result } from '../host/result.js';
import { renderCpuinfo } from '../views/cpuinfo.js';
import { countHostCpus, parseCpuList, visibleCpus, type VisibleCpus } from '../views/cpuset.js';
import { renderOnline } from '../views/online.js';
import {
  advanceCgroup2View,
  advanceCpuView,
  cgroup2ViewFieldCount,
  cpuViewFieldCount,
  parseHostStat,
  renderStatFromCpuacct,
  renderStatFromHostLines,
  ticksFromNs,
  type HostStat,
} from '../views/stat.js';
import { renderUptime } from '../views/uptime.js';
import { SharedTable, type SharedTableMemory } from './shared-table.js';
import type { HostText, View } from './views.js';

/** Per-cgroup CPU state: the table and how many CPUs each record holds. */
export interface CpuStateMemory {
  table: SharedTableMemory;
  cpus: number;
}

export interface CpuViewOptions {
  /** lxcfs --enable-cfs: the CFS quota sets the number of CPUs shown. */
  enableCfs: boolean;
  cpuState: CpuStateMemory;
}

/** Cgroups whose /proc/stat state is kept; records of removed cgroups are dropped, and beyond this the
 * least recently read give way (see SharedTable). */
const CPU_STATE_CAPACITY = 2048;
/** Records one container (pid namespace) may hold. */
export const CPU_STATE_SHARE = 64;
/** How often the records of removed cgroups are dropped (lxcfs: 10 s). */
const SWEEP_INTERVAL_SECONDS = 10;
const SWEEP_KEY = '#sweep';

/** Possible CPUs of the host (/sys/devices/system/cpu/possible), which bounds every CPU number. */
export function possibleCpuCount(sysRoot = '/sys'): number {
  try {
    const cpus = parseCpuList(fs.readFileSync(`${sysRoot}/devices/system/cpu/possible`, 'utf8'));
    if (cpus.length > 0) return cpus[cpus.length - 1]! + 1;
  } catch {
    // Not a Linux sysfs (tests with fixture roots): fall through.
  }
  return 64;
}

/** The shared state of the CPU views; call once in the main thread and hand it to every reader. `store`:
 * a file to write it through to (see SharedTable). */
export function allocateCpuState(cpus = possibleCpuCount(), store?: number): CpuStateMemory {
  const fields = Math.max(cpuViewFieldCount(cpus), cgroup2ViewFieldCount(cpus), 1);
  return { table: SharedTable.allocate(CPU_STATE_CAPACITY, fields, { share: CPU_STATE_SHARE, store }), cpus };
}

type Fallback = (file: string, caller: RequestCaller, error: string) => undefined;

export function createCpuViews(host: Host, options: CpuViewOptions, fallback: Fallback): Record<string, View> {
  const state = new SharedTable(options.cpuState.table);
  const stateCpus = options.cpuState.cpus;

  /** The container's visible CPUs, or why they cannot be known. */
  function cpusOf(who: Caller, hostStat?: string): VisibleCpus | string {
    const limits = readCpuLimits(host, who.cgroupPid, options.enableCfs);
    if (!limits.ok) return limits.error;
    let online = 0;
    if (limits.value.cfsView) {
      const stat = hostStat ?? host.readProcFile('stat');
      if (stat === undefined) return 'host /proc/stat is unreadable';
      online = countHostCpus(stat);
    }
    return visibleCpus(limits.value, online);
  }

  /** A view that needs the caller's visible CPUs; `render` answers undefined when the host file it needs
   * is unreadable. */
  function withCpus(file: string, render: (cpus: VisibleCpus, hostText: HostText) => string | undefined): View {
    return (caller, hostText) => {
      const who = host.callers.resolve(caller.pid);
      if (!who.ok) return fallback(file, caller, who.error);
      const cpus = cpusOf(who.value);
      if (typeof cpus === 'string') return fallback(file, caller, cpus);
      const text = render(cpus, hostText);
      return text === undefined ? fallback(file, caller, `the host's ${file} is unreadable`) : Buffer.from(text, 'latin1');
    };
  }

  /** Drops, at most every 10 s, the records of cgroups that no longer exist. */
  function sweep(now: number): void {
    const due = state.update(SWEEP_KEY, 0, (fields) => {
      if (now - fields[0]! < SWEEP_INTERVAL_SECONDS && now >= fields[0]!) return false;
      fields[0] = now;
      return true;
    });
    if (!due) return;
    const keys: string[] = [];
    state.sweep((key) => (keys.push(key), true));
    // Directory checks outside the lock; a cgroup created again meanwhile just starts over.
    const gone = new Set(keys.filter((key) => key !== SWEEP_KEY && !cgroupExists(key.slice(key.indexOf(':') + 1))));
    if (gone.size > 0) state.sweep((key) => !gone.has(key));
  }

  /** Seconds since boot, from the host's /proc/uptime. */
  function hostNow(): number | undefined {
    const uptime = host.readProcFile('uptime');
    return uptime === undefined ? undefined : parseUptimeSeconds(uptime);
  }

  /** v1 with cpuacct: lxcfs's numbers, and with the CFS view lxcfs's stateful CPU view. */
  function statFromCpuacct(usage: CpuUsage & { version: 1 }, who: Caller, cpus: VisibleCpus, hostStat: HostStat): string {
    const ticks = usage.perCpu.map((cpu) => ({ user: ticksFromNs(cpu.userNs), system: ticksFromNs(cpu.systemNs) }));
    if (!cpus.cfsView) return renderStatFromCpuacct(hostStat, cpus, ticks);
    const text = state.update(`v1:${usage.cgroup.directory}`, who.pidNamespace, (record, created) => advanceCpuView(record, stateCpus, created, hostStat, cpus, ticks));
    const now = hostNow();
    if (now !== undefined) sweep(now);
    return text;
  }

  /** cgroup2: the model of advanceCgroup2View, over the CPUs shown (physical numbers, or 0.. with the CFS view). */
  function statFromCpuStat(usage: CpuUsage & { version: 2 }, who: Caller, cpus: VisibleCpus, hostStat: HostStat): Result<string> {
    const now = hostNow();
    if (now === undefined) return fail('host /proc/uptime is unreadable');
    const online = new Set(hostStat.cpus.map((line) => line.cpu));
    const labels = (cpus.cfsView ? Array.from({ length: cpus.count }, (_, i) => i) : cpus.cpuset.filter((cpu) => online.has(cpu)))
      .filter((label) => label < stateCpus);
    if (labels.length === 0) return fail(`no CPU of the cpuset ${cpus.cpusetText} is online`);
    const started = who.initStartTime === undefined ? undefined : who.initStartTime / CLOCK_TICKS_PER_SECOND;
    const sample = {
      now,
      age: started === undefined || started <= 0 ? 0 : Math.max(0, now - started),
      userUsec: usage.stat.userUsec,
      systemUsec: usage.stat.systemUsec,
      niceUsec: usage.stat.niceUsec,
    };
    const advance = (record: Float64Array, created: boolean): string => advanceCgroup2View(record, stateCpus, created, hostStat, labels, sample);
    const text = state.update(`v2:${usage.cgroup.directory}`, who.pidNamespace, advance);
    sweep(now);
    return ok(text);
  }

  return {
    'proc/cpuinfo': withCpus('cpuinfo', (cpus, hostText) => {
      const text = hostText();
      return text === undefined ? undefined : renderCpuinfo(text, cpus);
    }),
    'sys/devices/system/cpu/online': withCpus('online', (cpus) => renderOnline(cpus)),
    'proc/stat': (caller, hostText) => {
      const who = host.callers.resolve(caller.pid);
      if (!who.ok) return fallback('stat', caller, who.error);
      // lxcfs: the host's own init reads the host's file.
      if (who.value.cgroupPid === 1) return fallback('stat', caller, 'the reader is the host\'s init');
      const hostStatText = hostText();
      if (hostStatText === undefined) return fallback('stat', caller, 'host /proc/stat is unreadable');
      const cpus = cpusOf(who.value, hostStatText);
      if (typeof cpus === 'string') return fallback('stat', caller, cpus);
      const hostStat = parseHostStat(hostStatText);
      const usage = readCpuUsage(host, who.value.cgroupPid);
      if (!usage.ok) {
        // cgroup2: the cgroup is gone. v1: no cpuacct for it, and lxcfs shows the host's lines.
        if (cpuAccountingHierarchy(host)?.version === 2) return fallback('stat', caller, usage.error);
        return Buffer.from(renderStatFromHostLines(hostStat, cpus), 'latin1');
      }
      if (usage.value.version === 1) return Buffer.from(statFromCpuacct(usage.value, who.value, cpus, hostStat), 'latin1');
      const text = statFromCpuStat(usage.value, who.value, cpus, hostStat);
      return text.ok ? Buffer.from(text.value, 'latin1') : fallback('stat', caller, text.error);
    },
    'proc/uptime': (caller, hostText) => {
      const who = host.callers.resolve(caller.pid);
      if (!who.ok) return fallback('uptime', caller, who.error);
      const text = hostText();
      const now = text === undefined ? undefined : parseUptimeSeconds(text);
      if (now === undefined) return fallback('uptime', caller, 'host /proc/uptime is unreadable');
      const initStart = who.value.initStartTime === undefined ? undefined : who.value.initStartTime / CLOCK_TICKS_PER_SECOND;
      if (initStart === undefined) return fallback('uptime', caller, `the init (${who.value.initPid}) of the reader's pid namespace has exited`);
      // lxcfs: no accounting, or a removed cgroup, count as no CPU time.
      const cgroup = cpuAccountingCgroupOf(host, who.value.inDaemonNamespace ? who.value.initPid : who.value.cgroupPid);
      const busyNs = cgroup.ok ? readCpuTimeNs(cgroup.value) : cgroup;
      return Buffer.from(renderUptime({ now, initStart, busy: busyNs.ok ? busyNs.value / 1e9 : 0 }));
    },
  };
}
