import { closeSync, existsSync, openSync, readFileSync, readSync, statfsSync } from 'node:fs';

/**
 * The text of a file, or undefined when it cannot be read (missing, removed
 * meanwhile, not permitted). For files read once or rarely; what is read on
 * every request goes through readRenderedFile.
 */
export function readTextFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export interface RenderedFileOptions {
  /**
   * The kernel renders the file as one seq_file record (every cgroup file we read, /proc/<pid>/stat and
   * cgroup, /proc/meminfo, stat, uptime, loadavg): a read that returns less than asked for then is the
   * whole file, which saves the read that would return 0. Not so for /proc/cpuinfo or diskstats, which
   * come a record at a time.
   */
  singleRecord?: boolean;
  /** Often legitimately absent (the cgroup v2 root has no memory.max): a cheap existence check comes
   * before opening, because a failed open costs an exception. */
  oftenMissing?: boolean;
  /** Decode each byte as one character (latin1), so that the text encodes back to the same bytes;
   * otherwise UTF-8. */
  latin1?: boolean;
  /** Opened for this read and closed after it, never kept (KeptFiles): a file whose content the kernel
   * makes at open, not at each read (cgroup v1 `tasks`). */
  openEachTime?: boolean;
}

// Files read on every request stay open and are re-read from offset 0: procfs and cgroupfs render
// them afresh on each read, and this saves the path walk, open, fstat and close of every request (about
// half the cost). An fd of /proc/<pid>/... stays bound to that process: once it has exited, reads fail
// (ESRCH) instead of showing a later process that got the same pid, and the path is opened again.
// Likewise a removed cgroup's files fail (ENODEV) rather than show a new cgroup of the same name. (A
// cgroup renamed rather than removed keeps answering under its old path until the fd is evicted;
// runtimes remove cgroups, they do not rename them.)
// Only files of those kernel filesystems are kept open: a regular file (a fixture tree given as
// --proc-root) is read by path each time.
const KERNEL_FILESYSTEMS = new Set([
  0x9fa0, // procfs
  0x62656572, // sysfs
  0x27e0eb, // cgroup (v1)
  0x63677270, // cgroup2
]);

interface OpenFile {
  readonly fd: number;
  /** The clock at the last read. Updated in place: reordering the map on every read would make V8
   * reallocate its table now and then, a steady trickle of garbage into the old generation. */
  lastUse: number;
}

let scratch = Buffer.alloc(16 * 1024);
/** kernfs hands a binary sysfs attribute out a page at a time (the cpu topology masks and lists are such
 * since Linux 5.14, and pass a page on hosts with a thousand CPUs): a short read that ends on a page
 * boundary may not be the end, even of a single record. */
const PAGE_BYTES = 4096;
/** At most this much per read: procfs's sysctl files refuse a read of 4 MiB or more (ENOMEM, the size of
 * the buffer they would allocate), which a scratch buffer grown for one big file would otherwise ask. */
const MAX_READ_BYTES = 1024 * 1024;

/** Reads the whole file into `scratch`; returns the length. Throws what readSync throws. */
function readWhole(fd: number, singleRecord: boolean): number {
  let length = 0;
  for (;;) {
    if (length === scratch.length) {
      const bigger = Buffer.alloc(scratch.length * 2);
      scratch.copy(bigger);
      scratch = bigger;
    }
    const wanted = Math.min(scratch.length - length, MAX_READ_BYTES);
    const n = readSync(fd, scratch, length, wanted, length);
    length += n;
    if (n === 0 || (singleRecord && n < wanted && n % PAGE_BYTES !== 0)) return length;
  }
}

/** What a KeptFiles does with a new file when `capacity` files are open already. */
export type WhenFull =
  /** Closes the least recently used eighth at once, then keeps it. */
  | 'evict-least-recently-used'
  /** Reads it by path and closes it again; what stays open is what sweep() leaves. */
  | 'read-through';

/** Kernel files kept open (see above), at most `capacity`. Reads go to one scratch buffer per thread,
 * whichever KeptFiles reads: a content is valid until the thread's next read. Each reader thread has its
 * own for the served files (the module's `keptFiles`) and one for the cpu directory's (tree.ts); the
 * loadavg sampler has one of its own, swept after every pass. */
export class KeptFiles {
  private readonly files = new Map<string, OpenFile>();
  private clock = 0;
  /** The clock at the last sweep: files not read since have a lastUse at or below it. */
  private sweptAt = 0;

  constructor(
    private readonly capacity = 2048,
    private readonly whenFull: WhenFull = 'evict-least-recently-used',
  ) {}

  /** How many files are open now. */
  get size(): number {
    return this.files.size;
  }

  isOpen(path: string): boolean {
    return this.files.has(path);
  }

