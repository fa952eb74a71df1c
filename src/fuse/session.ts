// One reader's protocol engine: decodes a request, calls the filesystem, encodes the reply.
// No I/O here, so it is unit-testable with plain buffers; reader.ts moves bytes to and from /dev/fuse.

import {
  ATTR_OUT_SIZE,
  DIRENT_HEADER_SIZE,
  DIRENTPLUS_HEADER_SIZE,
  DT_DIR,
  DT_LNK,
  DT_REG,
  ENTRY_OUT_SIZE,
  Errno,
  FOPEN_CACHE_DIR,
  FOPEN_DIRECT_IO,
  FOPEN_KEEP_CACHE,
  FOPEN_NOFLUSH,
  FUSE_KERNEL_VERSION,
  FUSE_MAX_MINOR,
  FUSE_MIN_MINOR,
  IN_HEADER_SIZE,
  INIT_OUT_SIZE,
  InitFlag,
  MAX_PAGES,
  MAX_WRITE,
  Op,
  OUT_HEADER_SIZE,
  S_IFDIR,
  S_IFLNK,
  S_IFREG,
  STATFS_OUT_SIZE,
  WANTED_INIT_FLAGS,
} from './abi.js';
import type { Caller, CachedAttr, DirEntry, Entry, FileSystem, NodeAttr, NodeKind } from './filesystem.js';
import type { SnapshotStore } from './snapshots.js';

