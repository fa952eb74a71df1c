// A serving thread: a synchronous take → dispatch → write loop. Requests come from the fair queue that the
// intake thread fills from /dev/fuse; replies go straight to the shared fd. Synchronous I/O in worker
// threads measured ~2× faster than libuv pool reads here, and keeps the main thread free for signals and
// supervision.
//
// The intake is this same module in the other role: it takes every request off /dev/fuse as soon as the
// kernel has it and queues it under its caller's tenant (fair-queue.ts), so the kernel's FIFO, which
// would make everyone wait behind the busiest tenant, stays short. When it had to wait for a request,
// nothing is queued and no reader is serving, there is no one to be fair to: it serves the request
// itself, saving the hand-over (a thread wake-up, tens of microseconds on a VM) that would otherwise be
// most of a quiet read's latency.
//
// A request on an open handle (READ, POLL) counts against the tenant that opened it, which the
// snapshot store recorded; only the others cost a look at the caller (a readlink of its pid namespace,
// a few microseconds that a flood of one-byte reads would otherwise pay on every request).

import fs from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { InHeader, Op, OP_NAMES, PollIn, READ_BUFFER_SIZE, ReadIn } from './abi.js';
import { FairQueue, type FairQueueMemory } from './fair-queue.js';
import type { Caller, FileSystemFactory, Tenancy, TenancyFactory } from './filesystem.js';
import { isStopRequest, Session } from './session.js';
import { READER_EXITS, type ReaderExit, type ReaderMessage } from './thread-messages.js';
import { SnapshotStore, type PoolMessage, type SnapshotMemory } from './snapshots.js';
import { threadLog } from '../util/thread-log.js';
import { RequestRecorder } from './request-stats.js';
import { ProfiledGc, type GcStatsMemory } from '../util/gc-stats.js';

export interface ReaderData {
  /** The intake reads /dev/fuse and queues (serving a request itself only when no one waits); readers
   * serve the queue. */
  role: 'intake' | 'reader';
  index: number;
  fd: number;
  /** URL of a module whose `createFileSystem` export is a FileSystemFactory. */
  fsModule: string;
  fsOptions: unknown;
  snapshots: SnapshotMemory;
  queue: FairQueueMemory;
  /** Where the main thread posts a compacted snapshot pool (PoolMessage). */
  poolPort: MessagePort;
  conn: SharedArrayBuffer;
  /** Int32 0: wait before the first read; 1: read; -1: leave without reading. */
  go: SharedArrayBuffer;
  stopName: string;
  /** The lowest level logged: records go to the main thread (thread-log.ts). */
  logLevel: string;
  /** Request counters (request-stats.ts), when metrics are on. */
  stats?: SharedArrayBuffer;
  /** Garbage collection counters (gc-stats.ts), when metrics are on: this thread's slot is its index
   * (the intake's comes after the readers'). */
  gc?: GcStatsMemory;
}

const data = workerData as ReaderData;
const queue = new FairQueue<ReaderExit>(data.queue, READER_EXITS);
const port = parentPort!;
const log = threadLog(data.logLevel, data.role === 'intake' ? { intake: true } : { reader: data.index }, (record) =>
  port.postMessage({ type: 'log', record } satisfies ReaderMessage),
);

const fsModule = (await import(data.fsModule)) as { createFileSystem: FileSystemFactory; createTenancy?: TenancyFactory };
const filesystem = await fsModule.createFileSystem(data.fsOptions, log);
const tenancy: Tenancy | undefined = fsModule.createTenancy?.(data.fsOptions);
const debug = log.isLevelEnabled('debug');

let poolReplaced = false;
const snapshots = new SnapshotStore(data.snapshots, () => {
  let newest: PoolMessage | undefined;
  for (let received = receiveMessageOnPort(data.poolPort); received; received = receiveMessageOnPort(data.poolPort)) {
    newest = received.message as PoolMessage;
  }
  poolReplaced = newest !== undefined;
  return newest;
});

const LIMIT_MESSAGES = {
  handles: 'a container holds as many handles as it may; its opens fail with EMFILE until it closes some (other containers are not affected)',
  memory: 'a container holds as much snapshot memory as it may; its reads of files larger than the read size fail with ENOMEM until it closes handles (other containers are not affected)',
  table: 'the handle table is full (too many containers hold handles); opens fail with ENFILE',
  pool: 'the snapshot pool is at its cap; reads of files larger than the read size fail with ENOMEM',
} as const;

const session = new Session(filesystem, snapshots, {
  stopName: data.stopName,
  conn: new Int32Array(data.conn),
  onLimit: (limit) =>
    log.warn({ limit: limit.kind, ...tenancy?.describe(limit.tenant, limit.caller), pid: limit.caller.pid, errno: limit.errno }, `reached its limit: ${LIMIT_MESSAGES[limit.kind]}`),
  onInit: (info) => port.postMessage({ type: 'init', info } satisfies ReaderMessage),
  onHandlerError: (opcode, nodeid, err) =>
    log.error({ op: OP_NAMES[opcode] ?? opcode, node: nodeid, err }, 'request handler failed; answered EIO'),
  trace: debug
    ? (opcode, nodeid, caller, error) =>
        log.debug({ op: OP_NAMES[opcode] ?? opcode, node: nodeid, pid: caller.pid, uid: caller.uid, error }, 'request')
    : undefined,
});

