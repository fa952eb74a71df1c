// The main-thread side of a FUSE connection: starts the reader threads on a mounted /dev/fuse fd,
// waits for INIT, and stops the readers without losing a request.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ReaderData, ReaderExit, ReaderMessage } from './reader.js';
import { CONN_FIELDS, type InitInfo } from './session.js';
import { SnapshotStore } from './snapshots.js';

export interface FuseServerOptions {
  fd: number;
  mountPoint: string;
  readers: number;
  /** URL of the module exporting `createFileSystem` (loaded in every reader thread). */
  fsModule: string;
  /** Structured-cloneable; SharedArrayBuffers in it are shared with every reader. */
  fsOptions: unknown;
  logLevel: string;
}

export interface ServerEvents {
  /** All readers have left their loops; the reason of the last one. */
  exit: [reason: ReaderExit, detail?: string];
}

const STOP_TIMEOUT_MS = 700;

export class FuseServer extends EventEmitter<ServerEvents> {
  private readonly workers = new Set<Worker>();
  /** Random per instance: only this process can aim a LOOKUP at it. */
  private readonly stopName = `.lxcfs-ts-stop-${randomBytes(16).toString('hex')}`;
  private initInfo: InitInfo | undefined;

  constructor(private readonly options: FuseServerOptions) {
    super();
  }

  get negotiated(): InitInfo | undefined {
    return this.initInfo;
  }

  get activeReaders(): number {
    return this.workers.size;
  }

  /** Starts the readers and resolves once the kernel's INIT has been answered. */
  start(initTimeoutMs = 10_000): Promise<InitInfo> {
    const shared = {
      snapshots: SnapshotStore.allocate(),
      conn: new SharedArrayBuffer(CONN_FIELDS * 4),
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the kernel sent no FUSE INIT within ${initTimeoutMs} ms`)), initTimeoutMs);
      let lastExit: { reason: ReaderExit; detail?: string } = { reason: 'unmounted' };
      for (let index = 0; index < this.options.readers; index++) {
        const data: ReaderData = {
          index,
          fd: this.options.fd,
          fsModule: this.options.fsModule,
          fsOptions: this.options.fsOptions,
          ...shared,
          stopName: this.stopName,
          logLevel: this.options.logLevel,
        };
        // A small young generation keeps each reader's heap (and the daemon's RSS) small: requests allocate
        // little and briefly.
        const worker = new Worker(new URL('./reader.js', import.meta.url), {
          workerData: data,
          resourceLimits: { maxYoungGenerationSizeMb: 2 },
        });
        this.workers.add(worker);
        worker.on('message', (message: ReaderMessage) => {
          if (message.type === 'init') {
            clearTimeout(timer);
            this.initInfo = message.info;
            if (message.info.refused) reject(new Error(message.info.refused));
            else resolve(message.info);
          } else {
            lastExit = { reason: message.reason, detail: message.detail };
          }
        });
        worker.on('error', (err) => {
          lastExit = { reason: 'error', detail: `reader thread ${index} crashed: ${err.message}` };
        });
        worker.on('exit', () => {
          this.workers.delete(worker);
          if (this.workers.size === 0) {
            clearTimeout(timer);
            reject(new Error(lastExit.detail ?? `FUSE readers stopped before INIT (${lastExit.reason})`));
            this.emit('exit', lastExit.reason, lastExit.detail);
          }
        });
      }
    });
  }

  /** Stops every reader in-band: a LOOKUP of the secret stop name through the mount reaches exactly one
   * reader, which answers it and leaves its loop; repeated once per reader. Requests that arrive
   * meanwhile stay queued in the kernel. Resolves true when all readers stopped. */
  async stop(): Promise<boolean> {
    const deadline = Date.now() + STOP_TIMEOUT_MS * Math.max(1, this.workers.size);
    while (this.workers.size > 0 && Date.now() < deadline) {
      const before = this.workers.size;
      const exited = new Promise<void>((resolve) => {
        for (const worker of this.workers) worker.once('exit', () => resolve());
      });
      // From a child process: a stat stuck in this process's thread pool would keep it from exiting.
      const lookup = spawn('stat', ['--', path.join(this.options.mountPoint, this.stopName)], { stdio: 'ignore' });
      lookup.on('error', () => undefined);
      await Promise.race([exited, delay(STOP_TIMEOUT_MS)]);
      lookup.kill('SIGKILL');
      lookup.unref();
      if (this.workers.size === before) break;
    }
    return this.workers.size === 0;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
