// The CPU files: /proc/cpuinfo, /proc/stat, /proc/uptime and /sys/devices/system/cpu/online, shaped by the
// container's cpuset (and, with --enable-cfs, its CPU quota) and its own CPU time.

import type { Caller } from '../host/caller.js';
import type { CpuUsage } from '../host/cgroup-reader.js';
import { CLOCK_TICKS_PER_SECOND, parseUptimeSeconds } from '../host/cpu.js';
import type { Host } from '../host/host.js';
import { fail, ok, type Result } from '../host/result.js';
import { renderCpuinfo } from '../views/cpuinfo.js';
import { countHostCpus, parseCpuList, visibleCpus, type VisibleCpus } from '../views/cpuset.js';
import { renderOnline } from '../views/online.js';
import {
  advanceCgroup2View,
  advanceCpuView,
  parseHostStat,
  renderStatFromCpuacct,
  renderStatFromHostLines,
  ticksFromNs,
  type HostStat,
} from '../views/stat.js';
import { renderUptime } from '../views/uptime.js';
import { CpuStateTable } from './cpu-state.js';
import { BoundedMap } from '../util/bounded-map.js';
import type { HostText, ServedFile } from './served-file.js';

// Every read of a CPU file parses its container's cpuset, nearly always one of a few texts: each text's
// CPUs are kept rather than parsed into fresh garbage, which the reader threads pause to collect.
const parsedCpusets = new BoundedMap<string, readonly number[]>(1024);

function cpusetOf(text: string): readonly number[] {
  let cpus = parsedCpusets.get(text);
  if (cpus === undefined) parsedCpusets.set(text, (cpus = parseCpuList(text)));
  return cpus;
}

/** The container's visible CPUs. */
export function cpusOf(host: Host, enableCfs: boolean, container: Caller, hostStat?: string): Result<VisibleCpus> {
  const limits = host.cpuLimits(container.cgroupPid, enableCfs);
  if (!limits.ok) return limits;
  let online = 0;
  if (limits.value.cfsView) {
    const stat = hostStat ?? host.readProcFile('stat');
    if (stat === undefined) return fail('host /proc/stat is unreadable');
    online = countHostCpus(stat);
  }
  return ok(visibleCpus(limits.value, online, cpusetOf));
}

/** A file rendered from the container's visible CPUs; `render` answers undefined when the host file it
 * needs is unreadable. */
function cpusFile(
  name: string,
  shows: string,
  render: (cpus: VisibleCpus, hostText: HostText) => string | undefined,
  recordwise = false,
): ServedFile {
  return {
    shows,
    recordwise,
    bind:
      ({ host, options }) =>
      (container, hostText) => {
        const cpus = cpusOf(host, options.enableCfs, container);
        if (!cpus.ok) return cpus;
        const text = render(cpus.value, hostText);
        return text === undefined ? fail(`the host's ${name} is unreadable`) : ok(text);
      },
  };
}

export const cpuinfo = cpusFile(
  'cpuinfo',
  "the host's entries of the container's visible CPUs (its cpuset; with --enable-cfs, as many as its quota allows), renumbered from 0",
  (cpus, hostText) => {
    const text = hostText();
    return text === undefined ? undefined : renderCpuinfo(text, cpus);
  },
  true,
);

export const online = cpusFile('online', "the container's visible CPUs", (cpus) => renderOnline(cpus));

/** The kernel's `present` and `possible`: what glibc's get_nprocs_conf, lscpu and runtimes that size
 * per-CPU tables read. Equal to `online`, so that every count agrees. */
export const present = cpusFile('present', "the container's visible CPUs, as `online`", (cpus) => renderOnline(cpus));
export const possible = cpusFile('possible', "the container's visible CPUs, as `online`", (cpus) => renderOnline(cpus));

/** Every CPU a container sees is online. */
export const offline = cpusFile('offline', 'an empty list', () => '\n');

