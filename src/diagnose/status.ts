// `lxcfs-ts status`: every mount namespace that binds our files (the remount helper's scan, read-only),
// which container it is, the state of each bound file, and what the container would read now. Answers
// "why does this container see the host's memory?" without entering any container.

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { DaemonConfig } from '../daemon/config.js';
import { FS_TYPE } from '../daemon/mountpoint.js';
import { createRenderer } from '../daemon/show.js';
import { mountsAt, probeFile, readMountInfo, type MountInfoEntry } from '../fuse/mount.js';
import { findLxcfsNamespaces } from '../remount/namespaces.js';
import { canonicalMountpoint, ConnectionProbes, isInTree, openNamespace } from '../remount/remount.js';
import { containerIdFromProcCgroup, type ContainerId } from './container-id.js';

/** alive: answers; dead: its daemon is gone (needs `lxcfs-ts remount`); hung: does not answer;
 * shadowed: another mount covers it, so the container does not read it at all. */
export type BindState = 'alive' | 'dead' | 'hung' | 'shadowed' | 'unknown';

export interface BoundFile {
  /** Where it is mounted inside the container. */
  target: string;
  /** Which file or directory of our tree it shows ("/proc/meminfo", "/" for the whole tree). */
  source: string;
  state: BindState;
  /** For shadowed: the filesystem type on top. */
  shadowedBy?: string;
  /** For unknown: why the probe could not tell (the mount moved or is out of reach). */
  why?: string;
  /** Its FUSE connection, "major:minor": another daemon's, or an old one, when not the host mount's. */
  device: string;
}

/** What the container reads from our files now, computed by the daemon's code for its init. */
export interface ContainerView {
  memTotalKb: number;
  swapTotalKb: number;
  cpus: number;
}

export interface ContainerStatus {
  namespace: string;
  /** The init of the container's pid namespace (or another process in the mount namespace). */
  pid: number;
  container?: ContainerId;
  /** The process's cgroup (the v2 path, or the memory controller's on v1). */
  cgroup?: string;
  files: BoundFile[];
  /** Set when the files it reads come from a live mount. */
  sees?: ContainerView;
  /** What to do, when something is wrong. */
  advice?: string;
}

export interface StatusReport {
  mountpoint: string;
  /** Whether the host's mount answers. */
  live: boolean;
  /** The host's top lxcfs mount, "major:minor". */
  device?: string;
  containers: ContainerStatus[];
  error?: string;
}

function readCgroupText(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cgroup a person recognises: the memory controller's on v1 (on hybrid hosts the cgroup2 line is
 * systemd's bookkeeping), else the cgroup2 line. */
function mainCgroup(text: string): string | undefined {
  const lines = text
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(':'));
  const pick =
    lines.find((fields) => fields[1]!.split(',').includes('memory')) ??
    lines.find((fields) => fields[0] === '0' && fields[1] === '');
  return pick?.slice(2).join(':');
}