const ENOMEM = 12;
const ENFILE = 23;
const EMFILE = 24;
const TWO_32 = 0x1_0000_0000;

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
  /** The tenant a request counts against (see Tenancy); every caller is tenant 0 without it. */
  tenantOf?: (caller: Caller) => number;
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

  constructor(
    private readonly fs: FileSystem,
    private readonly store: SnapshotStore,
    private readonly options: SessionOptions,
  ) {}

  /** The errno the last request was answered with (0: success). */
  get lastError(): number {
    return this.error;
  }

  /** Handles the request in `req[0..n)`, writes the reply into `out`; returns its length (0: no reply). */
  handle(req: Buffer, n: number, out: Buffer): number {
    const opcode = req.readUInt32LE(4);
    const nodeid = req.readUInt32LE(16) + req.readUInt32LE(20) * TWO_32;
    this.caller.uid = req.readUInt32LE(24);
    this.caller.gid = req.readUInt32LE(28);
    this.caller.pid = req.readUInt32LE(32);
    this.error = 0;
    let length: number;
    try {
      length = this.dispatch(opcode, nodeid, req, n, out);
    } catch (err) {
      // A filesystem bug must cost one request, not the reader.
      this.options.onHandlerError?.(opcode, nodeid, err);
      length = this.fail(Errno.EIO);
    }
    if (length > 0) {
      out.writeUInt32LE(length, 0);
      out.writeInt32LE(-this.error, 4);
      req.copy(out, 8, 8, 16); // unique, byte for byte (bit 63 may be set by a resend)
    }
    this.options.trace?.(opcode, nodeid, this.caller, this.error);
    return length;
  }

  private fail(errno: number): number {
    this.error = errno;
    return OUT_HEADER_SIZE;
  }

  private tenant(): number {
    return this.options.tenantOf?.(this.caller) ?? 0;
  }

  /** Fails the request for a limit; reports it when it is this tenant's first refusal this minute. */
  private refuse(kind: LimitReached['kind'], tenant: number, errno: number): number {
    if (this.options.onLimit && this.store.claimWarning(tenant)) {
      this.options.onLimit({ kind, tenant, caller: { ...this.caller }, errno });
    }
    return this.fail(errno);
  }

  private dispatch(opcode: number, nodeid: number, req: Buffer, n: number, out: Buffer): number {
    const body = IN_HEADER_SIZE;
    switch (opcode) {
      case Op.INIT:
        return this.init(req, n, out);
      case Op.LOOKUP: {
        if (isStopRequest(req, n, this.options.stopName)) {
          this.stopReason = 'sentinel';
          return this.fail(Errno.ENOENT);
        }
        const name = req.toString('utf8', body, n - 1);
        const entry = this.fs.lookup(nodeid, name, this.caller);
        if (typeof entry === 'number') return this.fail(entry);
        writeEntryOut(out, OUT_HEADER_SIZE, entry);
        return OUT_HEADER_SIZE + ENTRY_OUT_SIZE;
      }
      case Op.GETATTR: {
        const attr = this.fs.getattr(nodeid, this.caller);
        if (typeof attr === 'number') return this.fail(attr);
        writeAttrOut(out, OUT_HEADER_SIZE, attr);
        return OUT_HEADER_SIZE + ATTR_OUT_SIZE;
      }
      case Op.OPEN: {
        const denied = this.fs.open(nodeid, req.readUInt32LE(body), this.caller);
        if (denied !== 0) return this.fail(denied);
        const tenant = this.tenant();
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
      case Op.RELEASE:
        this.store.release(readU64(req, body));
        return OUT_HEADER_SIZE;
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
        return OUT_HEADER_SIZE;
      case Op.READLINK: {
        const target = this.fs.readlink(nodeid, this.caller);
        if (typeof target === 'number') return this.fail(target);
        out.set(target, OUT_HEADER_SIZE);
        return OUT_HEADER_SIZE + target.length;
      }
      case Op.STATFS:
        out.fill(0, OUT_HEADER_SIZE, OUT_HEADER_SIZE + STATFS_OUT_SIZE);
        out.writeUInt32LE(4096, OUT_HEADER_SIZE + 40); // bsize
        out.writeUInt32LE(255, OUT_HEADER_SIZE + 44); // namelen
        out.writeUInt32LE(4096, OUT_HEADER_SIZE + 48); // frsize
        return OUT_HEADER_SIZE + STATFS_OUT_SIZE;
      case Op.ACCESS: {
        const denied = this.fs.access(nodeid, req.readUInt32LE(body), this.caller);
        return denied === 0 ? OUT_HEADER_SIZE : this.fail(denied);
      }
      case Op.FORGET:
      case Op.BATCH_FORGET:
      case Op.INTERRUPT:
        // Node ids are static (nothing to forget); handlers answer in microseconds (nothing to interrupt).
        return 0;
      case Op.DESTROY:
        return OUT_HEADER_SIZE;
      case Op.IOCTL:
        return this.fail(Errno.ENOTTY);
      case Op.WRITE:
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
        // FLUSH, FSYNC, GETXATTR, LISTXATTR, POLL, LSEEK, STATX, SYNCFS, ...: ENOSYS makes the kernel stop
        // asking (most of these latch) and fall back to its own behaviour.
        return this.fail(Errno.ENOSYS);
    }
  }

  private init(req: Buffer, n: number, out: Buffer): number {
    const body = IN_HEADER_SIZE;
    const major = req.readUInt32LE(body);
    const kernelMinor = req.readUInt32LE(body + 4);
    const maxReadahead = req.readUInt32LE(body + 8);
    const offered = req.readUInt32LE(body + 12);
    // flags2 exists from 7.36 on (a 64-byte init_in).
    const flags2Offered = n >= body + 20 ? req.readUInt32LE(body + 16) : 0;
    const info: InitInfo = { kernelMajor: major, kernelMinor, minor: 0, flags: 0, flags2Offered };
    if (major > FUSE_KERNEL_VERSION) {
      // The kernel will ask again with our major.
      out.fill(0, OUT_HEADER_SIZE, OUT_HEADER_SIZE + INIT_OUT_SIZE);
      out.writeUInt32LE(FUSE_KERNEL_VERSION, OUT_HEADER_SIZE);
      return OUT_HEADER_SIZE + INIT_OUT_SIZE;
    }
    if (major < FUSE_KERNEL_VERSION || kernelMinor < FUSE_MIN_MINOR) {
      info.refused = `kernel FUSE protocol ${major}.${kernelMinor} is older than the ${FUSE_KERNEL_VERSION}.${FUSE_MIN_MINOR} we need (Linux 5.4 or later)`;
      this.stopReason = 'refused';
      this.options.onInit?.(info);
      return this.fail(Errno.EPROTO);
    }
    info.minor = Math.min(kernelMinor, FUSE_MAX_MINOR);
    info.flags = offered & WANTED_INIT_FLAGS;
    const o = OUT_HEADER_SIZE;
    out.fill(0, o, o + INIT_OUT_SIZE);
    out.writeUInt32LE(FUSE_KERNEL_VERSION, o);
    out.writeUInt32LE(info.minor, o + 4);
    out.writeUInt32LE(maxReadahead, o + 8);
    out.writeUInt32LE(info.flags >>> 0, o + 12);
    out.writeUInt32LE(MAX_WRITE, o + 20);
    out.writeUInt32LE(1, o + 24); // time_gran: 1 ns
    if (info.flags & InitFlag.MAX_PAGES) out.writeUInt16LE(MAX_PAGES, o + 28);
    // flags2 stays 0: in particular never REQUEST_TIMEOUT.
    const conn = this.options.conn;
    Atomics.store(conn, ConnField.MINOR, info.minor);
    Atomics.store(conn, ConnField.KERNEL_MINOR, kernelMinor);
    Atomics.store(conn, ConnField.FLAGS, info.flags);
    Atomics.store(conn, ConnField.FLAGS2_OFFERED, flags2Offered);
    Atomics.store(conn, ConnField.INITIALIZED, 1);
    this.options.onInit?.(info);
    return o + INIT_OUT_SIZE;
  }

  // lxcfs semantics: the content is rendered at offset 0 and kept per handle; later offsets are served
  // from that snapshot, so a file read in pieces is never torn. Offset past the snapshot: EINVAL;
  // offset > 0 with no snapshot: end of file.
  private read(nodeid: number, req: Buffer, out: Buffer): number {
    const body = IN_HEADER_SIZE;
    const handle = readU64(req, body);
    const offset = readU64(req, body + 8);
    const size = Math.min(req.readUInt32LE(body + 16), out.length - OUT_HEADER_SIZE);
    if (offset === 0) {
      const content = this.fs.read(nodeid, this.caller);
      if (typeof content === 'number') return this.fail(content);
      const kept = this.store.put(handle, content);
      // A content that fits in this reply needs no snapshot: what follows is end of file. A larger one
      // cannot be served consistently without one. A handle we do not know (another process issued it)
      // still gets its content, just no snapshot.
      if ((kept === 'tenant' || kept === 'pool') && content.length > size) {
        return this.refuse(kept === 'tenant' ? 'memory' : 'pool', this.tenant(), ENOMEM);
      }
      const length = Math.min(size, content.length);
      out.set(content.subarray(0, length), OUT_HEADER_SIZE);
      return OUT_HEADER_SIZE + length;
    }
    const result = this.store.read(handle, offset, size, out, OUT_HEADER_SIZE);
    if (result.kind === 'past-end') return this.fail(Errno.EINVAL);
    return OUT_HEADER_SIZE + (result.kind === 'data' ? result.length : 0);
  }

  private readdir(nodeid: number, req: Buffer, out: Buffer, plus: boolean): number {
    const body = IN_HEADER_SIZE;
    const offset = readU64(req, body + 8);
    const size = Math.min(req.readUInt32LE(body + 16), out.length - OUT_HEADER_SIZE);
    const entries = this.fs.readdir(nodeid, this.caller);
    if (typeof entries === 'number') return this.fail(entries);
    let at = OUT_HEADER_SIZE;
    const end = OUT_HEADER_SIZE + size;
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
    const recordLength = align8(DIRENTPLUS_HEADER_SIZE + Buffer.byteLength(entry.name));
    if (at + recordLength > end) return 0;
    out.fill(0, at, at + ENTRY_OUT_SIZE);
    // `.` and `..` carry no entry (nodeid 0): the kernel skips them. Every other entry counts as a lookup.
    if (entry.name !== '.' && entry.name !== '..') {
      const looked = this.fs.lookup(dir, entry.name, this.caller);
      if (typeof looked !== 'number') writeEntryOut(out, at, looked);
    }
    writeDirent(out, at + ENTRY_OUT_SIZE, end, entry, next);
    return recordLength;
  }
}

