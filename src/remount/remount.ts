// After a daemon restart, containers' bind mounts of our files still point at the dead connection.
// This finds them in every mount namespace and binds each one again from the live mount, as that
// mount is visible inside the namespace (its propagated lxcfs directory).
//
// Safety rules:
// * Nothing runs from a container's filesystem (unlike `nsenter -m mount ...`, which would run the
//   container's mount as host root): the host's util-linux switches mount namespace itself (`mount -N`,
//   `umount -N`), and `-i` keeps it from looking for [u]mount.<type> helpers inside.
// * FUSE paths are only ever touched by child processes with a timeout (a dead or hung mount can block).
// * A namespace is inspected completely before anything in it changes; one that cannot be healed is
//   left exactly as it was.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MIRRORED_DIR, TREE_PATHS } from '../lxcfs/paths.js';
import { FS_TYPE, resolveMountpoint } from '../daemon/mountpoint.js';
import { mountsAt, probeFile, readMountInfo, type MountInfoEntry } from '../fuse/mount.js';
import type { Result } from '../host/result.js';
import { findLxcfsNamespaces, type MountNamespace } from './namespaces.js';

export interface RemountOptions {
  /** Where the daemon is mounted on the host. */
  mountpoint: string;
  dryRun: boolean;
  /** How long to wait for the mount to answer, and how long each namespace may take. */
  timeoutMs: number;
  /** Only the namespaces of these processes (default: every process on the host). */
  pids?: number[];
}

export type MountState = 'live' | 'dead' | 'hung';

export interface MountReport {
  /** Where it is mounted, inside the namespace. */
  target: string;
  /** Which file or directory of the lxcfs tree it shows. */
  root: string;
  state: MountState;
  action: 'left-alone' | 'rebound' | 'would-rebind' | 'not-healable' | 'failed';
  /** The bind source inside the namespace. */
  source?: string;
  error?: string;
}

export interface NamespaceReport {
  namespace: string;
  pid: number;
  outcome: 'unchanged' | 'healed' | 'would-heal' | 'not-healable' | 'failed';
  /** Where the live mount is visible inside the namespace: the bind source directory. */
  lxcfsDir?: string;
  reason?: string;
  fix?: string;
  /** The host commands that were run (in a dry run: would be run), in order. */
  commands?: string[];
  mounts: MountReport[];
}

export interface RemountSummary {
  namespaces: number;
  /** Mounts bound again (in a dry run: that would be). */
  rebound: number;
  /** Mounts left alone: live, or hung (not ours to judge). */
  skipped: number;
  /** Mounts that could not be healed, plus namespaces that could not be inspected. */
  failed: number;
}

export interface RemountReport {
  mountpoint: string;
  dryRun: boolean;
  /** Set when nothing could be attempted (the mount never answered, a bad --pid, not root). */
  error?: string;
  /** The live mount's "major:minor" on the host. */
  device?: string;
  namespaces: NamespaceReport[];
  summary: RemountSummary;
}

const PROBE_TIMEOUT_MS = 1500;
const READY_POLL_MS = 100;
const PARALLEL_NAMESPACES = 4;

const NOT_HEALABLE_FIX =
  'restart the container to give it fresh mounts; to make containers healable, propagate the directory that contains the lxcfs mountpoint into them (see docs/deploy.md)';

/** Every file and directory of the lxcfs tree as a mount root: "/", "/proc", "/proc/meminfo", ... */
const MOUNT_ROOTS = new Set(TREE_PATHS.map((treePath) => '/' + treePath));

export function isInTree(root: string): boolean {
  // Below the mirrored directory the tree shows the host's entries, so any path there may be a mount root.
  return MOUNT_ROOTS.has(root) || root.startsWith(`/${MIRRORED_DIR}/`);
}

export function succeeded(report: RemountReport): boolean {
  return report.error === undefined && report.summary.failed === 0;
}

