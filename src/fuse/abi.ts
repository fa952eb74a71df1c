// The FUSE kernel ABI we speak (include/uapi/linux/fuse.h, protocol 7.31 to 7.45).
// Only the parts a read-only synthetic filesystem needs; sizes are the binary contract.

export const FUSE_KERNEL_VERSION = 7;
/** Highest minor we implement; the reply uses min(kernel, this). */
export const FUSE_MAX_MINOR = 45;
/** Oldest minor we accept (Linux 5.4): older kernels lack what the design relies on. */
export const FUSE_MIN_MINOR = 31;

export const Op = {
  LOOKUP: 1,
  FORGET: 2,
  GETATTR: 3,
  SETATTR: 4,
  READLINK: 5,
  SYMLINK: 6,
  MKNOD: 8,
  MKDIR: 9,
  UNLINK: 10,
  RMDIR: 11,
  RENAME: 12,
  LINK: 13,
  OPEN: 14,
  READ: 15,
  WRITE: 16,
  STATFS: 17,
  RELEASE: 18,
  FSYNC: 20,
  SETXATTR: 21,
  GETXATTR: 22,
  LISTXATTR: 23,
  REMOVEXATTR: 24,
  FLUSH: 25,
  INIT: 26,
  OPENDIR: 27,
  READDIR: 28,
  RELEASEDIR: 29,
  FSYNCDIR: 30,
  GETLK: 31,
  SETLK: 32,
  SETLKW: 33,
  ACCESS: 34,
  CREATE: 35,
  INTERRUPT: 36,
  BMAP: 37,
  DESTROY: 38,
  IOCTL: 39,
  POLL: 40,
  NOTIFY_REPLY: 41,
  BATCH_FORGET: 42,
  FALLOCATE: 43,
  READDIRPLUS: 44,
  RENAME2: 45,
  LSEEK: 46,
  COPY_FILE_RANGE: 47,
  SETUPMAPPING: 48,
  REMOVEMAPPING: 49,
  SYNCFS: 50,
  TMPFILE: 51,
  STATX: 52,
  COPY_FILE_RANGE_64: 53,
} as const;

export const OP_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Op).map(([name, code]) => [code, name]),
);

/** INIT flag bits (flags word; flags2 bits are 32 + n and unused by us). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  DO_READDIRPLUS: 1 << 13,
  PARALLEL_DIROPS: 1 << 18,
  ABORT_ERROR: 1 << 21,
  MAX_PAGES: 1 << 22,
  INIT_EXT: 1 << 30,
} as const;

/** flags2 bits (bit n of flags2 = init flag 32 + n). */
export const InitFlag2 = {
  HAS_RESEND: 1 << 7,
  REQUEST_TIMEOUT: 1 << 10,
} as const;

/** The flags we accept when the kernel offers them. Never REQUEST_TIMEOUT: one slow reply would abort
 * the whole connection and every container's bind mount with it. */
export const WANTED_INIT_FLAGS =
  InitFlag.ASYNC_READ |
  InitFlag.PARALLEL_DIROPS |
  InitFlag.MAX_PAGES |
  InitFlag.ABORT_ERROR |
  InitFlag.DO_READDIRPLUS;

export const FOPEN_DIRECT_IO = 1 << 0;
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_CACHE_DIR = 1 << 3;
export const FOPEN_NOFLUSH = 1 << 5;

export const NotifyCode = {
  POLL: 1,
  RESEND: 7,
} as const;

/** fuse_poll_in.flags: the kernel has a waiter and wants a FUSE_NOTIFY_POLL when the file's state changes. */
export const FUSE_POLL_SCHEDULE_NOTIFY = 1 << 0;

/** poll(2) event bits as fuse_poll_out.revents carries them (the kernel demangles them to its own). */
export const PollEvent = {
  IN: 0x1,
  PRI: 0x2,
  OUT: 0x4,
  ERR: 0x8,
  HUP: 0x10,
  RDNORM: 0x40,
  WRNORM: 0x100,
} as const;

/** What the kernel reports for a file without a poll method: readable and writable. */
export const DEFAULT_POLLMASK = PollEvent.IN | PollEvent.OUT | PollEvent.RDNORM | PollEvent.WRNORM;

export const ROOT_ID = 1;

export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;

