// Keeps one serving process (server-process.ts) running on the FUSE connection this process holds.
// The connection (the /dev/fuse fd) never closes while we live, so containers' bind mounts stay valid
// across what happens to the serving code:
// - a crash or kill -9 of the serving process: a new one starts on the same fd and asks the kernel to
//   replay the requests the dead one had taken (FUSE_NOTIFY_RESEND, Linux ≥ 6.9);
// - an upgrade (`lxcfs-ts upgrade`, `systemctl reload`): the code on disk starts as a successor, gets
//   ready, the old one stops reading in-band and hands over its open file handles, then the successor
//   reads. Nothing is lost.

import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { InitFlag2 } from '../fuse/abi.js';
import type { InitInfo } from '../fuse/session.js';
import type { DaemonConfig } from './config.js';
import type { UpgradeOutcome } from './control.js';
import { FUSE_FD, type ServerMessage, type SupervisorMessage } from './server-messages.js';
import { openStateFile, STATE_FDS } from './state-files.js';
import type { MetricFamily } from '../metrics/families.js';

const SERVER_SCRIPT = new URL('./server-process.js', import.meta.url);
// Only catches a serving process that is wedged: one that is merely slow to start must not be killed, as
// its replacement starts from nothing again and is as slow. Under software emulation on a loaded host
// (the systemd test guest) a start has taken more than 60 s.
const READY_TIMEOUT_MS = 180_000;
const STOP_TIMEOUT_MS = 1500;
// An upgrade waits for the old serving process to stop in-band for as long as it makes progress: it says
// "stopped" by itself, clean or not, once a reader stalls (FuseServer.stop). Killing it instead loses the
// requests its readers hold on a kernel without FUSE_NOTIFY_RESEND. This only catches a wedged process.
const HANDOFF_TIMEOUT_MS = 60_000;
const MAX_RESTART_DELAY_MS = 5000;

export interface SupervisorEvents {
  /** The connection ended on its own (unmounted or aborted from outside). */
  ended: [reason: string, detail?: string];
}

interface Server {
  child: ChildProcess;
  /** Resolves with the next message of a type (or rejects when the process exits first). */
  next<T extends ServerMessage['type']>(type: T, timeoutMs: number): Promise<Extract<ServerMessage, { type: T }>>;
  exited: Promise<void>;
}

export class ServerSupervisor extends EventEmitter<SupervisorEvents> {
  private current: Server | undefined;
  private init: InitInfo | undefined;
  private virtualize = true;
  private stopping = false;
  private upgrading = false;
  private recentCrashes: number[] = [];
  /** For the metrics endpoint: upgrades done and refused, serving processes restarted after a crash. */
  readonly counts = { upgrades: 0, failedUpgrades: 0, restarts: 0 };
  /** The per-cgroup state every serving process inherits and continues (state-files.ts). */
  private readonly stateFiles: Array<number | undefined>;

  constructor(
    private readonly options: { config: DaemonConfig; fd: number; log: Logger },
  ) {
    super();
    this.stateFiles = Object.keys(STATE_FDS).map(() => openStateFile(options.log));
  }

  get negotiated(): InitInfo | undefined {
    return this.init;
  }

  /** Whether the kernel can replay requests a dead serving process had taken. */
  get resendAvailable(): boolean {
    return ((this.init?.flags2Offered ?? 0) & InitFlag2.HAS_RESEND) !== 0;
  }

  get serverPid(): number | undefined {
    return this.current?.child.pid;
  }

  /** Starts the first serving process and resolves once it has answered the kernel's INIT. */
  async start(): Promise<InitInfo> {
    const server = this.spawnServer({ waitForGo: false, resend: false });
    const serving = await server.next('serving', READY_TIMEOUT_MS);
    this.init = serving.init;
    this.adopt(server);
    return serving.init;
  }

