// One reader's protocol engine: decodes a request, calls the filesystem, encodes the reply.
// No I/O here, so it is unit-testable with plain buffers; reader.ts moves bytes to and from /dev/fuse.

import {
  AccessIn,
  AttrOut,
  Dirent,
  DirentPlus,
  DT_DIR,
  DT_LNK,
  DT_REG,
  EntryOut,
  Errno,
  FOPEN_CACHE_DIR,
  FOPEN_DIRECT_IO,
  FOPEN_KEEP_CACHE,
  FOPEN_NOFLUSH,
  FUSE_KERNEL_VERSION,
  FUSE_MAX_MINOR,
  FUSE_MIN_MINOR,
  InHeader,
  InitFlag,
  InitIn,
  InitOut,
  LookupIn,
  MAX_BACKGROUND,
  MAX_PAGES,
  MAX_WRITE,
  Op,
  OpenIn,
  OpenOut,
  OutHeader,
  FUSE_POLL_SCHEDULE_NOTIFY,
  PollIn,
  PollOut,
  ReadIn,
  ReleaseIn,
  ROOT_ID,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  StatfsOut,
  WANTED_INIT_FLAGS,
  WriteIn,
  WriteOut,
  type AttrFields,
} from './abi.js';
import type { Caller, DirEntry, FileSystem, NodeAttr, NodeKind } from './filesystem.js';
import type { SnapshotStore } from './snapshots.js';

const ENOMEM = 12;
const ENFILE = 23;
const EMFILE = 24;
const REPLY_BODY = OutHeader.SIZE;

/** Negotiated connection facts, shared by all readers (Int32Array over a SharedArrayBuffer). */
export const ConnField = { INITIALIZED: 0, MINOR: 1, FLAGS: 2, FLAGS2_OFFERED: 3, KERNEL_MINOR: 4 } as const;
export const CONN_FIELDS = 5;

export type StopReason = 'sentinel' | 'refused';

export interface SessionOptions {
  /** A LOOKUP of this name in the root stops the reader that receives it (see FuseServer.stop). */
  stopName: string;
  conn: Int32Array;
  /** Called once per request when debug logging is on. */
  trace?: (opcode: number, nodeid: number, caller: Caller, error: number) => void;
  /** Called when a filesystem method throws (a bug: the request is answered EIO). */
  onHandlerError?: (opcode: number, nodeid: number, err: unknown) => void;
  /** Called when INIT is answered or refused. */
  onInit?: (info: InitInfo) => void;
  /** Called when a request is refused for a limit, at most once per tenant per minute. */
  onLimit?: (limit: LimitReached) => void;
}

export interface LimitReached {
  /** handles/memory: the tenant holds its share; table/pool: everyone's is full. */
  kind: 'handles' | 'memory' | 'table' | 'pool';
  tenant: number;
  caller: Caller;
  errno: number;
}

export interface InitInfo {
  kernelMajor: number;
  kernelMinor: number;
  minor: number;
  flags: number;
  flags2Offered: number;
  refused?: string;
}

export class Session {
  /** Set when the last request asked this reader to stop. */
  stopReason: StopReason | undefined;
  private readonly caller: Caller = { pid: 0, uid: 0, gid: 0 };
  private error = 0;
  private requestTenant = 0;

  constructor(
    private readonly fs: FileSystem,
    private readonly store: SnapshotStore,
    private readonly options: SessionOptions,
  ) {}

  /** The errno the last request was answered with (0: success). */
  get lastError(): number {
    return this.error;
  }

  /** Handles the request in `req[0..n)`, writes the reply into `out`; returns its length (0: no reply).
   * `tenant`: whom the request counts against (see Tenancy), as the reader that read it found;
   * `callerTenant`: the caller's own, when the reader asked (see Caller.tenant). */
  handle(req: Buffer, n: number, out: Buffer, tenant = 0, callerTenant = 0): number {
    this.requestTenant = tenant;
    const opcode = InHeader.opcode(req);
    const nodeid = InHeader.nodeid(req);
    this.caller.uid = InHeader.uid(req);
    this.caller.gid = InHeader.gid(req);
    this.caller.pid = InHeader.pid(req);
    this.caller.tenant = callerTenant;
    this.error = 0;
    let length: number;
    try {
      length = this.dispatch(opcode, nodeid, req, n, out);
    } catch (err) {
      // A filesystem bug must cost one request, not the reader.
      this.options.onHandlerError?.(opcode, nodeid, err);
      length = this.fail(Errno.EIO);
    }
    if (length > 0) OutHeader.write(out, length, this.error, req);
    this.options.trace?.(opcode, nodeid, this.caller, this.error);
    return length;
  }