/** Linux errno values (the kernel wants the negated number in the reply header). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOTTY: 25,
  ENOSPC: 28,
  EROFS: 30,
  ERANGE: 34,
  ENOSYS: 38,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  EPROTO: 71,
} as const;

/** max_write we announce: the kernel's minimum, which keeps the read buffer requirement at 8 KiB. */
export const MAX_WRITE = 4096;
/** Largest READ the kernel will send us: max_pages × 4 KiB. */
export const MAX_PAGES = 32;
/**
 * Background requests the kernel may have waiting on us at once. A close reaches us as a RELEASE in the
 * background; with the kernel's default of 12, a container whose threads open and close in a loop on a
 * busy host had its closes wait in the kernel for a slot, and reached its handle limit with files it had
 * closed. We serve a RELEASE as soon as we read it: the kernel should pass them all on. (Root may raise
 * it; the kernel caps it for unprivileged mounts only.)
 */
export const MAX_BACKGROUND = 1024;
/** One reader's buffer: the largest request (a WRITE of max_write) plus headers, rounded generously. */
export const READ_BUFFER_SIZE = 128 * 1024 + 4096;

/** Read access bits in open(2) flags. */
export const O_ACCMODE = 3;
export const O_RDONLY = 0;

/** access(2) mask bits. */
export const W_OK = 2;
export const X_OK = 1;

// Struct codecs: one per kernel struct we read or write, with the sizes and offsets of
// include/uapi/linux/fuse.h. Nothing outside this file knows an offset. Request bodies follow the
// 40-byte in-header, so their readers take the whole request; replies are written at `at` (a reply body
// starts after the 16-byte out-header; an entry or dirent may sit further in). Fields we do not set are 0.

const TWO_32 = 0x1_0000_0000;

/** u64 fields as numbers: node ids, handles, offsets and sizes stay far below 2^53. */
function readU64(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32;
}

function writeU64(buf: Buffer, at: number, value: number): void {
  buf.writeUInt32LE(value % TWO_32, at);
  buf.writeUInt32LE(Math.floor(value / TWO_32), at + 4);
}

