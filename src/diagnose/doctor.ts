// `lxcfs-ts doctor`: checks the host for what lxcfs users most often trip over, one line per check with
// the fix. Read-only: it changes nothing, and touches a FUSE path only from a child process with a
// timeout (a dead or hung mount must not hang the doctor).

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FS_TYPE } from '../daemon/mountpoint.js';
import { ACCOUNTING_CGROUP } from '../lxcfs/blkio-accounting.js';
import type { DaemonConfig } from '../daemon/config.js';
import { controlSocketPath, requestControl, type DaemonStatus } from '../daemon/control.js';
import { isLxcfsTsProcess } from '../daemon/pidfile.js';
import { SERVED_FILES } from '../lxcfs/paths.js';
import { mountsAt, probeFile, readMountInfo, FUSECTL_DIR, type MountInfoEntry } from '../fuse/mount.js';
import { detectCgroupLayout, findHierarchy, type CgroupLayout } from '../host/cgroup-layout.js';
import { accountedDevices, listDisks } from '../host/io.js';
import { readTextFile } from '../host/files.js';
import { canonicalMountpoint } from '../remount/remount.js';

export type Level = 'ok' | 'warn' | 'fail';

export interface Check {
  /** Short stable name, e.g. "mountpoint". */
  name: string;
  level: Level;
  message: string;
  /** What to do about it (also given for some OK results, when there is something to know). */
  fix?: string;
}

export interface DoctorReport {
  mountpoint: string;
  pidfile: string;
  checks: Check[];
  /** The worst level of all checks. */
  level: Level;
}

const CONTROL_TIMEOUT_MS = 2000;
const RANK: Record<Level, number> = { ok: 0, warn: 1, fail: 2 };

/** Exit status for a pre-flight: 0 OK, 1 WARN, 2 FAIL. */
export function exitStatus(report: DoctorReport): number {
  return RANK[report.level];
}

/** `probeTimeoutMs`: how long the mount may take to answer before it counts as hung. */
export async function runDoctor(config: DaemonConfig, probeTimeoutMs: number): Promise<DoctorReport> {
  const mountpoint = canonicalMountpoint(config.mountpoint);
  const layout = detectCgroupLayout({ procRoot: config.procRoot, cgroupRoot: config.cgroupRoot });
  const daemon = await askDaemon(config.pidfile);
  const checks: Check[] = [
    checkFuseDevice(),
    checkFuseProtocol(daemon.status),
    ...checkRequestTimeout(),
    checkCgroupLayout(layout),
    ...checkControllers(layout),
    checkPressure(config.procRoot),
    checkSwap(layout, config),
    checkIoAccounting(layout, config),
    await checkMountpoint(mountpoint, daemon, probeTimeoutMs),
    checkPropagation(mountpoint),
    checkRunc(),
    daemon.check,
  ];
  const level = checks.reduce<Level>((worst, check) => (RANK[check.level] > RANK[worst] ? check.level : worst), 'ok');
  return { mountpoint, pidfile: config.pidfile, checks, level };
}

