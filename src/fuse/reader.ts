// A reader thread: a synchronous read → dispatch → write loop on the shared /dev/fuse fd. Synchronous I/O
// in worker threads measured ~2× faster than libuv pool reads here, and keeps the main thread free for
// signals and supervision.
//
// Every reader reads /dev/fuse itself, as libfuse's threads do, and serves what it read when nothing
// else is waiting: the kernel then wakes the reader that waited longest and that reader answers, with no
// hand-over to another thread. When requests were already waiting in the kernel (a read that returned at
// once), the daemon is busy and the kernel's FIFO would make everyone wait behind the busiest tenant: the
// reader queues what it read under its caller's tenant and reads again, draining the kernel's queue, and
// readers serve the fair queue round robin between tenants (fair-queue.ts).
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
import type { ReaderExit, ReaderMessage } from './thread-messages.js';
import { SnapshotStore, type PoolMessage, type SnapshotMemory } from './snapshots.js';
import { threadLog } from '../util/thread-log.js';
import { RequestRecorder } from './request-stats.js';
import { collectGarbage, ProfiledGc, type GcStatsMemory } from '../util/gc-stats.js';

export interface ReaderData {
  index: number;
  fd: number;
  /** URL of a module whose `createFileSystem` export is a FileSystemFactory. */
  fsModule: string;
  fsOptions: unknown;
  snapshots: SnapshotMemory;
  queue: FairQueueMemory;
  /** Where the main thread posts a compacted snapshot pool (PoolMessage), taken up at the next request. */
  poolPort: MessagePort;
  conn: SharedArrayBuffer;
  /** Int32 0: wait before the first read; 1: read; -1: leave without reading. */
  go: SharedArrayBuffer;
  stopName: string;
  /** The lowest level logged: records go to the main thread (thread-log.ts). */
  logLevel: string;
  /** Request counters (request-stats.ts), when metrics are on. */
  stats?: SharedArrayBuffer;
  /** Garbage collection counters (gc-stats.ts), when metrics are on: this thread's slot is its index. */
  gc?: GcStatsMemory;
}

const data = workerData as ReaderData;
const queue = new FairQueue(data.queue);
const port = parentPort!;
const log = threadLog(data.logLevel, { reader: data.index }, (record) =>
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
  collectGarbage?.();
}

/** Answers one request; returns false when the connection has ended (a refused INIT). `tenant`: whom it
 * counts against; `callerTenant`: its caller's own tenant if known (see Caller.tenant), else 0. */
function serve(request: Buffer, n: number, tenant: number, callerTenant: number, reply: Buffer): boolean {
  stats?.begin(request);
  const length = session.handle(request, n, reply, tenant, callerTenant);
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
  return session.stopReason !== 'refused';
}

/** Serves a queued request and gives its slot back. */
function serveQueued(slot: number, reply: Buffer): boolean {
  const served = serve(queue.request(slot), queue.length(slot), queue.tenant(slot), queue.callerTenant(slot), reply);
  queue.done(slot);
  return served;
}

/** The tenant that opened the handle a READ or POLL is on; undefined for other requests. */
function handleTenantOf(request: Buffer): number | undefined {
  switch (InHeader.opcode(request)) {
    case Op.READ:
      return snapshots.tenantOfHandle(ReadIn.fh(request));
    case Op.POLL:
      return snapshots.tenantOfHandle(PollIn.fh(request));
    default:
      return undefined;
  }
}

/** A read of /dev/fuse that takes longer than this found nothing waiting: it slept until a request came.
 * (Taking one that is already there costs a few microseconds; a wake-up, tens.) */
const WAITED_MS = 0.015;

/** Reads and serves until this reader's stop request or the end of the connection. */
function serveConnection(): { reason: ReaderExit; detail?: string } {
  const request = Buffer.alloc(READ_BUFFER_SIZE);
  const reply = Buffer.alloc(READ_BUFFER_SIZE);
  const caller: Caller = { pid: 0, uid: 0, gid: 0 };
  queue.join();
  for (;;) {
    const queued = queue.beforeRead();
    if (queued !== undefined) {
      if (!serveQueued(queued, reply)) return leave('refused', reply);
      continue;
    }
    let n: number;
    const asked = performance.now();
    try {
      n = fs.readSync(data.fd, request, 0, request.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EINTR: a signal; ENOENT: the request was aborted while being copied; EAGAIN: nothing queued.
      if (code === 'EINTR' || code === 'ENOENT' || code === 'EAGAIN') continue;
      if (code === 'ENODEV') return leave('unmounted', reply);
      if (code === 'ECONNABORTED') return leave('aborted', reply);
      return leave('error', reply, `read from /dev/fuse failed: ${code ?? String(err)}`);
    } finally {
      queue.afterRead();
    }
    const waited = performance.now() - asked > WAITED_MS;
    const opcode = InHeader.opcode(request);
    // The kernel sends RELEASE in the background, at most max_background outstanding (see MAX_BACKGROUND);
    // queued behind renders they would trickle, and a container that opens and closes in a loop would
    // reach its handle limit with files it has long closed. Freeing a handle costs less than queueing it:
    // always at once.
    if (opcode === Op.RELEASE) {
      serve(request, n, 0, 0, reply);
      continue;
    }
    caller.uid = InHeader.uid(request);
    caller.gid = InHeader.gid(request);
    caller.pid = InHeader.pid(request);
    // The caller's own tenant is asked here once, and the filesystem gets it with the caller
    // (Caller.tenant); a READ or POLL counts against the tenant that opened its handle.
    const callerTenant = tenancy === undefined ? 0 : tenancy.keyOf(caller);
    const tenant = tenancy === undefined ? 0 : (handleTenantOf(request) ?? callerTenant);
    // This reader's stop request: nothing after it is this reader's to take.
    if (isStopRequest(request, n, data.stopName)) {
      serve(request, n, tenant, callerTenant, reply);
      return leave('sentinel', reply);
    }
    // Served at once when nothing waits, neither in the kernel (the read slept) nor here; INIT always (the
    // main thread waits to hear of it). Otherwise queued. When the read slept, the kernel's queue was
    // empty: rather than read again at once, this reader serves the fair queue's next request first.
    if ((waited && queue.empty()) || opcode === Op.INIT || !queue.put(tenant, callerTenant, request, n)) {
      if (!serve(request, n, tenant, callerTenant, reply)) return leave('refused', reply);
    } else if (waited) {
      const next = queue.take();
      if (next !== undefined && !serveQueued(next, reply)) return leave('refused', reply);
    }
  }
}

/** Stops reading: serves what is queued that no other reader will, unless the connection is gone. */
function leave(reason: ReaderExit, reply: Buffer, detail?: string): { reason: ReaderExit; detail?: string } {
  for (let slot = queue.leave(); slot !== undefined; slot = queue.leave()) {
    if (reason === 'sentinel') serveQueued(slot, reply);
    else queue.done(slot);
  }
  return { reason, detail };
}

port.postMessage({ type: 'ready' } satisfies ReaderMessage);
// A successor builds everything first and reads only once its predecessor has stopped reading.
const go = new Int32Array(data.go);
Atomics.wait(go, 0, 0);
const exit: { reason: ReaderExit; detail?: string } = Atomics.load(go, 0) !== 1 ? { reason: 'sentinel' } : serveConnection();
port.postMessage({ type: 'exit', ...exit } satisfies ReaderMessage);