/** Whether the request in `req[0..n)` is the LOOKUP of `stopName` in the root that stops a reader. */
export function isStopRequest(req: Buffer, n: number, stopName: string): boolean {
  return (
    req.readUInt32LE(4) === Op.LOOKUP &&
    req.readUInt32LE(16) === 1 &&
    req.readUInt32LE(20) === 0 &&
    n - 1 - IN_HEADER_SIZE === Buffer.byteLength(stopName) &&
    req.toString('utf8', IN_HEADER_SIZE, n - 1) === stopName
  );
}

const FILE_TYPE: Record<NodeKind, number> = { dir: S_IFDIR, file: S_IFREG, symlink: S_IFLNK };
const DIRENT_TYPE: Record<NodeKind, number> = { dir: DT_DIR, file: DT_REG, symlink: DT_LNK };

function align8(n: number): number {
  return (n + 7) & ~7;
}

function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32;
}

function writeU64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32LE(value % TWO_32, at);
  buf.writeUInt32LE(Math.floor(value / TWO_32), at + 4);
}

function writeTtl(buf: Buffer, secondsAt: number, nanosAt: number, ms: number): void {
  writeU64(buf, secondsAt, Math.floor(ms / 1000));
  buf.writeUInt32LE((ms % 1000) * 1_000_000, nanosAt);
}

