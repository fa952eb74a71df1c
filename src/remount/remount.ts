// After a daemon restart, containers' bind mounts of our files still point at the dead connection.
// This finds them in every mount namespace and replaces each one with a clone of the live mount's file.
//
// What it relies on, and why:
// * Dead mounts are identified by the namespace's mount table (mount ID, device) and their connection
//   is probed through a descriptor of exactly that mount, never by a path opened from the host.
// * All changes happen in one helper process per namespace (mount-helper.ts), which reaches each mount
//   by descriptor and checks its mount ID before acting on it: a container cannot redirect a path to
//   another mount (a runtime's mask, say) or to a host file.
// * The new mount is put beneath the dead one before the dead one is detached, so a reader never sees
//   the container's own file or "No such file".
// * Each namespace is all or nothing: if one of its dead mounts cannot be reached as listed, none is
//   changed. Each namespace has its own time budget, so one with thousands of mounts cannot hold up
//   the others; whatever is left is named in the report.

import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MIRRORED_DIR, TREE_PATHS } from '../lxcfs/paths.js';
import { FS_TYPE, resolveMountpoint } from '../daemon/mountpoint.js';
import { HUNG_AFTER_MS, mountsAt, probeFile, type MountInfoEntry } from '../fuse/mount.js';
import type { Result } from '../host/result.js';
import { runMountHelper, type HelperOutcome, type HelperTarget } from './mount-helper.js';
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

export type MountState = 'live' | 'dead' | 'hung' | 'unknown';

export interface MountReport {
  /** Where it is mounted, inside the namespace. */
  target: string;
  /** Which file or directory of the lxcfs tree it shows. */
  root: string;
  /** Its mount ID in the namespace's mount table. */
  mountId: number;
  state: MountState;
  action: 'left-alone' | 'rebound' | 'would-rebind' | 'not-healable' | 'failed';
  /** How a re-bound target was healed: its dead mount replaced, or, where the kernel does not let it be
   * detached, covered by the new one. */
  method?: 'replaced' | 'stacked';
  error?: string;
}

export interface NamespaceReport {
  namespace: string;
  pid: number;
  outcome: 'unchanged' | 'healed' | 'would-heal' | 'not-healable' | 'failed';
  reason?: string;
  fix?: string;
  mounts: MountReport[];
}

export interface RemountSummary {
  namespaces: number;
  /** Mounts bound again (in a dry run: that would be). */
  rebound: number;
  /** Mounts left alone: live, or not answering (not ours to judge). */
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

const READY_POLL_MS = 100;
const PARALLEL_NAMESPACES = 4;
/** How long a helper may overrun its budget (it checks it between targets) before it is killed. */
const KILL_GRACE_MS = 2000;

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
  if (process.getuid?.() !== 0)
    return { ...report, error: 'remount must run as root: it changes mounts in other mount namespaces' };
  const live = await waitUntilServing(mountpoint, options.timeoutMs);
  if (!live.ok) return { ...report, error: live.error };
  const found = findLxcfsNamespaces(options.pids);
  if (!found.ok) return { ...report, device: live.value.device, error: found.error };
  const context: HealContext = {
    live: live.value,
    mountpoint,
    options,
    probes: new ConnectionProbes(live.value.device),
  };
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
      const probe = await probeFile(
        path.join(mountpoint, 'proc/uptime'),
        Math.max(100, Math.min(HUNG_AFTER_MS, deadline - Date.now())),
      );
      // The daemon may have replaced the mount while we probed: only trust an answer from the same one.
      if (probe.state === 'live' && mountsAt(mountpoint).at(-1)?.device === top.device) return { ok: true, value: top };
      found =
        probe.state === 'dead' ? 'a dead lxcfs mount (its daemon is gone)' : 'an lxcfs mount that does not answer';
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

/** Probes each superblock once: all mounts of one device share its FUSE connection, so one answer says
 * whether all of them are dead (typically one probe after a crash, however many containers). A probe
 * that a namespace's own mount table cannot back up (the mount was moved or hidden meanwhile) says
 * nothing about the device and is not kept. */
export class ConnectionProbes {
  private readonly states = new Map<string, Promise<Probe>>();

