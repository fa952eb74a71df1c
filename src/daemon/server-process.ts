// The serving process: started by the supervisor (daemon.ts) with the mounted /dev/fuse connection as fd
// 3 and an IPC channel. It runs the reader threads. It can crash, be killed or be replaced by a newer
// version without the mount noticing, because the supervisor keeps the connection open meanwhile.

import { FuseServer } from '../fuse/server.js';
import { SnapshotStore } from '../fuse/snapshots.js';
import { ControlField, CONTROL_FIELDS, treeOptionsFrom } from '../lxcfs/tree-options.js';
import { startLoadavgSampler, type LoadavgSampler } from '../lxcfs/loadavg-sampler.js';
import { SharedTable } from '../lxcfs/shared-table.js';
import { PsiTable } from '../lxcfs/psi-table.js';
import { startPsiSampler, type PsiSampler } from '../lxcfs/psi-sampler.js';
import { NotifyPollWakeup } from '../fuse/abi.js';
import fs from 'node:fs';
import { inheritedStateFile, takeHandoff, writeHandoff } from './state-files.js';
import { createLogger } from '../util/log.js';
import { FUSE_FD, type ServerMessage, type SupervisorMessage } from './server-messages.js';
import type { ServerMetrics } from '../metrics/server-metrics.js';


/** Sends to the supervisor; `then` runs once the message is on its way (exiting before that loses it). */
function send(message: ServerMessage, then?: () => void): void {
  if (!process.send || !process.connected) return then?.();
  process.send(message, undefined, {}, () => then?.());
}