/** fuse_attr (88 bytes). Times are "now", like procfs and lxcfs. */
function writeAttr(buf: Buffer, at: number, attr: NodeAttr): void {
  buf.fill(0, at, at + 88);
  writeU64(buf, at, attr.ino);
  writeU64(buf, at + 8, attr.size);
  const now = Date.now();
  const seconds = Math.floor(now / 1000);
  const nanos = (now % 1000) * 1_000_000;
  for (const field of [24, 32, 40]) writeU64(buf, at + field, seconds);
  for (const field of [48, 52, 56]) buf.writeUInt32LE(nanos, at + field);
  buf.writeUInt32LE(FILE_TYPE[attr.kind] | attr.perm, at + 60);
  buf.writeUInt32LE(attr.nlink, at + 64);
  buf.writeUInt32LE(4096, at + 80); // blksize
}

/** fuse_entry_out (128 bytes). */
function writeEntryOut(buf: Buffer, at: number, entry: Entry): void {
  writeU64(buf, at, entry.attr.ino);
  writeU64(buf, at + 8, 0); // generation
  writeTtl(buf, at + 16, at + 32, entry.entryTtlMs);
  writeTtl(buf, at + 24, at + 36, entry.attrTtlMs);
  writeAttr(buf, at + 40, entry.attr);
}

/** fuse_attr_out (104 bytes). */
function writeAttrOut(buf: Buffer, at: number, cached: CachedAttr): void {
  writeTtl(buf, at, at + 8, cached.attrTtlMs);
  buf.writeUInt32LE(0, at + 12);
  writeAttr(buf, at + 16, cached.attr);
}

/** fuse_open_out (16 bytes); returns the reply length. */
function writeOpenOut(buf: Buffer, handle: number, flags: number): number {
  const at = OUT_HEADER_SIZE;
  writeU64(buf, at, handle);
  buf.writeUInt32LE(flags, at + 8);
  buf.writeUInt32LE(0, at + 12);
  return at + 16;
}

/** fuse_dirent; returns the record length, 0 if it does not fit before `end`. */
function writeDirent(buf: Buffer, at: number, end: number, entry: DirEntry, next: number): number {
  const nameLength = Buffer.byteLength(entry.name);
  const recordLength = align8(DIRENT_HEADER_SIZE + nameLength);
  if (at + recordLength > end) return 0;
  writeU64(buf, at, entry.ino);
  writeU64(buf, at + 8, next);
  buf.writeUInt32LE(nameLength, at + 16);
  buf.writeUInt32LE(DIRENT_TYPE[entry.kind], at + 20);
  buf.write(entry.name, at + 24);
  buf.fill(0, at + 24 + nameLength, at + recordLength);
  return recordLength;
}