  constructor(
    private readonly liveDevice: string,
    private readonly timeoutMs = HUNG_AFTER_MS,
  ) {}

  async state(entry: MountInfoEntry, namespaceFd: number, mountpoint: string): Promise<Probe> {
    // Our own superblock needs no probe: it answered a moment ago.
    if (entry.device === this.liveDevice) return { state: 'live' };
    const known = this.states.get(entry.device);
    if (known) return known;
    const probe = runMountHelper(namespaceFd, {
      mode: 'probe',
      mountpoint,
      device: this.liveDevice,
      targets: [helperTarget(entry)],
      budgetMs: this.timeoutMs,
      killAfterMs: this.timeoutMs,
    }).then((outcome): Probe => {
      const result = outcome.results.get(entry.mountId);
      if (result?.kind === 'state') return { state: result.state };
      if (outcome.killed) return { state: 'hung' };
      return {
        state: 'unknown',
        why: result?.kind === 'refused' ? result.why : (outcome.fatal ?? 'the probe gave no answer'),
      };
    });
    this.states.set(entry.device, probe);
    const result = await probe;
    if (result.state === 'unknown') this.states.delete(entry.device);
    return result;
  }
}

interface Probe {
  state: MountState;
  /** Why the state is unknown. */
  why?: string;
}

function helperTarget(entry: MountInfoEntry): HelperTarget {
  return { mountId: entry.mountId, root: entry.root, mountPoint: entry.mountPoint };
}

/** The namespace's mount namespace file, held open so that every helper acts on this namespace even if
 * its pid is reused meanwhile. */
export function openNamespace(ns: MountNamespace): number | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(`/proc/${ns.pid}/ns/mnt`, 'r');
    // The file came from the process we scanned only if it is still in the scanned namespace.
    if (fs.fstatSync(fd).ino === ns.inode && fs.readlinkSync(`/proc/${ns.pid}/ns/mnt`) === ns.id) return fd;
  } catch {
    // The process exited.
  }
  if (fd !== undefined) fs.closeSync(fd);
  return undefined;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

async function healNamespace(ns: MountNamespace, context: HealContext): Promise<NamespaceReport> {
  const { options } = context;
  const report: NamespaceReport = { namespace: ns.id, pid: ns.pid, outcome: 'unchanged', mounts: [] };
  const namespaceFd = openNamespace(ns);
  if (namespaceFd === undefined) {
    return {
      ...report,
      outcome: 'failed',
      reason: `process ${ns.pid} left ${ns.id} before it could be inspected`,
      fix: 'run remount again',
    };
  }
  try {
    const candidates = ns.lxcfsMounts.filter((entry) => isInTree(entry.root));
    const probes = await Promise.all(
      candidates.map((entry) => context.probes.state(entry, namespaceFd, context.mountpoint)),
    );
    report.mounts = candidates.map((entry, i) => ({
      target: entry.mountPoint,
      root: entry.root,
      mountId: entry.mountId,
      state: probes[i]!.state,
      action: 'left-alone',
      ...(probes[i]!.why ? { error: probes[i]!.why } : {}),
    }));
    const dead = report.mounts.filter((mount) => mount.state === 'dead');
    const unreachable = report.mounts.filter((mount) => mount.state === 'unknown');
    if (unreachable.length > 0) {
      return {
        ...report,
        ...leaveUntouched(
          [...dead, ...unreachable],
          unreachableReason(unreachable.length, report.mounts.length),
          UNREACHABLE_FIX,
        ),
      };
    }
    if (dead.length === 0) return report;

    // The budget covers the work in this namespace, not the probes, which serve every namespace.
    const deadline = Date.now() + options.timeoutMs;
    const outcome = await runMountHelper(namespaceFd, {
      mode: options.dryRun ? 'check' : 'heal',
      mountpoint: context.mountpoint,
      device: context.live.device,
      targets: dead.map((mount) => ({ mountId: mount.mountId, root: mount.root, mountPoint: mount.target })),
      budgetMs: Math.max(0, deadline - Date.now()),
      killAfterMs: Math.max(0, deadline - Date.now()) + KILL_GRACE_MS,
    });
    return { ...report, ...judge(dead, outcome, options) };
  } finally {
    fs.closeSync(namespaceFd);
  }
}

