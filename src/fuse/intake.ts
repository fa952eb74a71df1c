// The intake thread: takes every request off /dev/fuse as soon as the kernel has it and queues it under
// its caller's tenant (fair-queue.ts) for the reader threads. It renders nothing itself, so the kernel's
// FIFO, which would make everyone wait behind the busiest tenant, stays short.
//
// It only stays short if the intake gets a CPU whenever a request is waiting. Under a flood of requests
// from one container the readers are always runnable too; at the same priority as theirs the intake
// waited for a CPU four fifths of the time, never caught up, and a quiet container's requests sat in the
// kernel's FIFO behind the flood before the fair queue ever saw them. So the intake runs at a higher priority (a lower nice value) than the readers. Its work per request is
// a few microseconds and it reads only as fast as requests arrive, bounded by the queue's slots, so it
// cannot starve the readers; and per-thread nice values only share out the CPU time the daemon's own
// group (its cgroup or autogroup) gets, so the daemon takes no more from anyone else.

import fs from 'node:fs';
import os from 'node:os';
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

/** How much lower than the daemon's nice value the intake's is: weight 9548 to a reader's 1024 at nice 0. */
const INTAKE_NICE_BELOW = 10;

/** Raises this thread's priority (on Linux, setpriority on the calling thread affects that thread only).
 * Without CAP_SYS_NICE (or room under RLIMIT_NICE) it stays where it is: fair order still holds, it is
 * only reached later under load. */
function raisePriority(): void {
  try {
    os.setPriority(Math.max(-20, os.getPriority() - INTAKE_NICE_BELOW));
  } catch {
    // EACCES: not permitted; serve at the same priority as the readers.
  }
}

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
raisePriority();
const go = new Int32Array(data.go);
Atomics.wait(go, 0, 0);
const exit = Atomics.load(go, 0) === 1 ? intake() : { reason: 'sentinel' as const };
// The readers serve what is queued, then stop for the same reason.
queue.close(exit.reason);
port.postMessage({ type: 'exit', ...exit } satisfies ReaderMessage);
