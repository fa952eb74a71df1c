import type { Log } from '../util/thread-log.js';
// The node-level interface a filesystem implements to be served by the FUSE session.
// Every call is synchronous (it runs inside a reader thread's request loop) and returns either a value
// or a positive errno number: errors are values, never exceptions, so one bad request cannot stop a reader.

/** Who sent the request, from the FUSE request header. `pid` is the calling thread's id as seen from the
 * pid namespace of the mounter, 0 when the kernel sends the request on its own behalf. */
export interface Caller {
  pid: number;
  uid: number;
  gid: number;
  /** Tenancy.keyOf(this caller), as the reader found it for this request, so that the filesystem need
   * not find it again; absent or 0 when not known. */
  tenant?: number;
}

export type NodeKind = 'dir' | 'file' | 'symlink';

export interface NodeAttr {
  ino: number;
  kind: NodeKind;
  /** Permission bits only; the session adds the file type bits. */
  perm: number;
  size: number;
  nlink: number;
}

/** Attributes with how long the kernel may cache them. */
export interface CachedAttr {
  attr: NodeAttr;
  attrTtlMs: number;
}

/** A LOOKUP answer: the attributes plus how long the name → node binding may be cached. */
export interface Entry extends CachedAttr {
  entryTtlMs: number;
}

export interface DirEntry {
  name: string;
  ino: number;
  kind: NodeKind;
}

export interface FileSystem {
  lookup(parent: number, name: string, caller: Caller): Entry | number;
  getattr(ino: number, caller: Caller): CachedAttr | number;
  /** The whole listing, `.` and `..` included; the session pages it by index. */
  readdir(ino: number, caller: Caller): DirEntry[] | number;
  /** Checks an open(2) of a file; `flags` are the open flags. 0 allows it. */
  open(ino: number, flags: number, caller: Caller): number;
  /** Renders the whole content of a file for this caller (called on the read at offset 0). */
  read(ino: number, caller: Caller): Uint8Array | number;
  /** The target of a symlink. */
  readlink(ino: number, caller: Caller): Uint8Array | number;
  /** Whether a directory's listing is the same for every caller and never changes: the kernel may then
   * keep it cached across opens. */
  listingIsStable(ino: number): boolean;
  /** access(2) check; 0 allows it. */
  access(ino: number, mask: number, caller: Caller): number;
  /** A write(2) of `data` at `offset` to the open handle `fh` (opened for writing: see open); the count
   * of bytes taken, or an errno. Without it every write fails with EROFS. */
  write?(ino: number, fh: number, offset: number, data: Buffer, caller: Caller): { written: number } | number;
  /** A poll(2) of the handle `fh`: the ready events (poll(2) bits), or an errno (ENOSYS: the kernel stops
   * asking for the whole connection and treats every file as readable and writable). `kh` is the kernel's
   * name for the file in a poll wakeup notification; `notify` says a poller waits for one. Without it,
   * ENOSYS. */
  poll?(ino: number, fh: number, kh: number, notify: boolean, caller: Caller): { revents: number } | number;
  /** The handle `fh` is closed for good (every descriptor on it), to free what a write or poll kept. */
  release?(ino: number, fh: number): void;
}

/** What a filesystem module exports so that each reader thread can build its own instance; `log` is
 * the reader's logger, for debug-level diagnostics. */
export type FileSystemFactory = (options: unknown, log: Log) => FileSystem | Promise<FileSystem>;

/** Who a request counts against for per-tenant limits (handles, snapshot memory) and fair queuing: a
 * tenant is typically a container. A filesystem module may export a TenancyFactory as `createTenancy`;
 * without one every caller is the same tenant. */
export interface Tenancy {
  /** The same number for every request of one tenant; 0 when it cannot be told (those share one). */
  keyOf(caller: Caller): number;
  /** Fields that name the tenant in a log line. */
  describe(key: number, caller: Caller): Record<string, unknown>;
}

export type TenancyFactory = (options: unknown) => Tenancy;
