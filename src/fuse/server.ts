// The main-thread side of a FUSE connection: starts the reader threads on a mounted /dev/fuse fd, waits
// for INIT, and stops the readers without losing a request. A server can also take over a
// connection another process served (no INIT then), get fully ready before it reads, and ask the kernel
// to replay requests a crashed predecessor had taken (FUSE_NOTIFY_RESEND).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { NotifyCode, OutHeader } from './abi.js';
import type { ReaderData } from './reader.js';
import type { ReaderExit, ReaderMessage } from './thread-messages.js';
import { CONN_FIELDS, type InitInfo } from './session.js';
import { SnapshotStore, type SnapshotMemory, type TenantLimits } from './snapshots.js';
import type { Logger } from 'pino';
import type { LogRecord } from '../util/thread-log.js';
import { allocateRequestStats } from './request-stats.js';
import { allocateGcStats, collectGarbage, foldsDue, observeGc, requestFold, type GcStatsMemory } from '../util/gc-stats.js';
import { FairQueue } from './fair-queue.js';

export interface FuseServerOptions {
  fd: number;
  mountPoint: string;
  readers: number;
  /** URL of the module exporting `createFileSystem` (loaded in every reader thread). */
  fsModule: string;
  /** Structured-cloneable; SharedArrayBuffers in it are shared with every reader. */
  fsOptions: unknown;
  /** Writes the reader threads' log records too (at its level). */
  log: Logger;
  /** Taking over a connection whose INIT a predecessor answered: what was negotiated. */
  initialized?: InitInfo;
  /** The predecessor's file handles and snapshots (a graceful handoff). */
  snapshots?: SnapshotMemory;
  /** Count requests and garbage collections for the metrics endpoint (requestStats, gcStats). */
  countRequests?: boolean;
  /** What one tenant (see Tenancy) may hold; SnapshotStore's defaults without it. */
  tenantLimits?: TenantLimits;
}

export interface ServerEvents {
  /** All readers have left their loops; the reason of the last one. */
  exit: [reason: ReaderExit, detail?: string];
}

/** How long a lookup that wakes the readers may take before its process is killed. */
const WAKE_TIMEOUT_MS = 700;
/** How long stopping waits for the next reader to leave before it gives up on the rest. Generous: on a
 * slow host (loaded, or a guest under emulation) starting the process that sends the stop lookups and a
 * reader answering one take seconds, and giving up means the caller kills readers that may hold
 * requests, which a kernel without FUSE_NOTIFY_RESEND never replays. */
const STOP_STALL_MS = 15_000;
const GO = 0;
/** How often a grown snapshot pool is checked for shrinking. */
const COMPACT_INTERVAL_MS = 2000;

export class FuseServer extends EventEmitter<ServerEvents> {
  private readonly workers = new Set<Worker>();
  private readonly poolPorts: MessagePort[] = [];
  /** Random per instance: only this process can aim a LOOKUP at them. */
  private readonly stopName = `.lxcfs-ts-stop-${randomBytes(16).toString('hex')}`;
  private readonly wakeName = `.lxcfs-ts-wake-${randomBytes(16).toString('hex')}`;
  private readonly go = new Int32Array(new SharedArrayBuffer(4));
  readonly snapshots: SnapshotMemory;
  /** The readers' request counters (request-stats.ts), when counting. */
  readonly requestStats: SharedArrayBuffer | undefined;
  /** Garbage collections of every thread (gc-stats.ts), when counting: a slot per reader, then this
   * thread's. */
  readonly gcStats: GcStatsMemory | undefined;
  private stopObservingGc: (() => void) | undefined;
  private initInfo: InitInfo | undefined;
  private initWaiters: Array<{ resolve: (info: InitInfo) => void; reject: (err: Error) => void }> = [];
  private lastExit: { reason: ReaderExit; detail?: string } = { reason: 'unmounted' };
  private finished = false;

  constructor(private readonly options: FuseServerOptions) {
    super();
    this.requestStats = options.countRequests ? allocateRequestStats(options.readers) : undefined;
    this.gcStats = options.countRequests ? allocateGcStats(options.readers + 1) : undefined;
    if (this.gcStats) this.stopObservingGc = observeGc(this.gcStats, this.gcSlots.main);
    this.snapshots = options.snapshots ?? SnapshotStore.allocate(options.tenantLimits);
    this.initInfo = options.initialized;
  }