  private fail(errno: number): number {
    this.error = errno;
    return OutHeader.SIZE;
  }

  /** Fails the request for a limit; reports it when it is this tenant's first refusal this minute. */
  private refuse(kind: LimitReached['kind'], tenant: number, errno: number): number {
    if (this.options.onLimit && this.store.claimWarning(tenant)) {
      this.options.onLimit({ kind, tenant, caller: { ...this.caller }, errno });
    }
    return this.fail(errno);
  }

  private dispatch(opcode: number, nodeid: number, req: Buffer, n: number, out: Buffer): number {
    switch (opcode) {
      case Op.INIT:
        return this.init(req, n, out);
      case Op.LOOKUP: {
        if (isStopRequest(req, n, this.options.stopName)) {
          this.stopReason = 'sentinel';
          return this.fail(Errno.ENOENT);
        }
        const entry = this.fs.lookup(nodeid, LookupIn.name(req, n), this.caller);
        if (typeof entry === 'number') return this.fail(entry);
        EntryOut.write(out, REPLY_BODY, entry.entryTtlMs, entry.attrTtlMs, attrFields(entry.attr));
        return REPLY_BODY + EntryOut.SIZE;
      }
      case Op.GETATTR: {
        const attr = this.fs.getattr(nodeid, this.caller);
        if (typeof attr === 'number') return this.fail(attr);
        AttrOut.write(out, REPLY_BODY, attr.attrTtlMs, attrFields(attr.attr));
        return REPLY_BODY + AttrOut.SIZE;
      }
      case Op.OPEN: {
        const denied = this.fs.open(nodeid, OpenIn.flags(req), this.caller);
        if (denied !== 0) return this.fail(denied);
        const tenant = this.requestTenant;
        const opened = this.store.open(tenant);
        if ('refused' in opened) {
          return opened.refused === 'tenant'
            ? this.refuse('handles', tenant, EMFILE)
            : this.refuse('table', tenant, ENFILE);
        }
        const handle = opened.handle;
        // DIRECT_IO: every read() reaches us with the reader's pid, nothing is cached across callers.
        // NOFLUSH: close() costs no FLUSH round trip.
        return writeOpenOut(out, handle, FOPEN_DIRECT_IO | FOPEN_NOFLUSH);
      }
      case Op.READ:
        return this.read(nodeid, req, out);
      case Op.RELEASE: {
        const handle = ReleaseIn.fh(req);
        this.fs.release?.(nodeid, handle);
        this.store.release(handle);
        return OutHeader.SIZE;
      }
      case Op.WRITE: {
        if (!this.fs.write) return this.fail(Errno.EROFS);
        const written = this.fs.write(nodeid, WriteIn.fh(req), WriteIn.offset(req), WriteIn.data(req, n), this.caller);
        if (typeof written === 'number') return this.fail(written);
        WriteOut.write(out, REPLY_BODY, written.written);
        return REPLY_BODY + WriteOut.SIZE;
      }
      case Op.POLL: {
        // ENOSYS latches for the whole connection (the kernel never asks again, every file is then ready):
        // the filesystem decides, once it has a poll method.
        if (!this.fs.poll) return this.fail(Errno.ENOSYS);
        const notify = (PollIn.flags(req) & FUSE_POLL_SCHEDULE_NOTIFY) !== 0;
        const ready = this.fs.poll(nodeid, PollIn.fh(req), PollIn.kh(req), notify, this.caller);
        if (typeof ready === 'number') return this.fail(ready);
        PollOut.write(out, REPLY_BODY, ready.revents);
        return REPLY_BODY + PollOut.SIZE;
      }
      case Op.OPENDIR: {
        const attr = this.fs.getattr(nodeid, this.caller);
        if (typeof attr === 'number') return this.fail(attr);
        if (attr.attr.kind !== 'dir') return this.fail(Errno.ENOTDIR);
        // A listing that is the same for every caller and never changes may stay cached across opens.
        return writeOpenOut(out, 0, this.fs.listingIsStable(nodeid) ? FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE : 0);
      }
      case Op.READDIR:
      case Op.READDIRPLUS:
        return this.readdir(nodeid, req, out, opcode === Op.READDIRPLUS);
      case Op.RELEASEDIR:
        return OutHeader.SIZE;
      case Op.READLINK: {
        const target = this.fs.readlink(nodeid, this.caller);
        if (typeof target === 'number') return this.fail(target);
        out.set(target, REPLY_BODY);
        return REPLY_BODY + target.length;
      }
      case Op.STATFS:
        StatfsOut.write(out, REPLY_BODY, { bsize: 4096, namelen: 255, frsize: 4096 });
        return REPLY_BODY + StatfsOut.SIZE;
      case Op.ACCESS: {
        const denied = this.fs.access(nodeid, AccessIn.mask(req), this.caller);
        return denied === 0 ? OutHeader.SIZE : this.fail(denied);
      }
      case Op.FORGET:
      case Op.BATCH_FORGET:
      case Op.INTERRUPT:
        // Node ids are static (nothing to forget); handlers answer in microseconds (nothing to interrupt).
        return 0;
      case Op.DESTROY:
        return OutHeader.SIZE;
      case Op.IOCTL:
        return this.fail(Errno.ENOTTY);
      case Op.SETATTR:
      case Op.SYMLINK:
      case Op.MKNOD:
      case Op.MKDIR:
      case Op.UNLINK:
      case Op.RMDIR:
      case Op.RENAME:
      case Op.RENAME2:
      case Op.LINK:
      case Op.CREATE:
      case Op.TMPFILE:
      case Op.FALLOCATE:
      case Op.SETXATTR:
      case Op.REMOVEXATTR:
      case Op.COPY_FILE_RANGE:
      case Op.COPY_FILE_RANGE_64:
        return this.fail(Errno.EROFS);
      default:
        // FLUSH, FSYNC, GETXATTR, LISTXATTR, LSEEK, STATX, SYNCFS, ...: ENOSYS makes the kernel stop
        // asking (most of these latch) and fall back to its own behaviour.
        return this.fail(Errno.ENOSYS);
    }
  }