export async function remount(options: RemountOptions): Promise<RemountReport> {
  const mountpoint = canonicalMountpoint(options.mountpoint);
  const report: RemountReport = {
    mountpoint,
    dryRun: options.dryRun,
    namespaces: [],
    summary: { namespaces: 0, rebound: 0, skipped: 0, failed: 0 },
  };
  if (process.getuid?.() !== 0) return { ...report, error: 'remount must run as root: it changes mounts in other mount namespaces' };
  const live = await waitUntilServing(mountpoint, options.timeoutMs);
  if (!live.ok) return { ...report, error: live.error };
  const found = findLxcfsNamespaces(options.pids);
  if (!found.ok) return { ...report, device: live.value.device, error: found.error };
  const context: HealContext = { live: live.value, mountpoint, options, probes: new ConnectionProbes(live.value.device, Math.min(PROBE_TIMEOUT_MS, options.timeoutMs)) };
  const namespaces = await mapLimited(found.value, PARALLEL_NAMESPACES, (ns) => healNamespace(ns, context));
  return { ...report, device: live.value.device, namespaces, summary: summarize(namespaces) };
}

/** The mountpoint as mountinfo spells it (resolved like the daemon resolves it); as given if that fails,
 * so that the report names what the user typed. */
export function canonicalMountpoint(mountpoint: string): string {
  try {
    return resolveMountpoint(mountpoint);
  } catch {
    return path.resolve(mountpoint);
  }
}

/** Waits until the top mount at `mountpoint` is lxcfs and answers a read (probed from a child). */
async function waitUntilServing(mountpoint: string, timeoutMs: number): Promise<Result<MountInfoEntry>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const top = mountsAt(mountpoint).at(-1);
    let found = 'nothing mounted there';
    if (top && top.fsType !== FS_TYPE) {
      found = `a ${top.fsType} filesystem, not ${FS_TYPE}`;
    } else if (top) {
      const probe = await probeFile(path.join(mountpoint, 'proc/uptime'), Math.max(100, Math.min(PROBE_TIMEOUT_MS, deadline - Date.now())));
      // The daemon may have replaced the mount while we probed: only trust an answer from the same one.
      if (probe.state === 'live' && mountsAt(mountpoint).at(-1)?.device === top.device) return { ok: true, value: top };
      found = probe.state === 'dead' ? 'a dead lxcfs mount (its daemon is gone)' : 'an lxcfs mount that does not answer';
    }
    if (Date.now() >= deadline) {
      return {
        ok: false,
        error: `${mountpoint} did not answer a read within ${timeoutMs / 1000} s (found ${found}); start the daemon first (systemctl start lxcfs-ts) or pass --mountpoint`,
      };
    }
    await sleep(READY_POLL_MS);
  }
}

interface HealContext {
  /** The daemon's mount on the host. */
  live: MountInfoEntry;
  mountpoint: string;
  options: RemountOptions;
  probes: ConnectionProbes;
}

/** A mount is hidden when another one is stacked on the same mountpoint on top of it. */
export function isCovered(entry: MountInfoEntry, entries: MountInfoEntry[]): boolean {
  return entries.some((other) => other.parentId === entry.mountId && other.mountPoint === entry.mountPoint);
}

/** The visible mounts of our tree in a mount table: the candidates for healing and for a bind source. */
function visibleLxcfsMounts(entries: MountInfoEntry[]): MountInfoEntry[] {
  return entries.filter((entry) => entry.fsType === FS_TYPE && isInTree(entry.root) && !isCovered(entry, entries));
}

/** Probes each superblock once: all mounts of one device share its FUSE connection, so one answer says
 * whether all of them are dead (typically one probe after a crash, however many containers). */
export class ConnectionProbes {
  private readonly states = new Map<string, Promise<MountState>>();

  constructor(
    private readonly liveDevice: string,
    private readonly timeoutMs: number,
  ) {}

  state(entry: MountInfoEntry, pid: number): Promise<MountState> {
    // Our own superblock needs no probe: it answered a moment ago.
    if (entry.device === this.liveDevice) return Promise.resolve('live');
    let state = this.states.get(entry.device);
    if (!state) {
      // /proc/PID/root resolves the rest of the path in that process's mount namespace.
      state = probeFile(path.join('/proc', String(pid), 'root', entry.mountPoint), this.timeoutMs).then((probe) => probe.state);
      this.states.set(entry.device, state);
    }
    return state;
  }
}

/** The namespace's mount and pid namespace files, held open so that every command acts on this
 * namespace even if its pid is reused meanwhile. */
interface NamespaceHandles {
  mnt: number;
  pid: number;
}

