// Deciding what to do with whatever is already at the mountpoint, before we mount.
// Never stat the mountpoint from this process while a FUSE mount may sit there: probes run in children.

import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { abortConnection, detachMount, FUSECTL_DIR, mountsAt, probeFile, type MountInfoEntry } from '../fuse/mount.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

export const FS_TYPE = 'fuse.lxcfs';
export const FS_SOURCE = 'lxcfs';
const PROBE_TIMEOUT_MS = 1500;

function isLxcfsMount(entry: MountInfoEntry): boolean {
  return entry.fsType === FS_TYPE || (entry.fsType.startsWith('fuse') && entry.source === FS_SOURCE);
}

/** Clears a dead lxcfs mount, refuses a live or foreign one, and makes sure the directory exists. */
export async function prepareMountpoint(mountPoint: string, options: { force: boolean; log: Logger }): Promise<void> {
  // Stacked mounts are cleared top down; the loop ends when nothing of ours is left.
  for (let mounts = mountsAt(mountPoint); mounts.length > 0; mounts = mountsAt(mountPoint)) {
    const top = mounts[mounts.length - 1]!;
    if (!isLxcfsMount(top)) {
      throw new StartupError(
        `${mountPoint} already has a ${top.fsType} filesystem (source "${top.source}") mounted on it; choose another mountpoint or unmount it`,
      );
    }
    const probe = await probeFile(path.join(mountPoint, 'proc/uptime'), PROBE_TIMEOUT_MS);
    if (probe.state === 'live') {
      throw new StartupError(`${mountPoint} is already served by a running lxcfs or lxcfs-ts daemon; stop it first or choose another mountpoint`);
    }
    const minor = top.device.split(':')[1];
    if (probe.state === 'hung' && !options.force) {
      throw new StartupError(
        `the lxcfs mount on ${mountPoint} does not answer within ${PROBE_TIMEOUT_MS} ms (a hung daemon?); start with --force to abort it, or run: echo 1 > ${FUSECTL_DIR}/${minor}/abort; umount -l ${mountPoint}`,
      );
    }
    // Abort first so that nothing still waiting on the old connection can block the detach.
    const aborted = abortConnection(top.device);
    detachMount(mountPoint);
    options.log.warn(
      { mountPoint, device: top.device, state: probe.state, aborted },
      probe.state === 'hung' ? 'aborted and detached a hung lxcfs mount (--force)' : 'cleared a stale lxcfs mount left by a dead daemon',
    );
  }
  ensureDirectory(mountPoint);
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