  /** Replaces the serving process with the code on disk, without losing a request. Rejects with why it
   * could not (the old serving process then keeps serving). */
  async upgrade(): Promise<UpgradeOutcome> {
    const old = this.current;
    if (this.stopping || !old) throw new Error('the daemon is stopping');
    if (this.upgrading) throw new Error('an upgrade is already under way');
    this.upgrading = true;
    const { log } = this.options;
    try {
      const successor = this.spawnServer({ waitForGo: true, resend: false });
      try {
        await successor.next('ready', READY_TIMEOUT_MS);
      } catch (err) {
        successor.child.kill('SIGKILL');
        const why = `the new serving process did not get ready: ${(err as Error).message}; the old one keeps serving`;
        log.error(why);
        throw new Error(why, { cause: err });
      }
      // From here on the old process must not be restarted when it exits.
      this.current = undefined;
      // From the stop to the successor's first read, containers' requests wait in the kernel.
      const pausedFrom = performance.now();
      const handed = old.next('stopped', HANDOFF_TIMEOUT_MS).catch(() => undefined);
      old.child.send({ type: 'stop', handoff: true } satisfies SupervisorMessage);
      const stopped = await handed;
      if (!stopped?.clean) {
        // It could not stop in-band: kill it; with RESEND the successor has the kernel replay whatever it
        // had taken.
        old.child.kill('SIGKILL');
        await old.exited;
        log.warn(
          { server: old.child.pid, resend: this.resendAvailable },
          this.resendAvailable
            ? 'the old serving process did not stop in-band: killed it; the kernel replays the requests it had taken'
            : 'the old serving process did not stop in-band: killed it; the requests it had taken are lost (this kernel has no FUSE_NOTIFY_RESEND), and their callers wait until the mount is aborted',
        );
      }
      const serving = successor.next('serving', READY_TIMEOUT_MS);
      const handedOver = !!stopped?.handedOver;
      successor.child.send({ type: 'go', handedOver, resend: !stopped?.clean && this.resendAvailable } satisfies SupervisorMessage);
      try {
        await serving;
      } catch (err) {
        // The old serving process is gone: without a new one every container's reads would wait for good.
        successor.child.kill('SIGKILL');
        const why = `the new serving process failed once the old one had stopped: ${(err as Error).message}; starting a fresh one`;
        log.error(why);
        // Killed just now: its exit status is not in yet, and would only say SIGKILL.
        this.restartAfterCrash({ killed: 'by the supervisor, for the failure logged before' });
        throw new Error(why, { cause: err });
      }
      this.adopt(successor);
      const pausedMs = Math.round(performance.now() - pausedFrom);
      log.info({ from: old.child.pid, to: successor.child.pid, handedOver, pausedMs }, 'upgraded the serving process');
      this.counts.upgrades++;
      return { from: old.child.pid, to: successor.child.pid! };
    } catch (err) {
      this.counts.failedUpgrades++;
      throw err;
    } finally {
      this.upgrading = false;
    }
  }

  /** The serving process's metrics; undefined when none is serving or it does not answer in time. */
  async serverMetrics(timeoutMs: number): Promise<MetricFamily[] | undefined> {
    const server = this.current;
    if (!server) return undefined;
    const answer = server.next('metrics', timeoutMs).catch(() => undefined);
    server.child.send({ type: 'metrics' } satisfies SupervisorMessage);
    return (await answer)?.families;
  }

  setVirtualize(on: boolean): void {
    this.virtualize = on;
    this.current?.child.send({ type: 'virtualize', on } satisfies SupervisorMessage);
  }