function openNamespace(ns: MountNamespace): NamespaceHandles | undefined {
  const opened: number[] = [];
  try {
    for (const kind of ['mnt', 'pid']) opened.push(fs.openSync(`/proc/${ns.pid}/ns/${kind}`, 'r'));
    // Both files came from the process we scanned only if it is still in the scanned namespace.
    if (fs.fstatSync(opened[0]!).ino === ns.inode && fs.readlinkSync(`/proc/${ns.pid}/ns/mnt`) === ns.id) return { mnt: opened[0]!, pid: opened[1]! };
  } catch {
    // The process exited.
  }
  closeNamespace(opened);
  return undefined;
}

function closeNamespace(fds: number[]): void {
  for (const fd of fds) fs.closeSync(fd);
}

function readMountTable(pid: number): MountInfoEntry[] | undefined {
  try {
    return readMountInfo(`/proc/${pid}/mountinfo`);
  } catch {
    return undefined;
  }
}

/** A dead mount to heal: what the report says, and the mount table entry it was found as. */
interface DeadMount {
  report: MountReport;
  entry: MountInfoEntry;
}

async function healNamespace(ns: MountNamespace, context: HealContext): Promise<NamespaceReport> {
  const { live, options } = context;
  const deadline = Date.now() + options.timeoutMs;
  const report: NamespaceReport = { namespace: ns.id, pid: ns.pid, outcome: 'unchanged', mounts: [] };
  const handles = openNamespace(ns);
  const entries = handles && readMountTable(ns.pid);
  if (!handles || !entries) {
    if (handles) closeNamespace([handles.mnt, handles.pid]);
    return { ...report, outcome: 'failed', reason: `process ${ns.pid} left ${ns.id} before it could be inspected`, fix: 'run remount again' };
  }
  try {
    const visible = visibleLxcfsMounts(entries);
    const states = await Promise.all(visible.map((entry) => context.probes.state(entry, ns.pid)));
    report.mounts = visible.map((entry, i) => ({ target: entry.mountPoint, root: entry.root, state: states[i]!, action: 'left-alone' }));
    const dead: DeadMount[] = visible.flatMap((entry, i) => (states[i] === 'dead' ? [{ report: report.mounts[i]!, entry }] : []));
    if (dead.length === 0) return report;

    const source = visible.find((entry) => entry.root === '/' && entry.device === live.device);
    if (!source) {
      for (const mount of dead) mount.report.action = 'not-healable';
      return { ...report, outcome: 'not-healable', reason: whyNoSource(visible, context.mountpoint), fix: NOT_HEALABLE_FIX };
    }
    report.lxcfsDir = source.mountPoint;
    for (const mount of dead) mount.report.source = path.posix.join(source.mountPoint, mount.entry.root);
    const binds = dead.map((mount) => ({ source: mount.report.source!, target: mount.report.target }));
    report.commands = commandsFor({ mnt: `/proc/${ns.pid}/ns/mnt`, pid: `/proc/${ns.pid}/ns/pid` }, binds).map((argv) => argv.map(shellWord).join(' '));
    if (options.dryRun) {
      for (const mount of dead) mount.report.action = 'would-rebind';
      return { ...report, outcome: 'would-heal' };
    }
    await rebind(dead, ns.pid, handles, report.commands, deadline);
    verifyRebound(dead, ns.pid, live.device);
    return { ...report, outcome: dead.some((mount) => mount.report.action === 'failed') ? 'failed' : 'healed' };
  } finally {
    closeNamespace([handles.mnt, handles.pid]);
  }
}

function whyNoSource(visible: MountInfoEntry[], mountpoint: string): string {
  const dirs = visible.filter((entry) => entry.root === '/').map((entry) => entry.mountPoint);
  if (dirs.length === 0) return 'no lxcfs directory is visible in this namespace, so there is nothing to bind from';
  return `the lxcfs directory visible here (${dirs.join(', ')}) is not the live mount at ${mountpoint}: it was bound from the old mount itself, and a new mount does not propagate into such a bind`;
}

/** The host commands that heal a namespace: one umount of every dead target, then one bind each.
 * `namespace` names the namespace files (/proc/PID/ns/... when shown to a person).
 * Only host binaries run. nsenter --pid changes no mount namespace, so umount is still the host's; it
 * enters the container's pid namespace because umount looks its targets up in /proc/self/mountinfo
 * after switching to the container's mount namespace, and /proc there is the container's procfs, where
 * a process outside its pid namespace has no "self". mount --bind reads no mount table.
 * -n: no utab written inside the container; -i: no [u]mount.<type> helper looked up. */
