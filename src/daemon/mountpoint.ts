// Deciding what to do with whatever is already at the mountpoint, before we mount.
// Never stat the mountpoint from this process while a FUSE mount may sit there: probes run in children.

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { abortConnection, detachMount, FUSECTL_DIR, HUNG_AFTER_MS, mountsAt, probeFile, type MountInfoEntry } from '../fuse/mount.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

export const FS_TYPE = 'fuse.lxcfs';
export const FS_SOURCE = 'lxcfs';

const MAX_SYMLINK_HOPS = 40; // the kernel's own limit

/** The mountpoint as mountinfo spells it, with every symlink in it (the last component included)
 * resolved once, at start: from then on mount, liveness check, unmount and stop all act on this path, so
 * pointing a symlink elsewhere later cannot move any of them. The last component is resolved with
 * readlink, never stat: it may be a dead or hung FUSE mount. */
export function resolveMountpoint(given: string): string {
  let current = path.resolve(given);
  for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
    const parent = path.dirname(current);
    let realParent: string;
    try {
      realParent = fs.realpathSync(parent);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StartupError(`cannot create mountpoint ${given}: its parent ${parent} does not exist`);
      }
      throw new StartupError(`cannot use mountpoint ${given}: ${(err as Error).message}`);
    }
    const candidate = path.join(realParent, path.basename(current));
    let target: string;
    try {
      target = fs.readlinkSync(candidate);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINVAL' || code === 'ENOENT') return candidate; // not a symlink, or not there yet
      throw new StartupError(`cannot use mountpoint ${given}: ${(err as Error).message}`);
    }
    current = path.resolve(realParent, target);
  }
  throw new StartupError(`cannot use mountpoint ${given}: more than ${MAX_SYMLINK_HOPS} symlinks to follow`);
}

function isLxcfsMount(entry: MountInfoEntry): boolean {
  return entry.fsType === FS_TYPE || (entry.fsType.startsWith('fuse') && entry.source === FS_SOURCE);
}

/** Refuses a live or foreign mount at the mountpoint and makes sure the directory exists. A dead (or,
 * with --force, hung) lxcfs mount is aborted and left in place: we mount on top of it, like lxcfs does
 * after a crash. Containers that got the lxcfs directory itself with slave propagation
 * (`-v /var/lib/lxcfs:/var/lib/lxcfs:rslave`) hold a copy of that dead mount, and only a mount stacked
 * on it propagates into their copy, where the remount helper finds it. */
export async function prepareMountpoint(mountPoint: string, options: { force: boolean; log: Logger }): Promise<void> {
  const mounts = mountsAt(mountPoint);
  const top = mounts[mounts.length - 1];
  if (!top) return ensureDirectory(mountPoint);
  if (!isLxcfsMount(top)) {
    throw new StartupError(
      `${mountPoint} already has a ${top.fsType} filesystem (source "${top.source}") mounted on it; choose another mountpoint or unmount it`,
    );
  }
  const probe = await probeFile(path.join(mountPoint, 'proc/uptime'), HUNG_AFTER_MS);
  if (probe.state === 'live') {
    throw new StartupError(`${mountPoint} is already served by a running lxcfs or lxcfs-ts daemon; stop it first or choose another mountpoint`);
  }
  const minor = top.device.split(':')[1];
  if (probe.state === 'hung' && !options.force) {
    throw new StartupError(
      `the lxcfs mount on ${mountPoint} does not answer within ${HUNG_AFTER_MS} ms (a hung daemon?); start with --force to abort it, or abort it yourself (echo 1 > ${FUSECTL_DIR}/${minor}/abort, after mount -t fusectl none ${FUSECTL_DIR} if that is missing) and run umount -l ${mountPoint}`,
    );
  }
  // Aborting frees every caller still waiting on the old connection; the mount stays, dead, below ours.
  const aborted = abortConnection(top.device);
  const details = { mountPoint, device: top.device, state: probe.state, aborted };
  if (probe.state === 'hung') options.log.warn(details, 'aborted a hung lxcfs mount (--force); mounting on top of it');
  // An error: until containers are re-bound (lxcfs-ts remount), every read of their files fails.
  else options.log.error(details, 'the previous daemon died without unmounting (a crash or kill -9); mounting on top of its dead mount so that containers can be re-bound (lxcfs-ts remount)');
}

/** Detaches every lxcfs mount stacked on the mountpoint (ours and dead ones below), top down. */
export function detachLxcfsMounts(mountPoint: string): void {
  for (let mounts = mountsAt(mountPoint); mounts.length > 0 && isLxcfsMount(mounts[mounts.length - 1]!); mounts = mountsAt(mountPoint)) {
    detachMount(mountPoint);
  }
}

function ensureDirectory(mountPoint: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(mountPoint);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new StartupError(`cannot use mountpoint ${mountPoint}: ${(err as Error).message}`);
    }
    // Like lxcfs's unit (mkdir -p), but only the last component: a missing parent is likely a typo.
    const parent = path.dirname(mountPoint);
    if (!fs.existsSync(parent)) throw new StartupError(`cannot create mountpoint ${mountPoint}: its parent ${parent} does not exist`);
    fs.mkdirSync(mountPoint, { mode: 0o755 });
    return;
  }
  if (!stat.isDirectory()) throw new StartupError(`mountpoint ${mountPoint} is not a directory`);
}