async function serve(start: Extract<SupervisorMessage, { type: 'start' }>): Promise<void> {
  const { config } = start;
  const log = createLogger({ level: config.logLevel, format: config.logFormat }, { pid: process.pid, role: 'server' });
  const control = new SharedArrayBuffer(CONTROL_FIELDS * 4);
  const flags = new Int32Array(control);
  Atomics.store(flags, ControlField.VIRTUALIZE, start.virtualize ? 1 : 0);
  const psiStore = inheritedStateFile('psi');
  const treeOptions = treeOptionsFrom(config, control, { cpu: inheritedStateFile('cpu'), loadavg: inheritedStateFile('loadavg'), psi: psiStore });
  const server = new FuseServer({
    fd: FUSE_FD,
    mountPoint: config.mountpoint,
    readers: config.readers,
    fsModule: new URL('../lxcfs/tree.js', import.meta.url).href,
    fsOptions: treeOptions,
    // The reader threads' records name their thread, and the caller's pid where there is one: no base
    // fields (a process pid would clash with it).
    log: createLogger({ level: config.logLevel, format: config.logFormat }, {}),
    initialized: start.initialized,
    countRequests: config.metrics !== '',
    tenantLimits: { handles: config.maxHandlesPerContainer, bytes: config.maxSnapshotMibPerContainer * 1024 * 1024 },
  });
  let stopping = false;
  let loadavg: LoadavgSampler | undefined;
  let psi: PsiSampler | undefined;
  let metrics: ServerMetrics | undefined;

  // The open file handles and their snapshots go to a successor through a state file: a few MB, which
  // the IPC channel's JSON took a quarter of a second to carry, while containers' requests waited.
  const handoffFile = inheritedStateFile('handoff');
  const handOver = (): boolean => {
    if (handoffFile === undefined) return false;
    try {
      writeHandoff(handoffFile, SnapshotStore.dump(server.snapshots));
      return true;
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot hand the open files to the new serving process: reads of them end early');
      return false;
    }
  };
  const takeOver = (): void => {
    const dump = handoffFile === undefined ? undefined : takeHandoff(handoffFile);
    if (!dump || !SnapshotStore.load(server.snapshots, dump)) {
      log.warn('the previous serving process\'s open files could not be taken over (incomplete, or from a version with another layout): reads of them end early');
    }
  };

  const stop = async (handoff: boolean): Promise<void> => {
    if (stopping) return;
    stopping = true;
    loadavg?.stop();
    psi?.stop();
    const clean = await server.stop();
    const handedOver = handoff && clean && handOver();
    // With every reader stopped nothing blocks exit. A reader stuck in the kernel would make exit()
    // hang: the supervisor aborts the connection then, or, without a supervisor, we kill ourselves.
    send({ type: 'stopped', clean, handedOver }, () => {
      if (clean) process.exit(0);
      if (!process.connected) process.kill(process.pid, 'SIGKILL');
    });
  };

  process.on('message', (message: SupervisorMessage) => {
    if (message.type === 'stop') void stop(message.handoff);
    else if (message.type === 'virtualize') Atomics.store(flags, ControlField.VIRTUALIZE, message.on ? 1 : 0);
    else if (message.type === 'metrics') void metrics?.collect().then((families) => send({ type: 'metrics', families }));
    else if (message.type === 'go') {
      if (message.handedOver) takeOver();
      void begin(message.resend);
    }
  });
  // The supervisor is gone (killed): nobody holds the connection for a successor, so stop cleanly and
  // let the mount die with the last fd; the restarted service clears it and re-binds containers.
  process.on('disconnect', () => {
    if (stopping) return;
    log.error('the daemon\'s main process is gone (killed?): stopping; its mount dies with this process until the daemon is started again');
    void stop(false);
  });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => void stop(false));

  server.on('exit', (reason, detail) => {
    if (stopping) return;
    send({ type: 'ended', reason, detail }, () => process.exit(reason === 'error' ? 1 : 0));
  });

  const begin = async (resend: boolean): Promise<void> => {
    // Continue the predecessor's per-cgroup state (it wrote every change before answering), then sample
    // and read: nothing of ours has touched the tables before this point.
    const restored = {
      cpu: new SharedTable(treeOptions.cpuState.table).restore(),
      loadavg: treeOptions.loadavgTable === undefined ? 0 : new SharedTable(treeOptions.loadavgTable).restore(),
    };
    if (!stopping) loadavg = startLoadavgSampler(treeOptions, log);
    // FUSE_NOTIFY_POLL is one write of its own to /dev/fuse, like any reply.
    const wake = (kh: number): void => void fs.writeSync(FUSE_FD, NotifyPollWakeup.message(kh));
    if (!stopping && treeOptions.psiTable) psi = startPsiSampler({ memory: treeOptions.psiTable, wake, log });
    // Whoever polled a trigger of a predecessor (upgraded, crashed) waits for a wakeup that predecessor can
    // no longer send; woken now, they poll again, reach us once we read, and get POLLERR: their trigger
    // is gone. (Without --enable-psi-poll now, POLL answers ENOSYS and they see the file ready instead.)
    const orphaned = PsiTable.takeOrphanedPollHandles(psiStore);
    const resent = server.release({ resend });
    for (const kh of orphaned) {
      try {
        wake(kh);
      } catch {
        // The file was closed meanwhile.
      }
    }
    if (orphaned.length > 0) log.info({ pollers: orphaned.length }, 'woke the pollers of PSI triggers a previous serving process had armed: they get POLLERR');
    const init = await server.initialized();
    send({ type: 'serving', init, resent });
    log.debug({ resend, resent, restored }, 'reading');
  };

  // Loaded only with --metrics (prom-client adds to every start's module loading), and only once the
  // supervisor's messages have their handlers.
  if (server.requestStats) {
    const { ServerMetrics } = await import('../metrics/server-metrics.js');
    const gc = server.gcStats && { memory: server.gcStats, slots: server.gcSlots, fold: () => server.foldGcStats() };
    metrics = new ServerMetrics({ requestStats: server.requestStats, gc, snapshots: server.snapshots, loadavg: () => loadavg });
  }
  await server.prepare();
  send({ type: 'ready' });
  if (!start.waitForGo) await begin(start.resend);
}

process.once('message', (message: SupervisorMessage) => {
  if (message.type !== 'start') return;
  serve(message).catch((err: Error) => send({ type: 'ended', reason: 'error', detail: err.message }, () => process.exit(1)));
});