  /** While the snapshot pool is larger than its first size, tries to compact it every
   * COMPACT_INTERVAL_MS; otherwise sleeps until a reader grows it. */
  private async compactWhileGrown(): Promise<void> {
    const store = new SnapshotStore(this.snapshots);
    while (!this.finished) {
      if (!store.isGrown()) {
        await store.grown();
        continue;
      }
      await delay(COMPACT_INTERVAL_MS);
      if (!this.finished) this.compactSnapshots();
    }
  }

  /** Gives the snapshot pool back to the system once it is mostly free: a compacted copy goes to every
   * reader, and the old one is collected here and in each reader. */
  private compactSnapshots(): void {
    const compacted = new SnapshotStore(this.snapshots).compact((message) => {
      for (const port of this.poolPorts) port.postMessage(message);
    });
    if (!compacted) return;
    // Readers blocked in read() take the new pool up at their next request, and let the old one go.
    this.wakeReaders();
    collectGarbage?.();
  }

  /** Gives every reader blocked in read() a request to answer (an unknown name to look up, once per
   * reader: the kernel wakes the reader that has waited longest), so that it takes up what the main
   * thread asked of it. */
  private wakeReaders(): void {
    if (Atomics.load(this.go, GO) === 1 && this.workers.size > 0) setTimeout(this.lookUp(this.wakeName, this.workers.size), WAKE_TIMEOUT_MS).unref();
  }

  /** Looks `name` up in the mount's root `times` times, one after the other, from a child process (a
   * lookup stuck in this process's thread pool would keep it from exiting). Returns what kills it. */
  private lookUp(name: string, times: number): () => void {
    const target = path.join(this.options.mountPoint, name);
    const lookups = spawn('stat', ['--', ...Array.from({ length: times }, () => target)], { stdio: 'ignore' });
    lookups.on('error', () => undefined);
    lookups.unref();
    return () => void lookups.kill('SIGKILL');
  }

  /** Which gcStats slots are whose. */
  get gcSlots(): { readers: number[]; main: number } {
    const readers = this.options.readers;
    return { readers: Array.from({ length: readers }, (_, i) => i), main: readers };
  }

  /** Has every reader that is due to fold what its GC profiler recorded into gcStats (foldsDue) do so:
   * readers do at their next request, which this gives them, and it waits for them up to `timeoutMs`. A
   * quiet daemon's readers are not due, and not woken. */
  async foldGcStats(timeoutMs = 200): Promise<void> {
    if (!this.gcStats || this.workers.size === 0) return;
    const due = foldsDue(this.gcStats, this.gcSlots.readers);
    if (due.length === 0) return;
    const folded = requestFold(this.gcStats);
    this.wakeReaders();
    for (const deadline = performance.now() + timeoutMs; !folded(due) && performance.now() < deadline; ) await delay(1);
  }

  get negotiated(): InitInfo | undefined {
    return this.initInfo;
  }

  get activeReaders(): number {
    return this.workers.size;
  }

