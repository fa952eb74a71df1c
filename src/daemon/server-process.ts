// The serving process: started by the supervisor (daemon.ts) with the mounted /dev/fuse connection as fd
// 3 and an IPC channel. It runs the reader threads. It can crash, be killed or be replaced by a newer
// version without the mount noticing, because the supervisor keeps the connection open meanwhile.

import { pino } from 'pino';
import { FuseServer } from '../fuse/server.js';
import type { InitInfo } from '../fuse/session.js';
import { SnapshotStore, type SnapshotDump } from '../fuse/snapshots.js';
import type { DaemonConfig } from './config.js';
import { ControlField, CONTROL_FIELDS, treeOptionsFrom } from '../lxcfs/tree.js';
import { startLoadavgSampler, type LoadavgSampler } from '../lxcfs/loadavg-sampler.js';
import { SharedTable } from '../lxcfs/shared-table.js';
import { inheritedStateFile } from './state-files.js';

export const FUSE_FD = 3;

export type SupervisorMessage =
  | {
      type: 'start';
      config: DaemonConfig;
      virtualize: boolean;
      /** Taking over a connection a predecessor initialized. */
      initialized?: InitInfo;
      /** Wait for 'go' before reading (a graceful handoff: the predecessor is still reading). */
      waitForGo: boolean;
      /** Ask the kernel to replay requests a crashed predecessor had taken. */
      resend: boolean;
    }
  | { type: 'go'; snapshots?: SnapshotDump; resend: boolean }
  | { type: 'stop'; handoff: boolean }
  | { type: 'virtualize'; on: boolean };

export type ServerMessage =
  | { type: 'ready' }
  | { type: 'serving'; init: InitInfo; resent: boolean }
  | { type: 'stopped'; clean: boolean; snapshots?: SnapshotDump }
  | { type: 'ended'; reason: string; detail?: string };

/** Sends to the supervisor; `then` runs once the message is on its way (exiting before that loses it). */
function send(message: ServerMessage, then?: () => void): void {
  if (!process.send || !process.connected) return then?.();
  process.send(message, undefined, {}, () => then?.());
}

async function serve(start: Extract<SupervisorMessage, { type: 'start' }>): Promise<void> {
  const { config } = start;
  const log = pino({ level: config.logLevel, base: { pid: process.pid, role: 'server' } }, pino.destination({ dest: 1, sync: true }));
  const control = new SharedArrayBuffer(CONTROL_FIELDS * 4);
  const flags = new Int32Array(control);
  Atomics.store(flags, ControlField.VIRTUALIZE, start.virtualize ? 1 : 0);
  const treeOptions = treeOptionsFrom(config, control, { cpu: inheritedStateFile('cpu'), loadavg: inheritedStateFile('loadavg') });
  const server = new FuseServer({
    fd: FUSE_FD,
    mountPoint: config.mountpoint,
    readers: config.readers,
    fsModule: new URL('../lxcfs/tree.js', import.meta.url).href,
    fsOptions: treeOptions,
    logLevel: config.logLevel,
    initialized: start.initialized,
  });
  let stopping = false;
  let loadavg: LoadavgSampler | undefined;

  const stop = async (handoff: boolean): Promise<void> => {
    if (stopping) return;
    stopping = true;
    loadavg?.stop();
    const clean = await server.stop();
    // With every reader stopped nothing blocks exit. A reader stuck in the kernel would make exit()
    // hang: the supervisor aborts the connection then, or, without a supervisor, we kill ourselves.
    send({ type: 'stopped', clean, snapshots: handoff && clean ? SnapshotStore.dump(server.snapshots) : undefined }, () => {
      if (clean) process.exit(0);
      if (!process.connected) process.kill(process.pid, 'SIGKILL');
    });
  };

  process.on('message', (message: SupervisorMessage) => {
    if (message.type === 'stop') void stop(message.handoff);
    else if (message.type === 'virtualize') Atomics.store(flags, ControlField.VIRTUALIZE, message.on ? 1 : 0);
    else if (message.type === 'go') {
      if (message.snapshots) SnapshotStore.load(server.snapshots, message.snapshots);
      void begin(message.resend);
    }
  });
  // The supervisor is gone (killed): nobody holds the connection for a successor, so stop cleanly and
  // let the mount die with the last fd; the restarted service clears it and re-binds containers.
  process.on('disconnect', () => void stop(false));
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
    const resent = server.release({ resend });
    const init = await server.initialized();
    send({ type: 'serving', init, resent });
    log.debug({ resend, resent, restored }, 'reading');
  };

  await server.prepare();
  send({ type: 'ready' });
  if (!start.waitForGo) await begin(start.resend);
}

process.once('message', (message: SupervisorMessage) => {
  if (message.type !== 'start') return;
  serve(message).catch((err: Error) => send({ type: 'ended', reason: 'error', detail: err.message }, () => process.exit(1)));
});
