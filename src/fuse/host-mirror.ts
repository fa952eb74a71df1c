// A read-only mirror of a host directory tree (e.g. /sys/devices/system/cpu) inside a static tree.
// Node ids are derived from the path, so they are the same in every reader thread and after a restart;
// a thread that meets an id it has not looked up itself finds its path by walking the host tree once.

import fs from 'node:fs';
import path from 'node:path';
import { Errno } from './abi.js';
import type { Caller, NodeAttr, NodeKind } from './filesystem.js';

/** Mirrored ids live far above hand-assigned ones and stay exact as JS numbers (< 2^53). */
const MIRROR_ID_BASE = 2 ** 45;
/** Enough for sysfs cpu trees; bounds the walk that resolves unknown ids. */
const MAX_DEPTH = 8;

export interface MirroredNode {
  ino: number;
  /** Absolute path on the host. */
  hostPath: string;
  /** Its path below the mirrored root. */
  relative: string;
  kind: NodeKind;
  mirror: HostMirror;
}

/**
 * How one caller sees a mirrored tree: the entries of its top directory that are per caller (shown under
 * the caller's own names, or hidden), files added to those entries, and file contents rewritten.
 */
export interface MirrorShape {
  /** Whether an entry of the top directory is per caller (listed only as a view says). */
  isShaped(hostName: string): boolean;
  /** Files every shaped entry has in a view, where the host lacks them. */
  readonly addedFiles: readonly string[];
  /** Whether a view may change the content of this file (its path below the mirrored root): the others
   * are read as the host's without looking up who reads them. */
  rewrites(relative: string): boolean;
  /** This caller's view, or undefined: the host's tree as it is. */
  viewFor(caller: Caller): MirrorView | undefined;
}

/** A host file's whole content, or an errno. The bytes need only last until the thread's next read: the
 * session copies them into the reply or the handle's snapshot at once. */
export type HostFileReader = (hostPath: string) => Buffer | number;

/** What a directory node mirrors, and how. */
export interface MirrorSource {
  hostRoot: string;
  /** How each caller sees the mirrored tree (the host's tree as it is without one). */
  shape?: MirrorShape;
  readFile: HostFileReader;
}

export interface MirrorView {
  /** The shaped entries the caller sees: its name → the host's name. */
  readonly entries: ReadonlyMap<string, string>;
  /** A file's content for the caller; `relative` is its path below the mirrored root. */
  rewrite(relative: string, host: Buffer): Buffer;
}

function fnv1a(text: string, seed: number): number {
  let hash = seed;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return hash >>> 0;
}

export function errnoOf(err: unknown): number {
  const code = (err as NodeJS.ErrnoException).code;
  const errno = code ? (Errno as Record<string, number>)[code] : undefined;
  return errno ?? Errno.EIO;
}

function kindOf(stat: fs.Stats): NodeKind | undefined {
  if (stat.isDirectory()) return 'dir';
  if (stat.isFile()) return 'file';
  if (stat.isSymbolicLink()) return 'symlink';
  return undefined;
}

/** The id of a path below the mirrored root: 45 bits from two independent 32-bit hashes. */
function idOfRelative(relative: string): number {
  return MIRROR_ID_BASE + (fnv1a(relative, 0x811c9dc5) % 2 ** 32) * 2 ** 13 + (fnv1a(relative, 0x01000193) & 0x1fff);
}

const EMPTY = Buffer.alloc(0);

export class HostMirror {
  private readonly byIno = new Map<number, MirroredNode>();
  readonly hostRoot: string;
  readonly shape?: MirrorShape;
  private readonly readFile: HostFileReader;

  /** `rootIno` is the id of the mirror's own directory (a static node). */
  constructor(
    readonly rootIno: number,
    source: MirrorSource,
  ) {
    this.hostRoot = source.hostRoot;
    this.shape = source.shape;
    this.readFile = source.readFile;
  }

  /** The id a host path below the root always gets. */
  idOf(hostPath: string): number {
    return idOfRelative(path.relative(this.hostRoot, hostPath));
  }

  /** The id of a mirrored node's parent directory (the mirror's own id at the top). */
  parentIdOf(hostPath: string): number {
    const parent = path.dirname(hostPath);
    return parent === this.hostRoot ? this.rootIno : this.idOf(parent);
  }

  owns(ino: number): boolean {
    return ino >= MIRROR_ID_BASE;
  }