function checkFuseDevice(): Check {
  const name = 'fuse-device';
  let stat: fs.Stats;
  try {
    stat = fs.statSync('/dev/fuse');
  } catch {
    return {
      name,
      level: 'fail',
      message: '/dev/fuse does not exist',
      fix: 'load the module (modprobe fuse); in a container, pass --device /dev/fuse and CAP_SYS_ADMIN',
    };
  }
  if (!stat.isCharacterDevice())
    return {
      name,
      level: 'fail',
      message: '/dev/fuse is not a character device',
      fix: 'remove it and load the fuse module (modprobe fuse), which creates it',
    };
  try {
    // Opening without mounting is harmless: the connection only exists once mounted.
    fs.closeSync(fs.openSync('/dev/fuse', 'r+'));
  } catch (err) {
    return {
      name,
      level: 'fail',
      message: `/dev/fuse cannot be opened: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      fix: 'run as root; in a container, add the device to its device cgroup (--device /dev/fuse)',
    };
  }
  return { name, level: 'ok', message: '/dev/fuse opens' };
}

/** Linux major.minor from a release string such as "6.1.0-28-amd64". */
export function kernelVersion(release: string): [number, number] {
  const match = /^(\d+)\.(\d+)/.exec(release);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

function atLeast([major, minor]: [number, number], wantMajor: number, wantMinor: number): boolean {
  return major > wantMajor || (major === wantMajor && minor >= wantMinor);
}

function checkFuseProtocol(status: DaemonStatus | undefined): Check {
  const name = 'fuse-protocol';
  const release = os.release();
  const negotiated = status
    ? `; the daemon negotiated FUSE ${status.protocol} with the kernel's ${status.kernelProtocol}`
    : '';
  // The daemon knows for sure (the kernel announces it in INIT); without one, the kernel version tells.
  const resend = status ? status.resend : atLeast(kernelVersion(release), 6, 9);
  if (resend)
    return {
      name,
      level: 'ok',
      message: `Linux ${release}${negotiated}; the kernel can replay requests of a crashed serving process (FUSE_NOTIFY_RESEND)`,
    };
  return {
    name,
    level: 'warn',
    message: `Linux ${release}${negotiated}: no FUSE_NOTIFY_RESEND (Linux < 6.9): if the serving process crashes, readers of requests it had taken hang until the connection is aborted, and containers then need lxcfs-ts remount; upgrades lose nothing`,
    fix: 'a kernel ≥ 6.9 removes this; meanwhile keep the remount helper in the unit (ExecStartPost=)',
  };
}

function checkRequestTimeout(): Check[] {
  const timeout = Number(readTextFile('/proc/sys/fs/fuse/default_request_timeout')?.trim() ?? 0);
  if (!(timeout > 0)) return [];
  return [
    {
      name: 'fuse-timeout',
      level: 'warn',
      message: `fs.fuse.default_request_timeout is ${timeout} s: one request slower than that aborts the whole mount, and every container's view with it`,
      fix: 'sysctl -w fs.fuse.default_request_timeout=0',
    },
  ];
}

function checkCgroupLayout(layout: CgroupLayout): Check {
  const name = 'cgroup-layout';
  if (layout.kind === 'none') {
    return {
      name,
      level: 'fail',
      message: `no cgroup hierarchy under /sys/fs/cgroup${layout.problem ? ` (${layout.problem})` : ''}: every file shows the host's values`,
      fix: 'mount cgroup2 on /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup) or the v1 controllers',
    };
  }
  const described = {
    legacy: 'cgroup v1',
    hybrid: 'cgroup v1 with a controller-less cgroup2 (hybrid)',
    unified: 'cgroup v2 (unified)',
  }[layout.kind];
  return { name, level: 'ok', message: described };
}

/** Which views depend on each controller, per cgroup version. */
const CONTROLLER_USES: Record<1 | 2, Array<[string, string]>> = {
  1: [
    ['memory', 'meminfo, swaps'],
    ['cpuset', 'cpuinfo, stat, online'],
    ['cpu', '--enable-cfs CPU counts, loadavg (-l)'],
    ['cpuacct', 'stat, uptime'],
    ['blkio', 'diskstats'],
  ],
  2: [
    ['memory', 'meminfo, swaps, pressure/memory'],
    ['cpuset', 'cpuinfo, stat, online'],
    ['cpu', 'stat, uptime, --enable-cfs CPU counts, loadavg (-l), pressure/cpu'],
    ['io', 'diskstats, pressure/io'],
  ],
};

function checkControllers(layout: CgroupLayout): Check[] {
  if (layout.kind === 'none') return [];
  const version = layout.kind === 'unified' ? 2 : 1;
  const v2 = layout.hierarchies.find((h) => h.version === 2);
  const delegated =
    version === 2 && v2 ? (readTextFile(path.join(v2.mountPoint, 'cgroup.subtree_control')) ?? '').split(/\s+/) : [];
  // Only a cgroup below the root has cgroup.type: then the top of the mount is a cgroup namespace's (as in
  // a container), and a controller missing there was not handed down by the cgroups above it.
  const nested = version === 2 && v2 !== undefined && fs.existsSync(path.join(v2.mountPoint, 'cgroup.type'));
  return CONTROLLER_USES[version].map(([controller, uses]): Check => {
    const name = `cgroup-${controller}`;
    const hierarchy = findHierarchy(layout, controller);
    if (!hierarchy || (version === 1 && hierarchy.version !== 1)) {
      const fix =
        version === 1
          ? `mount it: mkdir -p /sys/fs/cgroup/${controller} && mount -t cgroup -o ${controller} cgroup /sys/fs/cgroup/${controller}`
          : nested
            ? `this is a cgroup namespace whose parent cgroup does not hand ${controller} down: enable it in the parent's cgroup.subtree_control, and run lxcfs-ts doctor on the host to see the host's cgroups`
            : `the kernel lacks it, or it is disabled on the command line (cgroup_disable=${controller})`;
      return {
        name,
        level: 'warn',
        message: `the ${controller} controller is not available: ${uses} show the host's values`,
        fix,
      };
    }
    if (version === 2 && !delegated.includes(controller)) {
      return {
        name,
        level: 'warn',
        message: `${controller} is not enabled for child cgroups (cgroup.subtree_control): containers get no ${controller} files, so ${uses} show the host's values`,
        fix: `echo +${controller} > ${path.join(hierarchy.mountPoint, 'cgroup.subtree_control')} (container runtimes and systemd usually do this)`,
      };
    }
    return {
      name,
      level: 'ok',
      message: `${controller}${version === 1 ? ` (v1, at ${hierarchy.mountPoint})` : ''}: used for ${uses}`,
    };
  });
}

function checkPressure(procRoot: string): Check {
  if (fs.existsSync(path.join(procRoot, 'pressure/cpu')))
    return {
      name: 'psi',
      level: 'ok',
      message:
        "pressure stall information is on: pressure/* show the container's cgroup pressure where the kernel tracks it",
    };
  return {
    name: 'psi',
    level: 'warn',
    message: 'the kernel has no /proc/pressure (PSI off): pressure/* are empty',
    fix: 'boot with psi=1 (CONFIG_PSI_DEFAULT_DISABLED kernels)',
  };
}

/** SwapTotal of /proc/meminfo, in kB. */
function hostSwapKb(procRoot: string): number {
  return Number(/^SwapTotal:\s+(\d+)/m.exec(readTextFile(path.join(procRoot, 'meminfo')) ?? '')?.[1] ?? 0);
}

/** Whether the kernel accounts swap per cgroup: v1 memory.memsw.* at the hierarchy's top; v2
 * memory.swap.max in a cgroup below the root (the root has none). */
function swapAccounting(layout: CgroupLayout): boolean | undefined {
  const memory = findHierarchy(layout, 'memory');
  if (!memory) return undefined;
  if (memory.version === 1) return fs.existsSync(path.join(memory.mountPoint, 'memory.memsw.limit_in_bytes'));
  let children: fs.Dirent[];
  try {
    children = fs.readdirSync(memory.mountPoint, { withFileTypes: true }).filter((entry) => entry.isDirectory());
  } catch {
    return undefined;
  }
  const withMemory = children.filter((child) => fs.existsSync(path.join(memory.mountPoint, child.name, 'memory.max')));
  if (withMemory.length === 0) return undefined;
  return withMemory.some((child) => fs.existsSync(path.join(memory.mountPoint, child.name, 'memory.swap.max')));
}

function checkSwap(layout: CgroupLayout, config: DaemonConfig): Check {
  const name = 'swap';
  const accounting = swapAccounting(layout);
  const memsw = findHierarchy(layout, 'memory')?.version === 1 ? 'memory.memsw.*' : 'memory.swap.*';
  if (config.disableSwap)
    return { name, level: 'ok', message: 'swap is hidden (--disable-swap): containers see SwapTotal 0' };
  const hostSwap = hostSwapKb(config.procRoot);
  if (hostSwap === 0) {
    return {
      name,
      level: 'ok',
      message: `the host has no swap, so containers see SwapTotal 0, as they should${accounting === false ? `; the kernel does not account swap per cgroup (no ${memsw})` : ''}`,
      fix:
        accounting === false
          ? "only if you add swap (swapon): also boot with swapaccount=1, or containers will see the host's swap instead of theirs"
          : 'nothing to do; once the host has swap (swapon), containers see their share of it',
    };
  }
  if (accounting === false) {
    return {
      name,
      level: 'warn',
      message: `the host has ${Math.round(hostSwap / 1024)} MiB of swap but the kernel does not account it per cgroup (no ${memsw}): containers see swap they cannot use`,
      fix: 'boot with swapaccount=1 (kernel command line), or run with --disable-swap',
    };
  }
  if (accounting === undefined)
    return {
      name,
      level: 'ok',
      message: `${Math.round(hostSwap / 1024)} MiB of swap on the host; whether the kernel accounts it per cgroup (${memsw}) shows only once a cgroup below ${findHierarchy(layout, 'memory')?.mountPoint ?? 'the top'} has the memory controller`,
    };
  return {
    name,
    level: 'ok',
    message: `${Math.round(hostSwap / 1024)} MiB of swap on the host, accounted per cgroup (${memsw})`,
  };
}

function checkIoAccounting(layout: CgroupLayout, config: DaemonConfig): Check {
  const name = 'io-accounting';
  const blkio = findHierarchy(layout, 'blkio');
  if (!blkio || blkio.version !== 1)
    return { name, level: 'ok', message: "cgroup v2 io.stat counts each container's I/O: diskstats shows it" };
  const accounted = accountedDevices(blkio.mountPoint);
  if (accounted === undefined)
    return {
      name,
      level: 'warn',
      message:
        'no blkio.throttle.* files (kernel without blk-throttle): diskstats shows containers I/O only from BFQ counters, where the disk uses BFQ',
      fix: 'a kernel with CONFIG_BLK_DEV_THROTTLING',
    };
  const disks = listDisks().filter((disk) => disk.sectors > 0);
  const missing = disks.filter((disk) => !accounted.has(disk.device)).map((disk) => `${disk.name} (${disk.device})`);
  const ours = fs.existsSync(path.join(blkio.mountPoint, ACCOUNTING_CGROUP))
    ? `; the no-op rules of a daemon with --enable-blkio-accounting are in place (${ACCOUNTING_CGROUP})`
    : '';
  const flag = config.enableBlkioAccounting ? 'on in the configuration' : 'off';
  if (missing.length === 0)
    return { name, level: 'ok', message: `every disk's I/O is counted per cgroup (${disks.length} disks)${ours}` };
  return {
    name,
    level: 'warn',
    message: `Linux ≥ 6.10 counts a disk's I/O per v1 cgroup only once a throttle rule exists on it: containers see no I/O on ${missing.join(', ')} in diskstats (--enable-blkio-accounting is ${flag})${ours}`,
    fix: config.enableBlkioAccounting
      ? 'the flag is on but the rules are missing: is the daemon running? its log says which disks refused a rule'
      : 'start the daemon with --enable-blkio-accounting (or enable_blkio_accounting = true): it sets a no-op read limit on each disk in an empty cgroup of its own',
  };
}

interface DaemonAnswer {
  check: Check;
  status?: DaemonStatus;
}

function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const parts: Array<[number, string]> = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const shown = parts.filter(([n]) => n > 0).slice(0, 2);
  return shown.length === 0 ? '0s' : shown.map(([n, unit]) => `${n}${unit}`).join(' ');
}

async function askDaemon(pidfile: string): Promise<DaemonAnswer> {
  const name = 'daemon';
  const start = 'start it: systemctl start lxcfs-ts (or lxcfs-ts MOUNTPOINT)';
  let text: string;
  try {
    text = fs.readFileSync(pidfile, 'utf8');
  } catch (err) {
    return {
      check: {
        name,
        level: 'fail',
        message: `no pid file ${pidfile} (${(err as NodeJS.ErrnoException).code}): the daemon is not running, or uses another --pidfile`,
        fix: `${start}; or pass --pidfile`,
      },
    };
  }
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !isLxcfsTsProcess(pid)) {
    return {
      check: {
        name,
        level: 'fail',
        message: `pid file ${pidfile} names ${JSON.stringify(text.trim())}, which is not a running lxcfs-ts: a daemon that was killed left it`,
        fix: start,
      },
    };
  }
  try {
    const answer = await requestControl(controlSocketPath(pidfile), 'status', CONTROL_TIMEOUT_MS);
    if (!answer.ok || !('status' in answer)) throw new Error(answer.ok ? 'an unexpected answer' : answer.error);
    const status = answer.status;
    const message = `lxcfs-ts ${status.version}, pid ${status.pid} (pid file ${pidfile}), up ${formatDuration(Date.now() - status.startedAt)}, serving process ${status.serverPid ?? 'none (restarting)'}, mounted on ${status.mountpoint}${status.metrics ? `, metrics on ${status.metrics}` : ''}`;
    return {
      status,
      check: status.serverPid
        ? { name, level: 'ok', message }
        : {
            name,
            level: 'warn',
            message,
            fix: 'its serving process is being restarted; if this persists, see its log (journalctl -u lxcfs-ts)',
          },
    };
  } catch (err) {
    return {
      check: {
        name,
        level: 'warn',
        message: `lxcfs-ts pid ${pid} runs but does not answer on ${controlSocketPath(pidfile)}: ${(err as Error).message}`,
        fix: 'an older version without status requests, or it is stuck: see its log (journalctl -u lxcfs-ts)',
      },
    };
  }
}

