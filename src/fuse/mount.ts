// Mounting, probing and detaching FUSE filesystems without libfuse: /dev/fuse plus util-linux.
// Nothing here stats a FUSE mountpoint from this process: a hung mount would hang the daemon, so every
// probe that may touch one runs in a child process with a timeout.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export class MountError extends Error {
  override name = 'MountError';
}

export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** "major:minor" of the superblock; for FUSE the minor names the fusectl connection directory. */
  device: string;
  root: string;
  mountPoint: string;
  options: string;
  /** The optional fields: propagation such as "shared:12", "master:3", "propagate_from:3" (none: private). */
  propagation: string[];
  fsType: string;
  source: string;
  superOptions: string;
}

/** Decodes the octal escapes mountinfo uses for space, tab, newline and backslash. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    // Optional fields vary in number; the filesystem type follows the lone "-".
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    entries.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2]!,
      root: unescapeMountPath(fields[3]!),
      mountPoint: unescapeMountPath(fields[4]!),
      options: fields[5]!,
      propagation: fields.slice(6, dash),
      fsType: fields[dash + 1]!,
      source: unescapeMountPath(fields[dash + 2]!),
      superOptions: fields[dash + 3] ?? '',
    });
  }
  return entries;
}

/** The entries of a mount table whose filesystem type is `fsType`. A container's table can hold up to
 * fs.mount-max (100,000) lines, nearly all of other types: those are passed over by a substring search,
 * never split or parsed, so they cost little more than reading the table. " - TYPE " marks the type of
 * its line: every field before the separator is escaped (a space is \040) or generated, so the first
 * " - " of a line is the separator; each match is parsed and checked all the same. */
export function mountsOfType(text: string, fsType: string): MountInfoEntry[] {
  const needle = ` - ${fsType} `;
  const entries: MountInfoEntry[] = [];
  for (let at = text.indexOf(needle); at >= 0; ) {
    const start = text.lastIndexOf('\n', at) + 1;
    const end = lineEnd(text, at);
    const entry = parseMountInfo(text.slice(start, end))[0];
    if (entry?.fsType === fsType) entries.push(entry);
    at = text.indexOf(needle, end);
  }
  return entries;
}

/** The entries of a mount table whose parent is one of `parentIds`: the mounts on or below them. One
 * pass that reads only each line's parent ID; only the lines that match are parsed. */
export function mountsBelow(text: string, parentIds: Iterable<number>): MountInfoEntry[] {
  const wanted = new Set([...parentIds].map(String));
  const entries: MountInfoEntry[] = [];
  if (wanted.size === 0) return entries;
  for (let start = 0; start < text.length; ) {
    const end = lineEnd(text, start);
    // "ID PARENT ...": a malformed line's slice spans a newline and matches no ID.
    const first = text.indexOf(' ', start);
    const second = first < 0 ? -1 : text.indexOf(' ', first + 1);
    if (second >= 0 && second < end && wanted.has(text.slice(first + 1, second))) {
      const entry = parseMountInfo(text.slice(start, end))[0];
      if (entry) entries.push(entry);
    }
    start = end + 1;
  }
  return entries;
}

function lineEnd(text: string, from: number): number {
  const end = text.indexOf('\n', from);
  return end < 0 ? text.length : end;
}

export function readMountInfo(file = '/proc/self/mountinfo'): MountInfoEntry[] {
  return parseMountInfo(fs.readFileSync(file, 'utf8'));
}

/** The mounts stacked on `mountPoint`, bottom first. */
export function mountsAt(mountPoint: string, file?: string): MountInfoEntry[] {
  return readMountInfo(file).filter((entry) => entry.mountPoint === mountPoint);
}

export function openFuseDevice(device = '/dev/fuse'): number {
  try {
    return fs.openSync(device, 'r+');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ' (is the fuse module loaded? try: modprobe fuse)' : '';
    throw new MountError(`cannot open ${device}: ${code ?? String(err)}${hint}`);
  }
}

export interface MountRequest {
  fd: number;
  mountPoint: string;
  /** Filesystem type as shown in mountinfo, e.g. "fuse.lxcfs". */
  fsType: string;
  source: string;
  /** Extra options appended after the ones FUSE requires. */
  options: string[];
}

/** Mounts the /dev/fuse connection `fd` on the mountpoint through mount(8). The kernel queues INIT; the
 * caller starts reading only after this returns (a read before the mount fails with EPERM). */