  /** The child `name` of a host directory as `caller` sees it (`'any'`: as some caller may), or an errno. */
  child(dirHostPath: string, name: string, caller: Caller | 'any'): MirroredNode | number {
    if (name.includes('/') || name === '.' || name === '..') return Errno.ENOENT;
    const hostPath = path.join(dirHostPath, name);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(hostPath);
    } catch (err) {
      if (!this.isAdded(hostPath) || !this.addsFor(caller)) return errnoOf(err);
      return this.known(hostPath, 'file');
    }
    const kind = kindOf(stat);
    return kind ? this.known(hostPath, kind) : Errno.ENOENT;
  }

  /** The node of a host path, remembered under its id. */
  private known(hostPath: string, kind: NodeKind): MirroredNode {
    const relative = path.relative(this.hostRoot, hostPath);
    const node: MirroredNode = { ino: idOfRelative(relative), hostPath, relative, kind, mirror: this };
    this.byIno.set(node.ino, node);
    return node;
  }

  /** The node of an id, walking the host tree once if this thread has not seen it. */
  node(ino: number): MirroredNode | undefined {
    const known = this.byIno.get(ino);
    if (known) return known;
    this.walk(this.hostRoot, 0);
    return this.byIno.get(ino);
  }

  /** Names in a host directory as `caller` sees them (see child), sorted, without `.` and `..`. */
  list(dirHostPath: string, caller: Caller | 'any'): Array<{ name: string; node: MirroredNode }> | number {
    let names: string[];
    try {
      names = fs.readdirSync(dirHostPath).sort();
    } catch (err) {
      return errnoOf(err);
    }
    if (this.shape && this.isShapedEntry(dirHostPath) && this.addsFor(caller)) {
      for (const added of this.shape.addedFiles) if (!names.includes(added)) names.push(added);
      names.sort();
    }
    const entries: Array<{ name: string; node: MirroredNode }> = [];
    for (const name of names) {
      const node = this.child(dirHostPath, name, caller);
      if (typeof node !== 'number') entries.push({ name, node });
    }
    return entries;
  }

  /** Attributes of a host node, read-only: write bits dropped, regular files sized by what reading
   * them yields (sysfs reports 4096 for everything), like lxcfs. */
  attr(node: MirroredNode): NodeAttr | number {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(node.hostPath);
    } catch (err) {
      if (!this.isAdded(node.hostPath)) return errnoOf(err);
      return { ino: node.ino, kind: 'file', perm: 0o444, size: 0, nlink: 1 };
    }
    const perm = stat.mode & 0o555;
    if (node.kind === 'dir') return { ino: node.ino, kind: 'dir', perm, size: 0, nlink: 2 };
    if (node.kind === 'symlink') {
      return { ino: node.ino, kind: 'symlink', perm: 0o777, size: this.readlink(node).length, nlink: 1 };
    }
    const content = this.read(node);
    return { ino: node.ino, kind: 'file', perm, size: typeof content === 'number' ? 0 : content.length, nlink: 1 };
  }

  /** A file's content as `caller` sees it (valid until the thread's next read, see HostFileReader). */
  readFor(node: MirroredNode, caller: Caller): Buffer | number {
    const shape = this.shape;
    const view = shape?.rewrites(node.relative) ? shape.viewFor(caller) : undefined;
    return this.read(node, view);
  }

  /** A file's content as `view` shows it (the host's without one). */
  read(node: MirroredNode, view?: MirrorView): Buffer | number {
    let content = this.readFile(node.hostPath);
    if (typeof content === 'number') {
      if (!view || !this.isAdded(node.hostPath)) return content;
      content = EMPTY;
    }
    return view ? view.rewrite(node.relative, content) : content;
  }

  readlink(node: MirroredNode): Buffer {
    try {
      return fs.readlinkSync(node.hostPath, { encoding: 'buffer' });
    } catch {
      return Buffer.alloc(0);
    }
  }

  /** Whether a host directory is a shaped entry of the top directory. */
  private isShapedEntry(dirHostPath: string): boolean {
    return path.dirname(dirHostPath) === this.hostRoot && !!this.shape?.isShaped(path.basename(dirHostPath));
  }

  /** Whether a host path is a file the shape adds to a shaped entry. */
  private isAdded(hostPath: string): boolean {
    return !!this.shape?.addedFiles.includes(path.basename(hostPath)) && this.isShapedEntry(path.dirname(hostPath));
  }

  /** Whether added files exist for a caller: only in its view. */
  private addsFor(caller: Caller | 'any'): boolean {
    return caller === 'any' || this.shape?.viewFor(caller) !== undefined;
  }

  private walk(dir: string, depth: number): void {
    if (depth > MAX_DEPTH) return;
    const entries = this.list(dir, 'any');
    if (typeof entries === 'number') return;
    for (const { node } of entries) if (node.kind === 'dir') this.walk(node.hostPath, depth + 1);
  }
}