async function checkMountpoint(mountpoint: string, daemon: DaemonAnswer, probeTimeoutMs: number): Promise<Check> {
  const name = 'mountpoint';
  const top = mountsAt(mountpoint).at(-1);
  if (!top)
    return {
      name,
      level: 'fail',
      message: `nothing is mounted on ${mountpoint}: containers that bind its files get empty files or errors`,
      fix: 'start the daemon (systemctl start lxcfs-ts), or pass --mountpoint',
    };
  if (top.fsType !== FS_TYPE)
    return {
      name,
      level: 'fail',
      message: `${mountpoint} has a ${top.fsType} filesystem (source "${top.source}"), not ${FS_TYPE}`,
      fix: 'unmount it or choose another mountpoint',
    };
  const probe = await probeFile(path.join(mountpoint, 'proc/uptime'), probeTimeoutMs);
  const minor = top.device.split(':')[1];
  if (probe.state === 'dead') {
    return {
      name,
      level: 'fail',
      message: `the lxcfs mount on ${mountpoint} is dead (its daemon is gone): containers that bound its files read "Transport endpoint is not connected"`,
      fix: 'start the daemon (it clears the dead mount), then re-bind containers: lxcfs-ts remount',
    };
  }
  if (probe.state === 'hung') {
    return {
      name,
      level: 'fail',
      message: `the lxcfs mount on ${mountpoint} does not answer within ${probeTimeoutMs} ms: its daemon is stuck or stopped, and every reader hangs`,
      fix: `restart the daemon with --force (it aborts the connection), or abort it yourself: echo 1 > ${FUSECTL_DIR}/${minor}/abort`,
    };
  }
  if (daemon.status?.device === top.device)
    return { name, level: 'ok', message: `${mountpoint} is live and served by lxcfs-ts pid ${daemon.status.pid}` };
  return {
    name,
    level: 'warn',
    message: `${mountpoint} is live, but not served by the lxcfs-ts of this pid file: ${daemon.status ? `that one is mounted on ${daemon.status.mountpoint}` : 'another lxcfs or lxcfs-ts serves it'}`,
    fix: 'pass the --pidfile of the daemon that serves it, or check which lxcfs runs (ps -C lxcfs; systemctl status lxcfs lxcfs-ts)',
  };
}

