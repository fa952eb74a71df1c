// The daemon: pid file, mountpoint, /dev/fuse, reader threads, signals, and a clean stop.

import fs from 'node:fs';
import type { Logger } from 'pino';
import { openFuseDevice, mountFuse, mountsAt, abortConnection, detachMount } from '../fuse/mount.js';
import { FuseServer } from '../fuse/server.js';
import { InitFlag2 } from '../fuse/abi.js';
import type { DaemonConfig } from './config.js';
import { parseMountOptions } from './config.js';
import { ControlField, CONTROL_FIELDS, treeOptionsFrom } from './lxcfs-tree.js';
import { FS_SOURCE, FS_TYPE, prepareMountpoint } from './mountpoint.js';
import { acquirePidFile } from './pidfile.js';

/** Flags that are accepted for compatibility but whose feature has not landed yet. */
const NOT_YET_IMPLEMENTED: Array<[keyof DaemonConfig, string]> = [
  ['enableLoadavg', '--enable-loadavg: per-container load averages are not implemented yet; /proc/loadavg shows the host values'],
  ['enableCfs', '--enable-cfs: the CPU view is not implemented yet; CPU files show the host values'],
  ['enablePsiPoll', '--enable-psi-poll: PSI trigger writes and poll are not implemented yet'],
];

/** Runs until stopped by a signal or an unmount; resolves with the exit status. Startup failures throw
 * with a one-line message and leave nothing mounted and no pid file behind. */
export async function runDaemon(config: DaemonConfig, log: Logger): Promise<number> {
  for (const [key, message] of NOT_YET_IMPLEMENTED) if (config[key]) log.warn({ flag: key }, message);
  if (config.enablePidfd) log.info('--enable-pidfd is accepted for compatibility and has no effect');
  const mountOptions = parseMountOptions(config.options);

  // Signals count from the start: a SIGTERM during startup stops the daemon as soon as it serves.
  let stopRequest: string | undefined;
  let stopNow: ((why: string) => void) | undefined;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => (stopNow ? stopNow(signal) : (stopRequest ??= signal)));
  }

  const pidFile = acquirePidFile(config.pidfile);
  let fd: number | undefined;
  let mounted = false;
  const cleanup = (): void => {
    if (mounted) {
      try {
        detachMount(config.mountpoint);
      } catch (err) {
        log.error({ err }, 'could not detach the mount');
      }
      mounted = false;
    }
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined;
    pidFile.release();
  };

  const control = new SharedArrayBuffer(CONTROL_FIELDS * 4);
  const controlFlags = new Int32Array(control);
  Atomics.store(controlFlags, ControlField.VIRTUALIZE, 1);
  let server: FuseServer;
  try {
    await prepareMountpoint(config.mountpoint, { force: config.force, log });
    fd = openFuseDevice();
    mountFuse({ fd, mountPoint: config.mountpoint, fsType: FS_TYPE, source: FS_SOURCE, options: mountOptions.keep });
    mounted = true;
    server = new FuseServer({
      fd,
      mountPoint: config.mountpoint,
      readers: config.readers,
      fsModule: new URL('./lxcfs-tree.js', import.meta.url).href,
      fsOptions: treeOptionsFrom(config, control),
      logLevel: config.logLevel,
    });
    const init = await server.start();
    const resend = (init.flags2Offered & InitFlag2.HAS_RESEND) !== 0;
    log.info(
      { mountPoint: config.mountpoint, protocol: `7.${init.minor}`, kernelProtocol: `${init.kernelMajor}.${init.kernelMinor}`, flags: `0x${init.flags.toString(16)}`, resend, readers: config.readers },
      'serving',
    );
    if (!resend) {
      log.warn(
        { kernelProtocol: `${init.kernelMajor}.${init.kernelMinor}` },
        'the kernel has no FUSE_NOTIFY_RESEND (Linux < 6.9): requests a crashed reader had taken cannot be replayed, so their callers hang until the connection is aborted (echo 1 > /sys/fs/fuse/connections/<minor>/abort) and containers are re-bound with lxcfs-ts remount',
      );
    }
    warnAboutRequestTimeout(log);
  } catch (err) {
    cleanup();
    throw err;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (why: string): Promise<void> => {
      if (stopping) return;
      stopping = true;
      log.info({ why }, 'stopping');
      const stopped = await server.stop();
      if (!stopped) {
        // A reader is stuck in a handler: aborting the connection is the one thing that frees it.
        const entry = mountsAt(config.mountpoint).find((m) => m.fsType === FS_TYPE);
        if (entry) abortConnection(entry.device);
        log.warn('readers did not stop in time; aborted the FUSE connection');
      }
      cleanup();
      log.info('stopped');
      resolve(0);
    };
    stopNow = (why) => void stop(why);
    if (stopRequest) stopNow(stopRequest);
    process.on('SIGUSR2', () => {
      const virtualize = Atomics.load(controlFlags, ControlField.VIRTUALIZE) === 0 ? 1 : 0;
      Atomics.store(controlFlags, ControlField.VIRTUALIZE, virtualize);
      log.warn(virtualize ? 'Switched into virtualization mode' : 'Switched into non-virtualization mode: every file shows the host values');
    });
    process.on('SIGUSR1', () => log.warn('SIGUSR1 (reload) is not implemented yet; ignored'));
    server.on('exit', (reason, detail) => {
      if (stopping) return;
      // Someone unmounted us (ENODEV) or aborted the connection: like lxcfs, that ends the daemon.
      mounted = reason !== 'unmounted' && mounted;
      log.warn({ reason, detail }, 'the FUSE connection ended');
      stopping = true;
      cleanup();
      resolve(reason === 'error' ? 1 : 0);
    });
  });
}

/** A kernel-wide FUSE request timeout would abort our connection (and every container's view) on one
 * slow request. */
function warnAboutRequestTimeout(log: Logger): void {
  try {
    const timeout = Number(fs.readFileSync('/proc/sys/fs/fuse/default_request_timeout', 'utf8'));
    if (timeout > 0) log.warn({ timeout }, 'fs.fuse.default_request_timeout is set: a request slower than that aborts the whole mount');
  } catch {
    // Kernels before 6.14 have no such knob.
  }
}
