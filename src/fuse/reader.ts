// A reader thread: a synchronous take → dispatch → write loop. Requests come from the fair queue the
// intake thread (intake.ts) fills from /dev/fuse; replies go straight to the shared fd. Synchronous I/O in
// worker threads measured ~2× faster than libuv pool reads here, and keeps the main thread free for
// signals and supervision.

import fs from 'node:fs';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { InHeader, OP_NAMES, READ_BUFFER_SIZE } from './abi.js';
import { FairQueue, type FairQueueMemory } from './fair-queue.js';
import type { FileSystemFactory, Tenancy, TenancyFactory } from './filesystem.js';
import { Session } from './session.js';
import { READER_EXITS, type ReaderExit, type ReaderMessage } from './thread-messages.js';
import { SnapshotStore, type PoolMessage, type SnapshotMemory } from './snapshots.js';
import { createLogger, type LogSettings } from '../util/log.js';
import { RequestRecorder } from './request-stats.js';

export interface ReaderData {
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
  log: LogSettings;
  /** Request counters (request-stats.ts), when metrics are on. */
  stats?: SharedArrayBuffer;
}

const data = workerData as ReaderData;
const queue = new FairQueue<ReaderExit>(data.queue, READER_EXITS);
const port = parentPort!;
const log = createLogger(data.log, { reader: data.index });

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
  tenantOf: tenancy && ((caller) => tenancy.keyOf(caller)),
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

/** Serves until the queue is closed and drained; the intake says why. */
function serve(): { reason: ReaderExit } {
  const reply = Buffer.alloc(READ_BUFFER_SIZE);
  for (;;) {
    const slot = queue.take();
    if (slot === undefined) return { reason: queue.closedFor() ?? 'sentinel' };
    const request = queue.request(slot);
    stats?.begin(request);
    const length = session.handle(request, queue.length(slot), reply);
    stats?.end(session.lastError);
    const opcode = InHeader.opcode(request);
    queue.done(slot);
    if (length > 0) {
      try {
        fs.writeSync(data.fd, reply, 0, length);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // ENOENT: the request is gone (interrupted, aborted, or a release raced with unmount).
        if (code !== 'ENOENT') log.error({ err, op: OP_NAMES[opcode] }, 'writing a reply to /dev/fuse failed');
      }
    }
    if (poolReplaced) {
      // Drop the last reference to the old pool now: a reader that blocks in read() may not collect for
      // a long time, and the old pool is most of the daemon's memory.
      poolReplaced = false;
      (globalThis as { gc?: () => void }).gc?.();
    }
    // A refused INIT ends the connection: nothing more will come. (The stop request is the intake's to
    // act on: requests queued before it are still served.)
    if (session.stopReason === 'refused') {
      queue.close('refused');
      return { reason: 'refused' };
    }
  }
}

port.postMessage({ type: 'ready' } satisfies ReaderMessage);
// A successor builds everything first and reads only once its predecessor has stopped reading.
const go = new Int32Array(data.go);
Atomics.wait(go, 0, 0);
const exit: { reason: ReaderExit } = Atomics.load(go, 0) === 1 ? serve() : { reason: 'sentinel' };
port.postMessage({ type: 'exit', ...exit } satisfies ReaderMessage);