  /** Starts the reader threads and resolves when every one has built its filesystem; they wait for
   * `release()` before their first read. */
  prepare(): Promise<void> {
    const conn = new SharedArrayBuffer(CONN_FIELDS * 4);
    const queue = FairQueue.allocate();
    // A small young generation keeps each thread's heap (and the daemon's RSS) small: requests allocate
    // little and briefly. A small old generation makes V8 collect it: a thread that blocks in read() never
    // runs the idle-time tasks that would, and with the default (4 GiB here) no full collection came
    // within 4e6 reads while a trickle of garbage kept growing it. A reader's live heap is about 6 MB
    // (code, and caches that are bounded).
    const resourceLimits = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 32 };
    const ready: Array<Promise<void>> = [];
    for (let index = 0; index < this.options.readers; index++) {
      const pool = new MessageChannel();
      this.poolPorts.push(pool.port1);
      const data: ReaderData = {
        index,
        fd: this.options.fd,
        fsModule: this.options.fsModule,
        fsOptions: this.options.fsOptions,
        snapshots: this.snapshots,
        queue,
        poolPort: pool.port2,
        conn,
        go: this.go.buffer,
        stopName: this.stopName,
        logLevel: this.options.log.level,
        stats: this.requestStats,
        gc: this.gcStats,
      };
      const worker = new Worker(new URL('./reader.js', import.meta.url), {
        workerData: data,
        transferList: [pool.port2],
        resourceLimits,
      });
      this.workers.add(worker);
      ready.push(
        new Promise((resolve, reject) => {
          worker.on('message', (message: ReaderMessage) => {
            if (message.type === 'ready') resolve();
            else if (message.type === 'log') this.write(message.record);
            else if (message.type === 'init') this.settleInit(message.info);
            else if (message.reason === 'refused') this.refused();
            else if (!this.lastExit.detail) this.lastExit = { reason: message.reason, detail: message.detail };
          });
          worker.on('error', (err) => {
            this.lastExit = { reason: 'error', detail: `reader thread ${index} crashed: ${err.message}` };
            reject(new Error(this.lastExit.detail));
          });
        }),
      );
      worker.on('exit', () => {
        this.workers.delete(worker);
        if (this.workers.size === 0) this.finish();
      });
    }
    return Promise.all(ready).then(() => undefined);
  }

  /** A refused INIT ends the connection, but the other readers stay blocked in read(), which the kernel
   * does not end: the server is done without them, and the process exits with them. */
  private refused(): void {
    this.lastExit = { reason: 'refused' };
    for (const worker of this.workers) worker.unref();
    this.workers.clear();
    this.finish();
  }

  /** Ends the server once: the last reader left, or INIT was refused. */
  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.stopObservingGc?.();
    for (const port of this.poolPorts) port.close();
    this.settleInit(undefined);
    this.emit('exit', this.lastExit.reason, this.lastExit.detail);
  }

  /** Lets the readers read. With `resend`, first asks the kernel to re-queue every request already taken
   * by a reader that no longer exists (a crashed predecessor); false if the kernel refused that. */
  release(options: { resend?: boolean } = {}): boolean {
    let resent = true;
    if (options.resend) {
      try {
        fs.writeSync(this.options.fd, OutHeader.notification(NotifyCode.RESEND));
      } catch {
        resent = false; // EINVAL: a kernel without FUSE_NOTIFY_RESEND
      }
    }
    Atomics.store(this.go, GO, 1);
    Atomics.notify(this.go, GO);
    void this.compactWhileGrown();
    return resent;
  }

  /** Resolves with what INIT negotiated (at once when taking over an initialized connection). */
  initialized(timeoutMs = 30_000): Promise<InitInfo> {
    if (this.initInfo) return Promise.resolve(this.initInfo);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the kernel sent no FUSE INIT within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      this.initWaiters.push({
        resolve: (info) => (clearTimeout(timer), resolve(info)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      });
    });
  }

  /** prepare + release + initialized, for a fresh mount. */
  async start(initTimeoutMs = 30_000): Promise<InitInfo> {
    await this.prepare();
    this.release();
    return this.initialized(initTimeoutMs);
  }

  /** A reader thread's log record, written by this thread's logger. */
  private write(record: LogRecord): void {
    this.options.log[record.level](record.fields, record.message);
  }

  private settleInit(info: InitInfo | undefined): void {
    if (info && !info.refused) this.initInfo = info;
    const waiters = this.initWaiters;
    this.initWaiters = [];
    for (const waiter of waiters) {
      if (info && !info.refused) waiter.resolve(info);
      else waiter.reject(new Error(info?.refused ?? this.lastExit.detail ?? `FUSE readers stopped before INIT (${this.lastExit.reason})`));
    }
  }

  /** Stops every reader in-band: a LOOKUP of the secret stop name through the mount reaches exactly one
   * reader, which answers it, serves what it must of the fair queue and leaves; one lookup per reader,
   * one after the other. Requests that arrive meanwhile stay queued in the kernel. Resolves true when all
   * readers stopped, false when none left for STOP_STALL_MS. */
  async stop(): Promise<boolean> {
    // Readers still waiting for release() leave at once.
    if (Atomics.load(this.go, GO) === 0) {
      Atomics.store(this.go, GO, -1);
      Atomics.notify(this.go, GO);
    }
    const stopLookups = Atomics.load(this.go, GO) === 1 && this.workers.size > 0 ? this.lookUp(this.stopName, this.workers.size) : undefined;
    try {
      while (this.workers.size > 0) {
        const exited = new Promise<boolean>((resolve) => {
          for (const worker of this.workers) worker.once('exit', () => resolve(true));
        });
        if (!(await Promise.race([exited, delay(STOP_STALL_MS).then(() => false)]))) break;
      }
    } finally {
      stopLookups?.();
    }
    return this.workers.size === 0;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