  /** Stops the serving process; false if it did not stop in time (the caller aborts the connection). */
  async stop(): Promise<boolean> {
    this.stopping = true;
    const server = this.current;
    this.current = undefined;
    if (!server || server.child.exitCode !== null) return true;
    const stopped = server.next('stopped', STOP_TIMEOUT_MS).catch(() => undefined);
    server.child.send({ type: 'stop', handoff: false } satisfies SupervisorMessage);
    const result = await stopped;
    // Stopped means gone: until the process has exited its fd holds the connection open, and a container's
    // read queued meanwhile would fail with ECONNABORTED when that fd closes, instead of ENOTCONN.
    const gone =
      !!result?.clean &&
      (await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), STOP_TIMEOUT_MS).unref();
        void server.exited.then(() => (clearTimeout(timer), resolve(true)));
      }));
    if (!gone) server.child.kill('SIGKILL');
    return gone;
  }

  private spawnServer(start: { waitForGo: boolean; resend: boolean }): Server {
    const { config, fd } = this.options;
    const env = { ...process.env };
    delete env.NOTIFY_SOCKET; // only the supervisor talks to systemd
    // Through a shell that ignores SIGUSR1 until Node has blocked it for good (--disable-sigusr1): see
    // bin/lxcfs-ts. A small young generation: requests allocate little and briefly, and idle RSS is what
    // hosts notice. No memory reducer: it woke the idle process every 8 s for about 6 ms of CPU (its
    // collections, then page faults to take the freed young pages back), and gave back no memory: after
    // 20,000 reads the process held 45.8 MB a minute later with it and without it.
    const node = [process.execPath, '--disable-sigusr1', '--max-semi-space-size=1', '--no-memory-reducer', '--expose-gc', SERVER_SCRIPT.pathname];
    const child = spawn('/bin/sh', ['-c', 'trap "" USR1; exec "$0" "$@"', ...node], {
      stdio: ['ignore', 'inherit', 'inherit', fd, 'ipc', ...this.stateFiles.map((file) => file ?? 'ignore')],
      env,
    });
    if (child.stdio.length <= FUSE_FD) throw new Error('the serving process did not get the FUSE fd');
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // A message to a serving process that died meanwhile fails with EPIPE; its 'exit' restarts it, and
    // an unhandled 'error' would end the daemon.
    child.on('error', (err) => this.options.log.warn({ server: child.pid, err: err.message }, 'could not reach the serving process'));
    const server: Server = {
      child,
      exited,
      next: (type, timeoutMs) =>
        new Promise((resolve, reject) => {
          const onMessage = (message: ServerMessage): void => {
            if (message.type === 'ended') return fail(new Error(`the serving process ended: ${message.detail ?? message.reason}`));
            if (message.type !== type) return;
            done();
            resolve(message as never);
          };
          const onExit = (code: number | null, signal: string | null): void =>
            fail(new Error(`the serving process exited (${signal ?? `status ${code}`}) before "${type}"`));
          const timer = setTimeout(() => fail(new Error(`the serving process sent no "${type}" within ${timeoutMs} ms`)), timeoutMs);
          const done = (): void => {
            clearTimeout(timer);
            child.off('message', onMessage);
            child.off('exit', onExit);
          };
          const fail = (err: Error): void => {
            done();
            reject(err);
          };
          child.on('message', onMessage);
          child.once('exit', onExit);
        }),
    };
    child.send({
      type: 'start',
      config,
      virtualize: this.virtualize,
      initialized: this.init,
      waitForGo: start.waitForGo,
      resend: start.resend,
    } satisfies SupervisorMessage);
    return server;
  }

  /** Makes `server` the current one: its unexpected death restarts it, its 'ended' ends us. */
  private adopt(server: Server): void {
    this.current = server;
    server.child.on('message', (message: ServerMessage) => {
      if (message.type === 'ended' && this.current === server && !this.stopping) {
        this.current = undefined;
        this.emit('ended', message.reason, message.detail);
      }
    });
    server.child.once('exit', (code, signal) => {
      if (this.current !== server || this.stopping) return;
      this.current = undefined;
      this.restartAfterCrash({ code, signal });
    });
  }

  /** `how`: how the serving process ended, for the log (its exit status, or that we killed it). */
  private restartAfterCrash(how: { code: number | null; signal: NodeJS.Signals | null } | { killed: string }): void {
    const { log } = this.options;
    const now = Date.now();
    this.recentCrashes = [...this.recentCrashes.filter((at) => now - at < 60_000), now];
    // Back off when it keeps dying (bad code, bad host): the mount stays, requests wait in the kernel.
    const delay = Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** (this.recentCrashes.length - 1)) - 100;
    const resend = this.resendAvailable;
    this.counts.restarts++;
    log.error({ ...how, restartInMs: Math.max(0, delay), resend }, 'the serving process died; starting a new one on the same connection');
    setTimeout(() => {
      if (this.stopping) return;
      const server = this.spawnServer({ waitForGo: false, resend });
      server
        .next('serving', READY_TIMEOUT_MS)
        .then((serving) => log.info({ server: server.child.pid, resent: serving.resent }, 'serving again'))
        .catch((err: Error) => log.error({ err: err.message }, 'the new serving process failed to start'));
      this.adopt(server);
    }, Math.max(0, delay));
  }
}