const stats = data.stats && new RequestRecorder(data.stats, data.index);
const gc = data.gc && new ProfiledGc(data.gc, data.index);

/** Drops the last reference to a pool compaction replaced: a thread that blocks in read() may not
 * collect for a long time, and the old pool is most of the daemon's memory. */
function collectReplacedPool(): void {
  if (!poolReplaced) return;
  poolReplaced = false;
  (globalThis as { gc?: () => void }).gc?.();
}

/** A reader with nothing to serve takes up a compacted pool when the main thread nudges it, not only at
 * its next request. */
function adoptPoolWhileIdle(): void {
  snapshots.adoptPublishedPool();
  collectReplacedPool();
  gc?.foldIfAsked();
}

/** Answers one request; returns false when the connection has ended (a refused INIT). */
function serve(request: Buffer, n: number, tenant: number, reply: Buffer): boolean {
  stats?.begin(request);
  const length = session.handle(request, n, reply, tenant);
  stats?.end(session.lastError);
  if (length > 0) {
    try {
      fs.writeSync(data.fd, reply, 0, length);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOENT: the request is gone (interrupted, aborted, or a release raced with unmount).
      if (code !== 'ENOENT') log.error({ err, op: OP_NAMES[InHeader.opcode(request)] }, 'writing a reply to /dev/fuse failed');
    }
  }
  collectReplacedPool();
  gc?.tick();
  // A refused INIT ends the connection: nothing more will come. (The stop request is the intake's to act
  // on: requests queued before it are still served.)
  return session.stopReason !== 'refused';
}

/** Serves until the queue is closed and drained; the intake says why. */
function serveQueue(): { reason: ReaderExit } {
  const reply = Buffer.alloc(READ_BUFFER_SIZE);
  for (;;) {
    const slot = queue.take(adoptPoolWhileIdle);
    if (slot === undefined) return { reason: queue.closedFor() ?? 'sentinel' };
    const served = serve(queue.request(slot), queue.length(slot), queue.tenant(slot), reply);
    queue.done(slot);
    if (!served) {
      queue.close('refused');
      return { reason: 'refused' };
    }
  }
}

function tenantOf(request: Buffer, caller: Caller): number {
  if (tenancy === undefined) return 0;
  let handle: number | undefined;
  switch (InHeader.opcode(request)) {
    case Op.READ:
      handle = ReadIn.fh(request);
      break;
    case Op.POLL:
      handle = PollIn.fh(request);
      break;
  }
  return (handle !== undefined ? snapshots.tenantOfHandle(handle) : undefined) ?? tenancy.keyOf(caller);
}

/** A read of /dev/fuse that takes longer than this found nothing waiting: it slept until a request came.
 * (Taking one that is already there costs a few microseconds; a wake-up, tens.) */
const WAITED_MS = 0.015;

/** Takes requests off /dev/fuse until the stop request or the end of the connection. */
function intake(): { reason: ReaderExit; detail?: string } {
  const request = Buffer.alloc(READ_BUFFER_SIZE);
  const reply = Buffer.alloc(READ_BUFFER_SIZE);
  const caller: Caller = { pid: 0, uid: 0, gid: 0 };
  for (;;) {
    let n: number;
    const asked = performance.now();
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
    const opcode = InHeader.opcode(request);
    // The kernel sends RELEASE in the background, at most max_background (12) outstanding; queued behind
    // renders they trickle, and a container that opens and closes in a loop reaches its handle limit with
    // files it has long closed. Freeing a handle costs less than queueing it: always here, at once.
    if (opcode === Op.RELEASE) {
      serve(request, n, 0, reply);
      continue;
    }
    caller.uid = InHeader.uid(request);
    caller.gid = InHeader.gid(request);
    caller.pid = InHeader.pid(request);
    const tenant = tenantOf(request, caller);
    // A reader answers the stop request and INIT (which the main thread waits to hear of) like any other;
    // nothing after the stop request is ours to take.
    const stop = isStopRequest(request, n, data.stopName);
    // Served here only if the read waited for it: a request that was already there had others, maybe a
    // whole queue, arrive while the intake was busy, and serving them here one by one would be the
    // kernel's FIFO again.
    const waited = performance.now() - asked > WAITED_MS;
    if (waited && !stop && opcode !== Op.INIT && queue.idle()) {
      serve(request, n, tenant, reply);
      continue;
    }
    if (!queue.put(tenant, request, n)) return { reason: queue.closedFor() ?? 'sentinel' };
    gc?.tick();
    if (stop) return { reason: 'sentinel' };
  }
}

port.postMessage({ type: 'ready' } satisfies ReaderMessage);
// A successor builds everything first and reads only once its predecessor has stopped reading.
const go = new Int32Array(data.go);
Atomics.wait(go, 0, 0);
const exit: { reason: ReaderExit; detail?: string } =
  Atomics.load(go, 0) !== 1 ? { reason: 'sentinel' } : data.role === 'intake' ? intake() : serveQueue();
// The readers serve what is queued, then stop for the same reason.
if (data.role === 'intake') queue.close(exit.reason);
port.postMessage({ type: 'exit', ...exit } satisfies ReaderMessage);