/** The mount that holds `dir` (the top one at the longest mountpoint above it). */
function mountHolding(dir: string, entries: MountInfoEntry[]): MountInfoEntry | undefined {
  const holders = entries.filter(
    (entry) => dir === entry.mountPoint || dir.startsWith(entry.mountPoint === '/' ? '/' : entry.mountPoint + '/'),
  );
  const longest = Math.max(...holders.map((entry) => entry.mountPoint.length));
  return holders.filter((entry) => entry.mountPoint.length === longest && !isCovered(entry, entries)).at(-1);
}

function checkPropagation(mountpoint: string): Check {
  const name = 'propagation';
  const parent = path.dirname(mountpoint);
  const entries = readMountInfo();
  // Docker checks the source of `-v MOUNTPOINT:MOUNTPOINT:rslave`: our mount when it is there; a mount
  // inherits its parent's propagation, so the parent's mount decides before the daemon starts.
  const ours = entries.filter((entry) => entry.mountPoint === mountpoint && !isCovered(entry, entries)).at(-1);
  const holder = ours ?? mountHolding(parent, entries);
  if (!holder)
    return {
      name,
      level: 'warn',
      message: `no mount in /proc/self/mountinfo holds ${parent}: the root of this process is not a mount point (a chroot?), so the propagation of the mountpoint cannot be told`,
      fix: 'run lxcfs-ts doctor outside the chroot, in the mount namespace of the host (from a container: nsenter -t 1 -m -- lxcfs-ts doctor)',
    };
  const kind = holder.propagation.some((field) => field.startsWith('shared:'))
    ? 'shared'
    : holder.propagation.some((field) => field.startsWith('master:'))
      ? 'slave'
      : 'private';
  const what = ours ? `the mount on ${mountpoint}` : `${parent} (on the mount at ${holder.mountPoint})`;
  if (kind === 'shared')
    return {
      name,
      level: 'ok',
      message: `${what} is shared: containers given ${mountpoint} with rslave receive a restarted daemon's new mount, so lxcfs-ts remount can heal them`,
    };
  return {
    name,
    level: 'warn',
    message: `${what} is ${kind}: ${kind === 'private' ? `Docker refuses -v ${mountpoint}:${mountpoint}:rslave ("not a shared or slave mount"), and` : 'Docker accepts rslave binds of it, but'} a restarted daemon's new mount does not reach containers, so after a crash they can only be healed by restarting them`,
    fix: `make the parent shared before the daemon starts: mount --bind ${parent} ${parent} && mount --make-shared ${parent} (systemd hosts have / shared already)`,
  };
}

