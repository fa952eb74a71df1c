// The intake thread: takes every request off /dev/fuse as soon as the kernel has it and queues it under
// its caller's tenant (fair-queue.ts) for the reader threads. It renders nothing itself, so the kernel's
// FIFO, which would make everyone wait behind the busiest tenant, stays short.

import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { InHeader, READ_BUFFER_SIZE } from './abi.js';
import { FairQueue, type FairQueueMemory } from './fair-queue.js';
import type { Caller, Tenancy, TenancyFactory } from './filesystem.js';
import { READER_EXITS, type ReaderExit, type ReaderMessage } from './thread-messages.js';
import { isStopRequest } from './session.js';

export interface IntakeData {
  fd: number;
  fsModule: string;
  fsOptions: unknown;
  queue: FairQueueMemory;
  /** Int32 0: wait before the first read; 1: read; -1: leave without reading. */
  go: SharedArrayBuffer;
  stopName: string;
}

const data = workerData as IntakeData;
const port = parentPort!;
const fsModule = (await import(data.fsModule)) as { createTenancy?: TenancyFactory };
const tenancy: Tenancy | undefined = fsModule.createTenancy?.(data.fsOptions);
const queue = new FairQueue<ReaderExit>(data.queue, READER_EXITS);

function intake(): { reason: ReaderExit; detail?: string } {
  const request = Buffer.alloc(READ_BUFFER_SIZE);
  const caller: Caller = { pid: 0, uid: 0, gid: 0 };
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(data.fd, request, 0, request.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EINTR: a signal; ENOENT: the request was aborted while being copied; EAGAIN: nothing queued.
      if (code === 'EINTR' || code === 'ENOENT' || code === 'EAGAIN') continue;
      if (code === 'ENODEV') return { reason: 'unmounted' };
      if (code === 'ECONNABORTED') return { reason: 'aborted' };
      return { reason: 'error', detail: `read from /dev/fuse failed: ${code ?? String(err)}` };
    }
    caller.uid = InHeader.uid(request);
    caller.gid = InHeader.gid(request);
    caller.pid = InHeader.pid(request);
    // A reader answers the stop request like any other; nothing after it is ours to take.
    const stop = isStopRequest(request, n, data.stopName);
    if (!queue.put(tenancy?.keyOf(caller) ?? 0, request, n)) return { reason: queue.closedFor() ?? 'sentinel' };
    if (stop) return { reason: 'sentinel' };
  }
}

port.postMessage({ type: 'ready' } satisfies ReaderMessage);
const go = new Int32Array(data.go);
Atomics.wait(go, 0, 0);
const exit = Atomics.load(go, 0) === 1 ? intake() : { reason: 'sentinel' as const };
// The readers serve what is queued, then stop for the same reason.
queue.close(exit.reason);
port.postMessage({ type: 'exit', ...exit } satisfies ReaderMessage);