export function mountFuse(request: MountRequest): void {
  const options = [
    `fd=3`,
    'rootmode=40555',
    'user_id=0',
    'group_id=0',
    'allow_other',
    'nosuid',
    'nodev',
    'noexec',
    ...request.options,
  ].join(',');
  // -i: no /sbin/mount.fuse helper, which would try to execute the source name. -c: no canonicalizing
  // of the mountpoint, which may be a dead FUSE mount we mount on top of (a stat there fails).
  const result = spawnSync('mount', ['-i', '-c', '-t', request.fsType, '-o', options, request.source, request.mountPoint], {
    stdio: ['ignore', 'pipe', 'pipe', request.fd],
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (result.error) throw new MountError(`mount(8) could not run: ${result.error.message}`);
  if (result.status !== 0) {
    const why = (result.stderr || result.stdout || `exit status ${result.status}`).trim().split('\n')[0];
    throw new MountError(`mounting ${request.fsType} on ${request.mountPoint} failed: ${why}`);
  }
}

/** Detaches the mount at `mountPoint` (MNT_DETACH: works even when busy). */
export function detachMount(mountPoint: string): void {
  const result = spawnSync('umount', ['-l', mountPoint], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0) {
    throw new MountError(`umount -l ${mountPoint} failed: ${(result.stderr ?? '').trim() || `exit status ${result.status}`}`);
  }
}

export const FUSECTL_DIR = '/sys/fs/fuse/connections';

/** Aborts a FUSE connection through fusectl, so that its callers and its daemon are released. fusectl
 * is mounted for the purpose if it is missing (and unmounted again: we leave the host as we found it).
 * `device` is the mountinfo "major:minor". Returns false when the connection no longer exists. */
export function abortConnection(device: string): boolean {
  const minor = device.split(':')[1];
  if (!minor) throw new MountError(`bad device number "${device}"`);
  const mountedHere = !readMountInfo().some((entry) => entry.fsType === 'fusectl' && entry.mountPoint === FUSECTL_DIR);
  if (mountedHere) {
    const result = spawnSync('mount', ['-t', 'fusectl', 'none', FUSECTL_DIR], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    if (result.status !== 0) throw new MountError(`cannot mount fusectl on ${FUSECTL_DIR}: ${(result.stderr ?? '').trim()}`);
  }
  try {
    fs.writeFileSync(path.join(FUSECTL_DIR, minor, 'abort'), '1');
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new MountError(`cannot abort FUSE connection ${minor}: ${(err as Error).message}`);
  } finally {
    if (mountedHere) spawnSync('umount', [FUSECTL_DIR], { stdio: 'ignore' });
  }
}

export type ProbeResult =
  | { state: 'live' }
  | { state: 'dead'; detail: string }
  | { state: 'hung' };

/** How long a mount's daemon may take to answer a probe before it counts as hung, wherever we judge
 * that (the daemon's start, remount, doctor and status). Generous: with --force a hung daemon's
 * connection is aborted, and a live one that is merely slow (an overloaded host, or an emulated one on
 * a fresh daemon's first requests) must never be taken for hung. A hung mount costs it once. */
export const HUNG_AFTER_MS = 5000;
const PROBE_START_ALLOWANCE = 10;
/** How often, within the timeout, the probe looks at whether its child waits for FUSE. */
const PROBE_LOOKS = 10;

/** Whether a process may be waiting for a FUSE daemon's answer: it sleeps in the kernel and its wchan
 * names fuse's request wait, or the kernel hides wchan. A process that runs, or sleeps elsewhere (paging
 * in its binary, say), is still starting. */
function waitsForFuse(pid: number | undefined): boolean {
  if (pid === undefined) return true;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('R')) return false;
    const wchan = fs.readFileSync(`/proc/${pid}/wchan`, 'latin1');
    return wchan === '0' || wchan === '' || /fuse|request_wait_answer/.test(wchan);
  } catch {
    return true;
  }
}

/** Reads `file` in a child process: answers → live, ENOTCONN/ECONNREFUSED/ECONNABORTED → dead, no answer
 * within the timeout → hung. The child is not waited for after a timeout: a request stuck in a dead
 * daemon can keep it in D state. On a loaded host (or under emulation) the child itself can take longer
 * than the timeout to start: only the time it is seen waiting for a FUSE answer counts (looked at
 * PROBE_LOOKS times per timeout), up to PROBE_START_ALLOWANCE timeouts in all. */
export function probeFile(file: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const child = spawn('head', ['-c', '1', '--', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const lookMs = timeoutMs / PROBE_LOOKS;
    let looks = 0;
    let waitingLooks = 0;
    const look = (): void => {
      looks++;
      if (waitsForFuse(child.pid)) waitingLooks++;
      if (waitingLooks < PROBE_LOOKS && looks < PROBE_START_ALLOWANCE * PROBE_LOOKS) {
        timer = setTimeout(look, lookMs);
        return;
      }
      child.kill('SIGKILL');
      child.unref();
      child.stderr.destroy();
      resolve({ state: 'hung' });
    };
    let timer = setTimeout(look, lookMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ state: 'dead', detail: err.message });
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      if (status === 0) return resolve({ state: 'live' });
      if (/not connected|Connection refused|connection abort/i.test(stderr)) {
        return resolve({ state: 'dead', detail: stderr.trim() });
      }
      // Any other answer (ENOENT, EACCES, ...) came from a serving daemon.
      resolve({ state: 'live' });
    });
  });
}