  private init(req: Buffer, n: number, out: Buffer): number {
    const major = InitIn.major(req);
    const kernelMinor = InitIn.minor(req);
    const flags2Offered = InitIn.flags2(req, n);
    const info: InitInfo = { kernelMajor: major, kernelMinor, minor: 0, flags: 0, flags2Offered };
    if (major > FUSE_KERNEL_VERSION) {
      // The kernel will ask again with our major.
      InitOut.write(out, REPLY_BODY, { major: FUSE_KERNEL_VERSION });
      return REPLY_BODY + InitOut.SIZE;
    }
    if (major < FUSE_KERNEL_VERSION || kernelMinor < FUSE_MIN_MINOR) {
      info.refused = `kernel FUSE protocol ${major}.${kernelMinor} is older than the ${FUSE_KERNEL_VERSION}.${FUSE_MIN_MINOR} we need (Linux 5.4 or later)`;
      this.stopReason = 'refused';
      this.options.onInit?.(info);
      return this.fail(Errno.EPROTO);
    }
    info.minor = Math.min(kernelMinor, FUSE_MAX_MINOR);
    info.flags = InitIn.flags(req) & WANTED_INIT_FLAGS;
    InitOut.write(out, REPLY_BODY, {
      major: FUSE_KERNEL_VERSION,
      minor: info.minor,
      maxReadahead: InitIn.maxReadahead(req),
      flags: info.flags,
      maxBackground: MAX_BACKGROUND,
      // The kernel's own ratio (3/4): congestion only slows readahead and writeback, which we have none of.
      congestionThreshold: (MAX_BACKGROUND * 3) / 4,
      maxWrite: MAX_WRITE,
      timeGran: 1,
      maxPages: info.flags & InitFlag.MAX_PAGES ? MAX_PAGES : 0,
    });
    const conn = this.options.conn;
    Atomics.store(conn, ConnField.MINOR, info.minor);
    Atomics.store(conn, ConnField.KERNEL_MINOR, kernelMinor);
    Atomics.store(conn, ConnField.FLAGS, info.flags);
    Atomics.store(conn, ConnField.FLAGS2_OFFERED, flags2Offered);
    Atomics.store(conn, ConnField.INITIALIZED, 1);
    this.options.onInit?.(info);
    return REPLY_BODY + InitOut.SIZE;
  }