/** A runc version as [major, minor, patch, rc]; a release sorts after its release candidates. */
type RuncVersion = [number, number, number, number];

export function parseRuncVersion(output: string): RuncVersion | undefined {
  const match = /runc version (\d+)\.(\d+)\.(\d+)(?:-rc\.?(\d+))?/.exec(output);
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2]), Number(match[3]), match[4] === undefined ? Infinity : Number(match[4])];
}

function older(a: RuncVersion, b: RuncVersion): boolean {
  for (let i = 0; i < 4; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}

/** runc refuses bind mounts inside /proc except onto a fixed list of files, which grew over time. */
const RUNC_PROC_TARGETS: Record<string, RuncVersion | 'never'> = {
  'proc/loadavg': [1, 0, 0, 6],
  'proc/slabinfo': [1, 0, 0, 93],
  'proc/pressure/cpu': 'never',
  'proc/pressure/io': 'never',
  'proc/pressure/memory': 'never',
};

/** The served files runc `version` refuses as bind targets. */
export function runcRefuses(version: RuncVersion): string[] {
  return SERVED_FILES.filter((file) => {
    const since = RUNC_PROC_TARGETS[file];
    return since === 'never' || (since !== undefined && older(version, since));
  });
}

function checkRunc(): Check {
  const name = 'runc';
  const result = spawnSync('runc', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (result.error)
    return {
      name,
      level: 'ok',
      message: 'runc is not installed here (no Docker, containerd or CRI-O with runc to check)',
    };
  const version = parseRuncVersion(result.stdout ?? '');
  if (!version)
    return {
      name,
      level: 'warn',
      message: `cannot read runc's version from ${JSON.stringify((result.stdout ?? '').split('\n')[0])}`,
      fix: 'check runc --version',
    };
  const shown = (result.stdout ?? '').split('\n')[0]!.replace(/^runc version /, '');
  const refused = runcRefuses(version);
  const recipe = refused.filter((file) => !file.startsWith('proc/pressure/'));
  const pressure = 'it refuses proc/pressure/* as bind targets, as every runc does: do not bind them';
  if (recipe.length === 0)
    return {
      name,
      level: 'ok',
      message: `runc ${shown} accepts every other served file as a bind target; ${pressure}`,
    };
  return {
    name,
    level: 'warn',
    message: `runc ${shown} refuses ${recipe.map((file) => '/' + file).join(', ')} as bind targets ("cannot be mounted because it is inside /proc"): a container given them does not start; ${pressure}`,
    fix: "leave those files out of the container's mounts, or upgrade runc (loadavg needs 1.0.0-rc6, slabinfo 1.0.0-rc93)",
  };
}

const TAGS: Record<Level, string> = { ok: ' OK ', warn: 'WARN', fail: 'FAIL' };

export function formatDoctor(report: DoctorReport): string {
  const lines = report.checks.flatMap((check) => [
    `[${TAGS[check.level]}] ${check.name}: ${check.message}`,
    ...(check.fix ? [`       fix: ${check.fix}`] : []),
  ]);
  const counts = (['fail', 'warn', 'ok'] as const).map(
    (level) => `${report.checks.filter((check) => check.level === level).length} ${TAGS[level].trim()}`,
  );
  lines.push(`doctor: ${counts.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** A mount is hidden when another one is stacked on the same mountpoint on top of it. */
function isCovered(entry: MountInfoEntry, entries: MountInfoEntry[]): boolean {
  return entries.some((other) => other.parentId === entry.mountId && other.mountPoint === entry.mountPoint);
}
