// A reader thread: a synchronous read → dispatch → write loop on the shared /dev/fuse fd.
// Synchronous reads in worker threads measured ~2× faster than libuv pool reads here, and keep the
// main thread free for signals and supervision.

import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { OP_NAMES, READ_BUFFER_SIZE } from './abi.js';
import type { FileSystemFactory } from './filesystem.js';
import { Session, type InitInfo } from './session.js';
import { SnapshotStore, type SnapshotMemory } from './snapshots.js';
import { createLogger, type LogSettings } from '../util/log.js';
import { RequestRecorder } from './request-stats.js';

export interface ReaderData {
  index: number;
  fd: number;
  /** URL of a module whose `createFileSystem` export is a FileSystemFactory. */
  fsModule: string;
  fsOptions: unknown;
  snapshots: SnapshotMemory;
  conn: SharedArrayBuffer;
  /** Int32 0: wait before the first read; 1: read; -1: leave without reading. */
  go: SharedArrayBuffer;
  stopName: string;
  log: LogSettings;
  /** Request counters (request-stats.ts), when metrics are on. */
  stats?: SharedArrayBuffer;
}

export type ReaderExit = 'sentinel' | 'refused' | 'unmounted' | 'aborted' | 'error';

export type ReaderMessage =
  | { type: 'ready' }
  | { type: 'init'; info: InitInfo }
  | { type: 'exit'; reason: ReaderExit; detail?: string };

const data = workerData as ReaderData;
const port = parentPort!;
const log = createLogger(data.log, { reader: data.index });

const fsModule = (await import(data.fsModule)) as { createFileSystem: FileSystemFactory };
const filesystem = await fsModule.createFileSystem(data.fsOptions, log);
const debug = log.isLevelEnabled('debug');

const session = new Session(filesystem, new SnapshotStore(data.snapshots), {
  stopName: data.stopName,
  conn: new Int32Array(data.conn),
  onInit: (info) => port.postMessage({ type: 'init', info } satisfies ReaderMessage),
  onHandlerError: (opcode, nodeid, err) =>
    log.error({ op: OP_NAMES[opcode] ?? opcode, node: nodeid, err }, 'request handler failed; answered EIO'),
  trace: debug
    ? (opcode, nodeid, caller, error) =>
        log.debug({ op: OP_NAMES[opcode] ?? opcode, node: nodeid, pid: caller.pid, uid: caller.uid, error }, 'request')
    : undefined,
});

const stats = data.stats && new RequestRecorder(data.stats, data.index);

function serve(): { reason: ReaderExit; detail?: string } {
  const request = Buffer.alloc(READ_BUFFER_SIZE);
  const reply = Buffer.alloc(READ_BUFFER_SIZE);
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
    stats?.begin(request);
    const length = session.handle(request, n, reply);
    stats?.end(session.lastError);
    if (length > 0) {
      try {
        fs.writeSync(data.fd, reply, 0, length);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // ENOENT: the request is gone (interrupted, aborted, or a release raced with unmount).
        if (code !== 'ENOENT') log.error({ err, op: OP_NAMES[request.readUInt32LE(4)] }, 'writing a reply to /dev/fuse failed');
      }
    }
    if (session.stopReason) return { reason: session.stopReason };
  }
}

port.postMessage({ type: 'ready' } satisfies ReaderMessage);
// A successor builds everything first and reads only once its predecessor has stopped reading.
const go = new Int32Array(data.go);
Atomics.wait(go, 0, 0);
const exit: { reason: ReaderExit; detail?: string } = Atomics.load(go, 0) === 1 ? serve() : { reason: 'sentinel' };
port.postMessage({ type: 'exit', ...exit } satisfies ReaderMessage);
