// The daemon's main process: pid file, mountpoint, the /dev/fuse connection it holds for its whole life,
// the serving process it supervises (supervisor.ts), signals, and a clean stop.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Logger } from 'pino';
import { abortConnection, mountFuse, mountsAt, openFuseDevice } from '../fuse/mount.js';
import type { DaemonConfig } from './config.js';
import { parseMountOptions } from './config.js';
import { detachLxcfsMounts, FS_SOURCE, FS_TYPE, prepareMountpoint, resolveMountpoint } from './mountpoint.js';
import { acquirePidFile } from './pidfile.js';
import { controlSocketPath, listenForControl } from './control.js';
import { ServerSupervisor } from './supervisor.js';
import { BlkioAccounting } from '../lxcfs/blkio-accounting.js';
import { detectCgroupLayout } from '../host/cgroup-layout.js';
import { VERSION } from '../version.js';

/** Runs until stopped by a signal or an unmount; resolves with the exit status. Startup failures throw
 * with a one-line message and leave nothing mounted and no pid file behind. */
export async function runDaemon(given: DaemonConfig, log: Logger): Promise<number> {
  // Every later use (mount, liveness check, unmount, the serving process's stop) sees the resolved path.
  const config: DaemonConfig = { ...given, mountpoint: resolveMountpoint(given.mountpoint) };
  if (config.mountpoint !== given.mountpoint) log.info({ given: given.mountpoint, mountpoint: config.mountpoint }, 'mountpoint resolved through symlinks');
  if (config.enablePidfd) log.info('--enable-pidfd is accepted for compatibility and has no effect');
  const mountOptions = parseMountOptions(config.options);

  // Signals count from the start: a SIGTERM during startup stops the daemon as soon as it serves.
  let stopRequest: string | undefined;
  let stopNow: ((why: string) => void) | undefined;
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.on(signal, () => (stopNow ? stopNow(signal) : (stopRequest ??= signal)));
  }

  const startedAt = Date.now();
  const pidFile = acquirePidFile(config.pidfile);
  let fd: number | undefined;
  let mounted = false;
  let control: { close(): void } | undefined;
  let metrics: { close(): void } | undefined;
  // Logs disks whose I/O v1 cgroups do not count; with --enable-blkio-accounting, makes them count.
  const blkio = new BlkioAccounting({ layout: detectCgroupLayout({ procRoot: config.procRoot, cgroupRoot: config.cgroupRoot }), enable: config.enableBlkioAccounting, log });
  const cleanup = (): void => {
    control?.close();
    control = undefined;
    metrics?.close();
    metrics = undefined;
    blkio.stop();
    if (mounted) {
      try {
        detachLxcfsMounts(config.mountpoint);
      } catch (err) {
        log.error({ err }, 'could not detach the mount');
      }
      mounted = false;
    }
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined;
    pidFile.release();
  };

  let supervisor: ServerSupervisor;
  try {
    // First, so that a taken port fails the start before anything is mounted. A scrape before the
    // supervisor exists finds it undefined.
    if (config.metrics) {
      const running = (): ServerSupervisor | undefined => supervisor;
      // Loaded only when on: prom-client adds to every start's module loading.
      const { startMetricsEndpoint } = await import('../metrics/endpoint.js');
      metrics = await startMetricsEndpoint(config.metrics, {
        counts: () => running()?.counts ?? { upgrades: 0, failedUpgrades: 0, restarts: 0 },
        serverMetrics: async (timeoutMs) => running()?.serverMetrics(timeoutMs),
      }, log);
    }
    await prepareMountpoint(config.mountpoint, { force: config.force, log });
    fd = openFuseDevice();
    mountFuse({ fd, mountPoint: config.mountpoint, fsType: FS_TYPE, source: FS_SOURCE, options: mountOptions.keep });
    mounted = true;
    const device = mountsAt(config.mountpoint).at(-1)?.device;
    blkio.start();
    supervisor = new ServerSupervisor({ config, fd, log });
    const init = await supervisor.start();
    log.info(
      {
        mountPoint: config.mountpoint,
        protocol: `7.${init.minor}`,
        kernelProtocol: `${init.kernelMajor}.${init.kernelMinor}`,
        flags: `0x${init.flags.toString(16)}`,
        resend: supervisor.resendAvailable,
        readers: config.readers,
        server: supervisor.serverPid,
      },
      'serving',
    );
    if (!supervisor.resendAvailable) {
      log.warn(
        { kernelProtocol: `${init.kernelMajor}.${init.kernelMinor}` },
        'the kernel has no FUSE_NOTIFY_RESEND (Linux < 6.9): if the serving process crashes, requests it had taken cannot be replayed and their callers hang until the connection is aborted (echo 1 > /sys/fs/fuse/connections/<minor>/abort) and containers are re-bound with lxcfs-ts remount; graceful upgrades lose nothing',
      );
    }
    warnAboutRequestTimeout(log);
    // lxcfs's reload (SIGUSR1 there; `lxcfs-ts upgrade` and `systemctl reload` here): replace the serving
    // process with the code on disk. systemd hears RELOADING=1 before and READY=1 after.
    control = await listenForControl(controlSocketPath(config.pidfile), async () => {
      notifySystemd(log, 'RELOADING=1', `MONOTONIC_USEC=${monotonicMicroseconds()}`);
      try {
        return await supervisor.upgrade();
      } finally {
        notifySystemd(log, 'READY=1');
      }
    }, () => ({
      version: VERSION,
      pid: process.pid,
      serverPid: supervisor.serverPid,
      mountpoint: config.mountpoint,
      device,
      startedAt,
      protocol: `7.${init.minor}`,
      kernelProtocol: `${init.kernelMajor}.${init.kernelMinor}`,
      resend: supervisor.resendAvailable,
      ...(config.metrics ? { metrics: config.metrics } : {}),
    }));
    notifySystemd(log, 'READY=1', `MAINPID=${process.pid}`);
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
      notifySystemd(log, 'STOPPING=1');
      if (!(await supervisor.stop())) {
        // A reader is stuck in a handler: aborting the connection is the one thing that frees it.
        const entry = mountsAt(config.mountpoint).filter((m) => m.fsType === FS_TYPE).pop(); // ours is on top
        if (entry) abortConnection(entry.device);
        log.warn('the serving process did not stop in time; aborted the FUSE connection');
      }
      cleanup();
      log.info('stopped');
      resolve(0);
    };
    stopNow = (why) => void stop(why);
    if (stopRequest) stopNow(stopRequest);
    let virtualize = true;
    process.on('SIGUSR2', () => {
      virtualize = !virtualize;
      supervisor.setVirtualize(virtualize);
      log.warn(virtualize ? 'Switched into virtualization mode' : 'Switched into non-virtualization mode: every file shows the host values');
    });
    supervisor.on('ended', (reason, detail) => {
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

function monotonicMicroseconds(): string {
  return (process.hrtime.bigint() / 1000n).toString();
}

/** Tells systemd (Type=notify) about our state, when started by it. Node cannot send to a unix datagram
 * socket, so systemd-notify sends it; the unit needs NotifyAccess=all since the sender is our child. */
function notifySystemd(log: Logger, ...assignments: string[]): void {
  if (!process.env.NOTIFY_SOCKET) return;
  const child = spawn('systemd-notify', assignments, { stdio: 'ignore' });
  child.on('error', (err) => log.warn({ err: err.message }, 'systemd-notify could not run'));
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