function numberField(text: string, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

/** CPUs in a list such as "0-3,6". */
export function countCpus(list: string): number {
  return list
    .trim()
    .split(',')
    .filter(Boolean)
    .reduce((count, range) => {
      const [from, to] = range.split('-').map(Number);
      return count + (to === undefined ? 1 : to - from! + 1);
    }, 0);
}

function view(render: (file: string, pid: number) => Uint8Array | number, pid: number): ContainerView | undefined {
  const meminfo = render('proc/meminfo', pid);
  const online = render('sys/devices/system/cpu/online', pid);
  if (typeof meminfo === 'number' || typeof online === 'number') return undefined;
  const text = Buffer.from(meminfo).toString('latin1');
  return {
    memTotalKb: numberField(text, 'MemTotal'),
    swapTotalKb: numberField(text, 'SwapTotal'),
    cpus: countCpus(Buffer.from(online).toString('latin1')),
  };
}

function advise(files: BoundFile[]): string | undefined {
  const advice: string[] = [];
  if (files.some((file) => file.state === 'dead'))
    advice.push(
      'dead binds: the container reads "Transport endpoint is not connected"; run lxcfs-ts remount (after the daemon is up)',
    );
  if (files.some((file) => file.state === 'hung'))
    advice.push('hung binds: readers block; the mount they came from does not answer');
  if (files.some((file) => file.state === 'shadowed'))
    advice.push(
      "shadowed binds: another mount covers them, so the container reads that one (often the host's own file)",
    );
  return advice.length ? advice.join('; ') : undefined;
}

/** `probeTimeoutMs`: how long a mount may take to answer before it counts as hung. */
export async function runStatus(config: DaemonConfig, log: Logger, probeTimeoutMs: number): Promise<StatusReport> {
  const mountpoint = canonicalMountpoint(config.mountpoint);
  if (process.getuid?.() !== 0)
    return {
      mountpoint,
      live: false,
      containers: [],
      error: "status must run as root: it reads other processes' mount tables",
    };
  const top = mountsAt(mountpoint)
    .filter((entry) => entry.fsType === FS_TYPE)
    .at(-1);
  const live =
    top !== undefined && (await probeFile(path.join(mountpoint, 'proc/uptime'), probeTimeoutMs)).state === 'live';
  const found = findLxcfsNamespaces();
  if (!found.ok) return { mountpoint, live, device: top?.device, containers: [], error: found.error };
  // A mount of the live superblock needs no probe; any other is probed once per superblock.
  const probes = new ConnectionProbes(live ? top.device : '', probeTimeoutMs);
  const render = createRenderer(config, log);
  const containers: ContainerStatus[] = [];
  for (const ns of found.value) {
    let entries: MountInfoEntry[];
    try {
      entries = readMountInfo(`/proc/${ns.pid}/mountinfo`);
    } catch {
      continue; // it exited since the scan
    }
    // An lxcfs mount covered by another lxcfs mount is the old one below a restarted daemon's: the
    // container reads the one on top, and the one below is nobody's concern.
    const coverOf = (entry: MountInfoEntry): MountInfoEntry | undefined =>
      entries.find((other) => other.mountPoint === entry.mountPoint && other.parentId === entry.mountId);
    const ours = entries.filter(
      (entry) => entry.fsType === FS_TYPE && isInTree(entry.root) && coverOf(entry)?.fsType !== FS_TYPE,
    );
    // Probed from inside the namespace through its verified mount IDs, as remount does: never by a path
    // on the host that the container chose.
    const namespaceFd = openNamespace(ns);
    if (namespaceFd === undefined) continue; // it exited since the scan
    let files: BoundFile[];
    try {
      files = await Promise.all(
        ours.map(async (entry): Promise<BoundFile> => {
          const base = { target: entry.mountPoint, source: entry.root, device: entry.device };
          const cover = coverOf(entry);
          if (cover) return { ...base, state: 'shadowed', shadowedBy: cover.fsType };
          const { state, why } = await probes.state(entry, namespaceFd, mountpoint);
          if (state === 'unknown') return { ...base, state, why: why ?? 'the probe gave no answer' };
          return { ...base, state: state === 'live' ? 'alive' : state };
        }),
      );
    } finally {
      fs.closeSync(namespaceFd);
    }
    const cgroupText = readCgroupText(ns.pid) ?? '';
    const status: ContainerStatus = { namespace: ns.id, pid: ns.pid, files };
    const container = containerIdFromProcCgroup(cgroupText);
    if (container) status.container = container;
    const cgroup = mainCgroup(cgroupText);
    if (cgroup) status.cgroup = cgroup;
    if (files.some((file) => file.state === 'alive')) status.sees = view(render, ns.pid);
    const advice = advise(files);
    if (advice) status.advice = advice;
    containers.push(status);
  }
  return { mountpoint, live, device: top?.device, containers };
}

function mib(kb: number): string {
  return `${Math.round(kb / 1024)} MiB`;
}

/** A table for people: one line per container, then one per bound file. */
export function formatStatus(report: StatusReport): string {
  const lines = [
    `mount ${report.mountpoint}: ${report.live ? `live (${report.device})` : report.device ? `not answering (${report.device})` : 'nothing mounted'}`,
  ];
  for (const c of report.containers) {
    const who = c.container
      ? `${c.container.runtime} ${c.container.id.slice(0, 12)}${c.container.pod ? ` (pod ${c.container.pod})` : ''}`
      : (c.cgroup ?? 'unknown cgroup');
    const sees = c.sees
      ? `sees MemTotal ${mib(c.sees.memTotalKb)}, ${c.sees.cpus} CPU${c.sees.cpus === 1 ? '' : 's'}, SwapTotal ${mib(c.sees.swapTotalKb)}`
      : 'reads none of our files from a live mount';
    lines.push(`pid ${c.pid}  ${who}  ${c.namespace}  ${sees}`);
    for (const file of c.files) {
      const source = file.source !== file.target ? ` (from ${file.source})` : '';
      const other =
        file.state === 'alive' && file.device !== report.device ? `, from another lxcfs mount (${file.device})` : '';
      lines.push(
        `    ${file.state.padEnd(8)} ${file.target}${source}${other}${file.shadowedBy ? `, covered by a mount of type ${file.shadowedBy}` : ''}${file.why ? `: ${file.why}` : ''}`,
      );
    }
    if (c.advice) lines.push(`    → ${c.advice}`);
  }
  const counts = (['alive', 'dead', 'hung', 'shadowed', 'unknown'] as const).map(
    (state) => `${report.containers.flatMap((c) => c.files).filter((f) => f.state === state).length} ${state}`,
  );
  lines.push(
    `status: ${report.containers.length} container${report.containers.length === 1 ? '' : 's'} bind our files; ${counts.join(', ')}`,
  );
  return lines.join('\n') + '\n';
}