  // lxcfs semantics: the content is rendered at offset 0 and kept per handle; later offsets are served
  // from that snapshot, so a file read in pieces is never torn. Offset past the snapshot: EINVAL;
  // offset > 0 with no snapshot: end of file.
  private read(nodeid: number, req: Buffer, out: Buffer): number {
    const handle = ReadIn.fh(req);
    const offset = ReadIn.offset(req);
    const size = Math.min(ReadIn.size(req), out.length - REPLY_BODY);
    if (offset === 0) {
      const content = this.fs.read(nodeid, this.caller);
      if (typeof content === 'number') return this.fail(content);
      const kept = this.store.put(handle, content);
      // A content that fits in this reply needs no snapshot: what follows is end of file. A larger one
      // cannot be served consistently without one. A handle we do not know (another process issued it)
      // still gets its content, just no snapshot.
      if ((kept === 'tenant' || kept === 'pool') && content.length > size) {
        return this.refuse(kept === 'tenant' ? 'memory' : 'pool', this.requestTenant, ENOMEM);
      }
      const length = Math.min(size, content.length);
      out.set(content.subarray(0, length), REPLY_BODY);
      return REPLY_BODY + length;
    }
    const result = this.store.read(handle, offset, size, out, REPLY_BODY);
    if (result.kind === 'past-end') return this.fail(Errno.EINVAL);
    return REPLY_BODY + (result.kind === 'data' ? result.length : 0);
  }

  private readdir(nodeid: number, req: Buffer, out: Buffer, plus: boolean): number {
    const offset = ReadIn.offset(req);
    const size = Math.min(ReadIn.size(req), out.length - REPLY_BODY);
    const entries = this.fs.readdir(nodeid, this.caller);
    if (typeof entries === 'number') return this.fail(entries);
    let at = REPLY_BODY;
    const end = REPLY_BODY + size;
    for (let index = offset; index < entries.length; index++) {
      const written = plus
        ? this.writeDirentPlus(out, at, end, nodeid, entries[index]!, index + 1)
        : writeDirent(out, at, end, entries[index]!, index + 1);
      if (written === 0) break;
      at += written;
    }
    return at;
  }

  private writeDirentPlus(out: Buffer, at: number, end: number, dir: number, entry: DirEntry, next: number): number {
    const recordLength = DirentPlus.recordLength(Buffer.byteLength(entry.name));
    if (at + recordLength > end) return 0;
    out.fill(0, at, at + EntryOut.SIZE);
    // `.` and `..` carry no entry (nodeid 0): the kernel skips them. Every other entry counts as a lookup.
    if (entry.name !== '.' && entry.name !== '..') {
      const looked = this.fs.lookup(dir, entry.name, this.caller);
      if (typeof looked !== 'number')
        EntryOut.write(out, at, looked.entryTtlMs, looked.attrTtlMs, attrFields(looked.attr));
    }
    Dirent.write(out, at + DirentPlus.DIRENT_AT, entry.ino, next, DIRENT_TYPE[entry.kind], entry.name);
    return recordLength;
  }
}

/** Whether the request in `req[0..n)` is the LOOKUP of `stopName` in the root that stops a reader. */
export function isStopRequest(req: Buffer, n: number, stopName: string): boolean {
  return (
    InHeader.opcode(req) === Op.LOOKUP &&
    InHeader.nodeid(req) === ROOT_ID &&
    LookupIn.nameBytes(n) === Buffer.byteLength(stopName) &&
    LookupIn.name(req, n) === stopName
  );
}

const FILE_TYPE: Record<NodeKind, number> = { dir: S_IFDIR, file: S_IFREG, symlink: S_IFLNK };
const DIRENT_TYPE: Record<NodeKind, number> = { dir: DT_DIR, file: DT_REG, symlink: DT_LNK };

/** A node's attributes as fuse_attr carries them. Times are "now", like procfs and lxcfs. */
function attrFields(attr: NodeAttr): AttrFields {
  return {
    ino: attr.ino,
    size: attr.size,
    mode: FILE_TYPE[attr.kind] | attr.perm,
    nlink: attr.nlink,
    blksize: 4096,
    timeMs: Date.now(),
  };
}

/** fuse_open_out as the whole reply; returns its length. */
function writeOpenOut(out: Buffer, fh: number, openFlags: number): number {
  OpenOut.write(out, REPLY_BODY, fh, openFlags);
  return REPLY_BODY + OpenOut.SIZE;
}

/** A fuse_dirent record at `at`; its length, 0 if it does not fit before `end`. */
function writeDirent(buf: Buffer, at: number, end: number, entry: DirEntry, next: number): number {
  const recordLength = Dirent.recordLength(Buffer.byteLength(entry.name));
  if (at + recordLength > end) return 0;
  Dirent.write(buf, at, entry.ino, next, DIRENT_TYPE[entry.kind], entry.name);
  return recordLength;
}