/** A cache lifetime as the kernel takes it: whole seconds (u64) and the nanoseconds beyond (u32). */
function writeValidity(buf: Buffer, secondsAt: number, nanosAt: number, ms: number): void {
  writeU64(buf, secondsAt, Math.floor(ms / 1000));
  buf.writeUInt32LE((ms % 1000) * 1_000_000, nanosAt);
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** fuse_in_header (40 bytes): the start of every request; uid, gid and pid are the caller's. */
export const InHeader = {
  SIZE: 40,
  opcode: (req: Buffer): number => req.readUInt32LE(4),
  nodeid: (req: Buffer): number => readU64(req, 16),
  uid: (req: Buffer): number => req.readUInt32LE(24),
  gid: (req: Buffer): number => req.readUInt32LE(28),
  pid: (req: Buffer): number => req.readUInt32LE(32),
} as const;

const BODY = InHeader.SIZE;

/** fuse_out_header (16 bytes): the start of every reply and notification. */
export const OutHeader = {
  SIZE: 16,
  /** Completes the reply to `req` in `out`: its length, the negated errno, and `unique` copied byte for
   * byte (a resent request has bit 63 set, past a number's precision). */
  write(out: Buffer, length: number, errno: number, req: Buffer): void {
    out.writeUInt32LE(length, 0);
    out.writeInt32LE(-errno, 4);
    req.copy(out, 8, 8, 16);
  },
  /** A notification without payload: unique 0, and the notify code where a reply has its error. */
  notification(code: number): Buffer {
    const buf = Buffer.alloc(OutHeader.SIZE);
    buf.writeUInt32LE(OutHeader.SIZE, 0);
    buf.writeInt32LE(code, 4);
    return buf;
  },
} as const;

/** The body of LOOKUP: a NUL-terminated name, the NUL counted in the request's length `n`. */
export const LookupIn = {
  name: (req: Buffer, n: number): string => req.toString('utf8', BODY, n - 1),
  nameBytes: (n: number): number => n - 1 - BODY,
} as const;

/** fuse_init_in (64 bytes since 7.36; 16 before, without flags2). */
export const InitIn = {
  major: (req: Buffer): number => req.readUInt32LE(BODY),
  minor: (req: Buffer): number => req.readUInt32LE(BODY + 4),
  maxReadahead: (req: Buffer): number => req.readUInt32LE(BODY + 8),
  flags: (req: Buffer): number => req.readUInt32LE(BODY + 12),
  /** 0 when the request of length `n` ends before it (a kernel older than 7.36). */
  flags2: (req: Buffer, n: number): number => (n >= BODY + 20 ? req.readUInt32LE(BODY + 16) : 0),
} as const;

export interface InitReply {
  major: number;
  minor?: number;
  maxReadahead?: number;
  flags?: number;
  maxWrite?: number;
  /** Requests the kernel sends in the background (RELEASE among them) it lets wait on us at once; 0
   * keeps its default of 12. */
  maxBackground?: number;
  /** Background requests at which the kernel counts the connection congested; 0 keeps its default. */
  congestionThreshold?: number;
  /** Timestamp granularity in nanoseconds. */
  timeGran?: number;
  maxPages?: number;
}

/** fuse_init_out (64 bytes since 7.23). flags2, and with it REQUEST_TIMEOUT, is always 0. */
export const InitOut = {
  SIZE: 64,
  write(buf: Buffer, at: number, reply: InitReply): void {
    buf.fill(0, at, at + InitOut.SIZE);
    buf.writeUInt32LE(reply.major, at);
    buf.writeUInt32LE(reply.minor ?? 0, at + 4);
    buf.writeUInt32LE(reply.maxReadahead ?? 0, at + 8);
    buf.writeUInt32LE((reply.flags ?? 0) >>> 0, at + 12);
    buf.writeUInt16LE(reply.maxBackground ?? 0, at + 16);
    buf.writeUInt16LE(reply.congestionThreshold ?? 0, at + 18);
    buf.writeUInt32LE(reply.maxWrite ?? 0, at + 20);
    buf.writeUInt32LE(reply.timeGran ?? 0, at + 24);
    buf.writeUInt16LE(reply.maxPages ?? 0, at + 28);
  },
} as const;

export interface AttrFields {
  ino: number;
  size: number;
  /** File type and permission bits. */
  mode: number;
  nlink: number;
  blksize: number;
  /** atime, mtime and ctime alike. */
  timeMs: number;
}

/** fuse_attr (88 bytes). */
export const Attr = {
  SIZE: 88,
  write(buf: Buffer, at: number, attr: AttrFields): void {
    buf.fill(0, at, at + Attr.SIZE);
    writeU64(buf, at, attr.ino);
    writeU64(buf, at + 8, attr.size);
    const seconds = Math.floor(attr.timeMs / 1000);
    const nanos = (attr.timeMs % 1000) * 1_000_000;
    for (const field of [24, 32, 40]) writeU64(buf, at + field, seconds); // atime, mtime, ctime
    for (const field of [48, 52, 56]) buf.writeUInt32LE(nanos, at + field);
    buf.writeUInt32LE(attr.mode, at + 60);
    buf.writeUInt32LE(attr.nlink, at + 64);
    buf.writeUInt32LE(attr.blksize, at + 80);
  },
} as const;

/** fuse_entry_out (128 bytes): the answer to LOOKUP, and the first part of a READDIRPLUS record. */
export const EntryOut = {
  SIZE: 128,
  write(buf: Buffer, at: number, entryValidMs: number, attrValidMs: number, attr: AttrFields): void {
    writeU64(buf, at, attr.ino); // nodeid: our node ids are the inode numbers
    writeU64(buf, at + 8, 0); // generation
    writeValidity(buf, at + 16, at + 32, entryValidMs);
    writeValidity(buf, at + 24, at + 36, attrValidMs);
    Attr.write(buf, at + 40, attr);
  },
} as const;

/** fuse_attr_out (104 bytes): the answer to GETATTR. */
export const AttrOut = {
  SIZE: 104,
  write(buf: Buffer, at: number, attrValidMs: number, attr: AttrFields): void {
    writeValidity(buf, at, at + 8, attrValidMs);
    buf.writeUInt32LE(0, at + 12);
    Attr.write(buf, at + 16, attr);
  },
} as const;

/** fuse_open_in (8 bytes), the body of OPEN and OPENDIR. */
export const OpenIn = {
  /** open(2) flags. */
  flags: (req: Buffer): number => req.readUInt32LE(BODY),
} as const;

/** fuse_open_out (16 bytes). */
export const OpenOut = {
  SIZE: 16,
  write(buf: Buffer, at: number, fh: number, openFlags: number): void {
    writeU64(buf, at, fh);
    buf.writeUInt32LE(openFlags, at + 8);
    buf.writeUInt32LE(0, at + 12);
  },
} as const;

/** fuse_read_in (40 bytes), the body of READ, READDIR and READDIRPLUS. */
export const ReadIn = {
  fh: (req: Buffer): number => readU64(req, BODY),
  offset: (req: Buffer): number => readU64(req, BODY + 8),
  size: (req: Buffer): number => req.readUInt32LE(BODY + 16),
} as const;

/** fuse_release_in (24 bytes), the body of RELEASE and RELEASEDIR. */
export const ReleaseIn = {
  fh: (req: Buffer): number => readU64(req, BODY),
} as const;

/** fuse_write_in (40 bytes), then the data: the body of WRITE. */
export const WriteIn = {
  SIZE: 40,
  fh: (req: Buffer): number => readU64(req, BODY),
  offset: (req: Buffer): number => readU64(req, BODY + 8),
  size: (req: Buffer): number => req.readUInt32LE(BODY + 16),
  /** The written bytes of the request of length `n` (no copy). */
  data: (req: Buffer, n: number): Buffer => req.subarray(BODY + 40, Math.min(n, BODY + 40 + req.readUInt32LE(BODY + 16))),
} as const;

/** fuse_write_out (8 bytes): how many bytes were taken. */
export const WriteOut = {
  SIZE: 8,
  write(buf: Buffer, at: number, size: number): void {
    buf.writeUInt32LE(size, at);
    buf.writeUInt32LE(0, at + 4);
  },
} as const;

/** fuse_poll_in (24 bytes): the body of POLL. `kh` names the polled file in FUSE_NOTIFY_POLL. */
export const PollIn = {
  fh: (req: Buffer): number => readU64(req, BODY),
  kh: (req: Buffer): number => readU64(req, BODY + 8),
  flags: (req: Buffer): number => req.readUInt32LE(BODY + 16),
  /** The poll(2) events asked for (PollEvent bits). */
  events: (req: Buffer): number => req.readUInt32LE(BODY + 20),
} as const;

/** fuse_poll_out (8 bytes): the events that are ready (PollEvent bits). */
export const PollOut = {
  SIZE: 8,
  write(buf: Buffer, at: number, revents: number): void {
    buf.writeUInt32LE(revents, at);
    buf.writeUInt32LE(0, at + 4);
  },
} as const;

/** FUSE_NOTIFY_POLL: an out-header with unique 0 and the notify code, then fuse_notify_poll_wakeup_out
 * (8 bytes: kh). The kernel wakes whoever polls the file with that kh, and they poll again. */
export const NotifyPollWakeup = {
  SIZE: OutHeader.SIZE + 8,
  message(kh: number): Buffer {
    const buf = Buffer.alloc(NotifyPollWakeup.SIZE);
    buf.writeUInt32LE(NotifyPollWakeup.SIZE, 0);
    buf.writeInt32LE(NotifyCode.POLL, 4);
    writeU64(buf, OutHeader.SIZE, kh);
    return buf;
  },
} as const;

/** fuse_access_in (8 bytes). */
export const AccessIn = {
  /** access(2) mask. */
  mask: (req: Buffer): number => req.readUInt32LE(BODY),
} as const;

/** fuse_statfs_out (80 bytes, one fuse_kstatfs): block and file counts 0. */
export const StatfsOut = {
  SIZE: 80,
  write(buf: Buffer, at: number, fields: { bsize: number; namelen: number; frsize: number }): void {
    buf.fill(0, at, at + StatfsOut.SIZE);
    buf.writeUInt32LE(fields.bsize, at + 40);
    buf.writeUInt32LE(fields.namelen, at + 44);
    buf.writeUInt32LE(fields.frsize, at + 48);
  },
} as const;

/** fuse_dirent: 24 bytes, the name without NUL, zero padding to a multiple of 8. */
export const Dirent = {
  recordLength: (nameBytes: number): number => align8(24 + nameBytes),
  /** `off`: where the next READDIR resumes after this record; `type`: a DT_* value. */
  write(buf: Buffer, at: number, ino: number, off: number, type: number, name: string): void {
    const nameBytes = buf.write(name, at + 24);
    writeU64(buf, at, ino);
    writeU64(buf, at + 8, off);
    buf.writeUInt32LE(nameBytes, at + 16);
    buf.writeUInt32LE(type, at + 20);
    buf.fill(0, at + 24 + nameBytes, at + Dirent.recordLength(nameBytes));
  },
} as const;

/** fuse_direntplus: a fuse_entry_out, then a fuse_dirent. */
export const DirentPlus = {
  recordLength: (nameBytes: number): number => align8(EntryOut.SIZE + 24 + nameBytes),
  DIRENT_AT: EntryOut.SIZE,
} as const;