const UNREACHABLE_FIX = "check the container's mounts, then run remount again, or restart the container";

function unreachableReason(count: number, of: number): string {
  return `${count} of its ${of} lxcfs mounts can no longer be reached as its mount table listed them (moved, hidden by another mount, or behind a symlink); nothing was changed`;
}

/** Marks every mount as left as it was; the ones without a reason of their own share the namespace's. */
function leaveUntouched(
  mounts: MountReport[],
  reason: string,
  fix: string,
): Pick<NamespaceReport, 'outcome' | 'reason' | 'fix'> {
  for (const mount of mounts) {
    mount.action = 'not-healable';
    mount.error ??= 'left as it was, with the rest of its namespace';
  }
  return { outcome: 'not-healable', reason, fix };
}

/** Sets each dead mount's action from what the helper said, and returns the namespace's outcome. */
function judge(
  dead: MountReport[],
  outcome: HelperOutcome,
  options: RemountOptions,
): Pick<NamespaceReport, 'outcome' | 'reason' | 'fix'> {
  const budget = `its time budget (--timeout ${seconds(options.timeoutMs)}) ran out`;
  if (outcome.fatal)
    return leaveUntouched(
      dead,
      `${outcome.fatal}; nothing was changed`,
      'restart the container to give it fresh mounts',
    );
  for (const mount of dead) {
    const result = outcome.results.get(mount.mountId);
    if (result?.kind === 'refused') mount.error = result.why;
  }
  const refused = dead.filter((mount) => mount.error !== undefined).length;
  if (refused > 0) return leaveUntouched(dead, unreachableReason(refused, dead.length), UNREACHABLE_FIX);
  if (outcome.budgetRanOut === 'checking' || (outcome.killed && !outcome.checked)) {
    return leaveUntouched(
      dead,
      `${budget} before all its dead mounts were checked; nothing was changed`,
      'run remount again with a larger --timeout, or restart the container',
    );
  }
  if (options.dryRun) {
    for (const mount of dead) mount.action = 'would-rebind';
    return { outcome: 'would-heal' };
  }
  let stopped: string | undefined;
  for (const mount of dead) {
    const result = outcome.results.get(mount.mountId);
    if (result?.kind === 'healed') {
      mount.action = 'rebound';
      mount.method = result.method;
    } else if (result?.kind === 'failed') {
      mount.action = 'failed';
      mount.error = `${result.why}; it is left as it was (dead)`;
      stopped = 'not attempted after the failure above; left as it was (dead)';
    } else {
      mount.action = 'failed';
      mount.error =
        stopped ??
        (outcome.budgetRanOut || outcome.killed
          ? `not attempted: ${budget}; left as it was (dead)`
          : 'not attempted; left as it was (dead)');
    }
  }
  const failed = dead.filter((mount) => mount.action === 'failed').length;
  if (failed === 0) return { outcome: 'healed' };
  return {
    outcome: 'failed',
    reason: `${failed} of its ${dead.length} dead mounts were not healed`,
    fix:
      outcome.budgetRanOut || outcome.killed
        ? 'run remount again (it continues where it stopped), with a larger --timeout'
        : 'run remount again, or restart the container',
  };
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