export const uptime: ServedFile = {
  shows: "the age of the init of the reader's pid namespace; idle: that age less its cgroup's CPU time",
  bind:
    ({ host }) =>
    (container, hostText) => {
      const text = hostText();
      const now = text === undefined ? undefined : parseUptimeSeconds(text);
      if (now === undefined) return fail('host /proc/uptime is unreadable');
      const initStart =
        container.initStartTime === undefined ? undefined : container.initStartTime / CLOCK_TICKS_PER_SECOND;
      if (initStart === undefined)
        return fail(`the init (${container.initPid}) of the reader's pid namespace has exited`);
      // lxcfs: no accounting, or a removed cgroup, count as no CPU time.
      const busyNs = host.cpuTimeNs(container.inDaemonNamespace ? container.initPid : container.cgroupPid);
      return ok(renderUptime({ now, initStart, busy: busyNs.ok ? busyNs.value / 1e9 : 0 }));
    },
};

export const stat: ServedFile = {
  shows: "the container's CPU time on its visible CPUs (v1: cpuacct, v2: cpu.stat), idle as the rest",
  bind: ({ host, options }) => {
    const state = new CpuStateTable(options.cpuState);

    /** Seconds since boot, from the host's /proc/uptime. */
    function hostNow(): number | undefined {
      const text = host.readProcFile('uptime');
      return text === undefined ? undefined : parseUptimeSeconds(text);
    }

    /** v1 with cpuacct: lxcfs's numbers, and with the CFS view lxcfs's stateful CPU view. */
    function statFromCpuacct(
      usage: CpuUsage & { kind: 'per-cpu' },
      container: Caller,
      cpus: VisibleCpus,
      hostStat: HostStat,
    ): string {
      const ticks = usage.perCpu.map((cpu) => ({ user: ticksFromNs(cpu.userNs), system: ticksFromNs(cpu.systemNs) }));
      if (!cpus.cfsView) return renderStatFromCpuacct(hostStat, cpus, ticks);
      const text = state.update(`v1:${usage.cgroup.directory}`, container.pidNamespace, (record, created) =>
        advanceCpuView(record, state.cpus, created, hostStat, cpus, ticks),
      );
      const now = hostNow();
      if (now !== undefined) state.sweep(now);
      return text;
    }

    /** cgroup2: the model of advanceCgroup2View, over the CPUs shown (physical numbers, or 0.. with the CFS view). */
    function statFromCpuStat(
      usage: CpuUsage & { kind: 'totals' },
      container: Caller,
      cpus: VisibleCpus,
      hostStat: HostStat,
    ): Result<string> {
      const now = hostNow();
      if (now === undefined) return fail('host /proc/uptime is unreadable');
      const online = new Set(hostStat.cpus.map((line) => line.cpu));
      const labels = (
        cpus.cfsView ? Array.from({ length: cpus.count }, (_, i) => i) : cpus.cpuset.filter((cpu) => online.has(cpu))
      ).filter((label) => label < state.cpus);
      if (labels.length === 0) return fail(`no CPU of the cpuset ${cpus.cpusetText} is online`);
      const started =
        container.initStartTime === undefined ? undefined : container.initStartTime / CLOCK_TICKS_PER_SECOND;
      const sample = {
        now,
        age: started === undefined || started <= 0 ? 0 : Math.max(0, now - started),
        userUsec: usage.stat.userUsec,
        systemUsec: usage.stat.systemUsec,
        niceUsec: usage.stat.niceUsec,
      };
      const advance = (record: Float64Array, created: boolean): string =>
        advanceCgroup2View(record, state.cpus, created, hostStat, labels, sample);
      const text = state.update(`v2:${usage.cgroup.directory}`, container.pidNamespace, advance);
      state.sweep(now);
      return ok(text);
    }

    return (container, hostText) => {
      // lxcfs: the host's own init reads the host's file.
      if (container.cgroupPid === 1) return fail("the reader is the host's init");
      const hostStatText = hostText();
      if (hostStatText === undefined) return fail('host /proc/stat is unreadable');
      const cpus = cpusOf(host, options.enableCfs, container, hostStatText);
      if (!cpus.ok) return cpus;
      const hostStat = parseHostStat(hostStatText);
      const usage = host.cpuUsage(container.cgroupPid);
      if (!usage.ok) {
        // cgroup2: the cgroup is gone. v1: no cpuacct for it, and lxcfs shows the host's lines.
        if (host.cpuAccounting?.perCpuTimes === false) return usage;
        return ok(renderStatFromHostLines(hostStat, cpus.value));
      }
      if (usage.value.kind === 'per-cpu') return ok(statFromCpuacct(usage.value, container, cpus.value, hostStat));
      return statFromCpuStat(usage.value, container, cpus.value, hostStat);
    };
  },
};