  /** Length of the file's content (see content()), or the error code (`ENOENT`...) of opening or reading it. */
  read(path: string, options: RenderedFileOptions = {}): number | string {
    const singleRecord = options.singleRecord === true;
    const cached = this.files.get(path);
    if (cached !== undefined) {
      try {
        const length = readWhole(cached.fd, singleRecord);
        cached.lastUse = ++this.clock;
        return length;
      } catch {
        this.close(path); // gone (process exited, cgroup removed): open the path afresh once
      }
    } else if (options.oftenMissing && !existsSync(path)) {
      return 'ENOENT';
    }
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      return codeOf(err);
    }
    let length: number;
    try {
      length = readWhole(fd, singleRecord);
    } catch (err) {
      closeSync(fd);
      return codeOf(err);
    }
    if (options.openEachTime !== true && this.mayKeep(path)) {
      this.files.set(path, { fd, lastUse: ++this.clock });
    } else {
      closeSync(fd);
    }
    return length;
  }

  /** The first `length` bytes of what the last read of this thread read (no copy). */
  content(length: number): Buffer {
    return scratch.subarray(0, length);
  }

  /** The file's text, or undefined when it cannot be read. */
  text(path: string, options: RenderedFileOptions = {}): string | undefined {
    const length = this.read(path, options);
    if (typeof length !== 'number') return undefined;
    return scratch.toString(options.latin1 ? 'latin1' : 'utf8', 0, length);
  }

  /** Closes what was not read since the last sweep. */
  sweep(): void {
    for (const [path, file] of [...this.files]) if (file.lastUse <= this.sweptAt) this.close(path);
    this.sweptAt = this.clock;
  }

  /** Closes every file. */
  closeAll(): void {
    for (const path of [...this.files.keys()]) this.close(path);
  }

  private mayKeep(path: string): boolean {
    if (!onKernelFilesystem(path)) return false;
    if (this.files.size < this.capacity) return true;
    if (this.whenFull === 'read-through') return false;
    this.evictLeastRecentlyUsed();
    return true;
  }

  /** Closes one file (it is opened again by its next read). */
  close(path: string): void {
    const file = this.files.get(path);
    if (file === undefined) return;
    this.files.delete(path);
    try {
      closeSync(file.fd);
    } catch {
      // Already unusable; nothing to release.
    }
  }

  /** Closes the least recently used eighth, and renumbers the rest from 1 so that the clock stays small. */
  private evictLeastRecentlyUsed(): void {
    const byUse = [...this.files].sort(([, a], [, b]) => a.lastUse - b.lastUse);
    const evicted = Math.max(1, Math.floor(this.capacity / 8));
    for (const [path] of byUse.slice(0, evicted)) this.close(path);
    this.clock = 0;
    this.sweptAt = 0;
    for (const [, file] of byUse.slice(evicted)) file.lastUse = ++this.clock;
  }
}

let keptFiles = new KeptFiles();

/** Replaces this thread's kept files (closing those open) with room for `capacity`. */
export function keepFilesUpTo(capacity: number): void {
  keptFiles.closeAll();
  keptFiles = new KeptFiles(capacity);
}

/** The soft limit on open files of this process (from /proc/self/limits), or 1024 when unreadable. */
export function openFileLimit(): number {
  const limits = readTextFile('/proc/self/limits') ?? '';
  const soft = /^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1];
  if (soft === undefined) return 1024;
  return soft === 'unlimited' ? 1 << 20 : Number(soft);
}

/** Descriptors left for other uses (FUSE, log, config, children) when files are kept open. */
const RESERVED_FILES = 1024;

/**
 * How many files the serving process may keep open, by user: the loadavg sampler its threads'
 * descriptors (half) and its cgroups' files (an eighth); the reader threads share the rest. Under
 * systemd Node raises the soft limit to the hard one (524288).
 */
export function fileBudget(): { samplerThreads: number; samplerCgroupFiles: number; readers: number } {
  const budget = Math.max(0, openFileLimit() - RESERVED_FILES);
  return {
    samplerThreads: Math.floor(budget / 2),
    samplerCgroupFiles: Math.floor(budget / 8),
    readers: Math.floor((budget * 3) / 8),
  };
}

/** The kernel files each of `readers` reader threads may keep open: an even share of the readers' part of
 * fileBudget(), at least 256 and at most 8192 (a reader keeps a few dozen files per container: 7/8 of
 * 8192, the served files' part, is some 250 containers). */
export function keptFilesPerReader(readers: number): number {
  return Math.min(8192, Math.max(256, Math.floor(fileBudget().readers / Math.max(1, readers))));
}

function onKernelFilesystem(path: string): boolean {
  try {
    return KERNEL_FILESYSTEMS.has(statfsSync(path).type);
  } catch {
    return false;
  }
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'EIO';
}

/** The text of a pseudo-file read on every request (see above), or undefined when it cannot be read.
 * `files`: whose kept fds to use (the thread's own unless a test brings a small one). */
export function readRenderedFile(path: string, options: RenderedFileOptions = {}, files = keptFiles): string | undefined {
  return files.text(path, options);
}

/** Like readRenderedFile, as bytes, or the error code (`ENOENT`...) when it cannot be read. The bytes are
 * this thread's scratch buffer: valid until its next read through any KeptFiles. */
export function readRenderedBytes(path: string, options: RenderedFileOptions = {}, files = keptFiles): Buffer | string {
  const length = files.read(path, options);
  return typeof length === 'number' ? files.content(length) : length;
}
