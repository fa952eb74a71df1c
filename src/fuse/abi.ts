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
  INVAL_INODE: 2,
  INVAL_ENTRY: 3,
  RESEND: 7,
} as const;

export const ROOT_ID = 1n;

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
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOTTY: 25,
  EROFS: 30,
  ERANGE: 34,
  ENOSYS: 38,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  EPROTO: 71,
} as const;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 128;
export const ATTR_OUT_SIZE = 104;
export const OPEN_OUT_SIZE = 16;
export const INIT_OUT_SIZE = 64;
export const STATFS_OUT_SIZE = 80;
export const DIRENT_HEADER_SIZE = 24;
export const DIRENTPLUS_HEADER_SIZE = ENTRY_OUT_SIZE + DIRENT_HEADER_SIZE;

/** max_write we announce: the kernel's minimum, which keeps the read buffer requirement at 8 KiB. */
export const MAX_WRITE = 4096;
/** Largest READ the kernel will send us: max_pages × 4 KiB. */
export const MAX_PAGES = 32;
/** One reader's buffer: the largest request (a WRITE of max_write) plus headers, rounded generously. */
export const READ_BUFFER_SIZE = 128 * 1024 + 4096;

/** Read access bits in open(2) flags. */
export const O_ACCMODE = 3;
export const O_RDONLY = 0;

/** access(2) mask bits. */
export const W_OK = 2;
export const X_OK = 1;