function commandsFor(namespace: { mnt: string; pid: string }, binds: Array<{ source: string; target: string }>): string[][] {
  return [
    ['nsenter', `--pid=${namespace.pid}`, '--', 'umount', '-i', '-n', '-N', namespace.mnt, '--lazy', ...binds.map((bind) => bind.target)],
    ...binds.map((bind) => ['mount', '-i', '-n', '-N', namespace.mnt, '--bind', bind.source, bind.target]),
  ];
}

function timeLeft(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}

async function rebind(dead: DeadMount[], pid: number, handles: NamespaceHandles, shown: string[], deadline: number): Promise<void> {
  // Each command gets the mount namespace as fd 3 and the pid namespace as fd 4.
  const fds = [handles.mnt, handles.pid];
  const [detach, ...binds] = commandsFor(
    { mnt: '/proc/self/fd/3', pid: '/proc/self/fd/4' },
    dead.map((mount) => ({ source: mount.report.source!, target: mount.report.target })),
  );
  const detached = await runHostTool(detach!, fds, timeLeft(deadline));
  // Which targets the umount detached is in the mount table, whatever its exit status says.
  const after = readMountTable(pid) ?? [];
  for (const [i, mount] of dead.entries()) {
    const { mountId, device, mountPoint } = mount.entry;
    if (after.some((entry) => entry.mountId === mountId && entry.device === device && entry.mountPoint === mountPoint)) {
      mount.report.action = 'failed';
      mount.report.error = `umount failed: ${detached.ok ? 'the mount is still there' : detached.error}`;
      continue;
    }
    const bound = await runHostTool(binds[i]!, fds, timeLeft(deadline));
    if (bound.ok) {
      mount.report.action = 'rebound';
    } else {
      // After the detach the container sees its own file; say how to finish by hand.
      mount.report.action = 'failed';
      mount.report.error = `mount failed: ${bound.error}; ${mount.report.target} is no longer bound, to finish run: ${shown[i + 1]}`;
    }
  }
}

/** Checks in the namespace's fresh mount table that each re-bound target now shows our live mount. */
function verifyRebound(dead: DeadMount[], pid: number, device: string): void {
  const visible = visibleLxcfsMounts(readMountTable(pid) ?? []);
  for (const { report } of dead) {
    if (report.action !== 'rebound') continue;
    if (visible.some((entry) => entry.mountPoint === report.target && entry.root === report.root && entry.device === device)) continue;
    report.action = 'failed';
    report.error = `after the bind, ${report.target} does not show the live mount; check the container's mount table (/proc/${pid}/mountinfo)`;
  }
}

/** Runs a host tool with `fds` as its fds 3, 4, ... A tool stuck past the timeout is killed and not
 * waited for: a request stuck in a dead FUSE daemon can keep it in D state. */
type ToolResult = { ok: true } | { ok: false; error: string };

function runHostTool([command, ...args]: string[], fds: number[], timeoutMs: number): Promise<ToolResult> {
  return new Promise((resolve) => {
    if (timeoutMs <= 0) return resolve({ ok: false, error: "not run: the namespace's time was up" });
    const child = spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe', ...fds], env: { ...process.env, LC_ALL: 'C' } });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      child.unref();
      child.stderr!.destroy();
      resolve({ ok: false, error: `killed after ${Math.round(timeoutMs)} ms: the namespace's time was up` });
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, error: err.message });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      if (status === 0) return resolve({ ok: true });
      resolve({ ok: false, error: stderr.trim().split('\n')[0] || `exit status ${status}` });
    });
  });
}

function summarize(namespaces: NamespaceReport[]): RemountSummary {
  const summary: RemountSummary = { namespaces: namespaces.length, rebound: 0, skipped: 0, failed: 0 };
  for (const ns of namespaces) {
    if (ns.outcome === 'failed' && ns.mounts.length === 0) summary.failed++;
    for (const mount of ns.mounts) {
      if (mount.action === 'rebound' || mount.action === 'would-rebind') summary.rebound++;
      else if (mount.action === 'left-alone') summary.skipped++;
      else summary.failed++;
    }
  }
  return summary;
}

async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Quotes a word for a shell when it needs it, so that printed commands can be pasted. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
