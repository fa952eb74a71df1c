// A read-only mirror of a host directory tree (e.g. /sys/devices/system/cpu) inside a static tree.
// Node ids are derived from the path, so they are the same in every reader thread and after a restart;
// a thread that meets an id it has not looked up itself finds its path by walking the host tree once.

import fs from 'node:fs';
import path from 'node:path';
import { Errno } from './abi.js';
import type { NodeAttr, NodeKind } from './filesystem.js';

/** Mirrored ids live far above hand-assigned ones and stay exact as JS numbers (< 2^53). */
const MIRROR_ID_BASE = 2 ** 45;
/** Enough for sysfs cpu trees; bounds the walk that resolves unknown ids. */
const MAX_DEPTH = 8;

export interface MirroredNode {
  ino: number;
  /** Absolute path on the host. */
  hostPath: string;
  kind: NodeKind;
  mirror: HostMirror;
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

export class HostMirror {
  private readonly byIno = new Map<number, MirroredNode>();

  /** `rootIno` is the id of the mirror's own directory (a static node); `hostRoot` what it mirrors. */
  constructor(
    readonly rootIno: number,
    readonly hostRoot: string,
  ) {}

  /** The id a host path below the root always gets. */
  idOf(hostPath: string): number {
    const relative = path.relative(this.hostRoot, hostPath);
    // 45 bits from two independent 32-bit hashes.
    return MIRROR_ID_BASE + (fnv1a(relative, 0x811c9dc5) % 2 ** 32) * 2 ** 13 + (fnv1a(relative, 0x01000193) & 0x1fff);
  }

  /** The id of a mirrored node's parent directory (the mirror's own id at the top). */
  parentIdOf(hostPath: string): number {
    const parent = path.dirname(hostPath);
    return parent === this.hostRoot ? this.rootIno : this.idOf(parent);
  }

  owns(ino: number): boolean {
    return ino >= MIRROR_ID_BASE;
  }

  /** The child `name` of a host directory, or an errno. */
  child(dirHostPath: string, name: string): MirroredNode | number {
    if (name.includes('/') || name === '.' || name === '..') return Errno.ENOENT;
    const hostPath = path.join(dirHostPath, name);
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(hostPath);
    } catch (err) {
      return errnoOf(err);
    }
    const kind = kindOf(stat);
    if (!kind) return Errno.ENOENT;
    const node: MirroredNode = { ino: this.idOf(hostPath), hostPath, kind, mirror: this };
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

  /** Names in a host directory, sorted, without `.` and `..`. */
  list(dirHostPath: string): Array<{ name: string; node: MirroredNode }> | number {
    let names: string[];
    try {
      names = fs.readdirSync(dirHostPath).sort();
    } catch (err) {
      return errnoOf(err);
    }
    const entries: Array<{ name: string; node: MirroredNode }> = [];
    for (const name of names) {
      const node = this.child(dirHostPath, name);
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
      return errnoOf(err);
    }
    const perm = stat.mode & 0o555;
    if (node.kind === 'dir') return { ino: node.ino, kind: 'dir', perm, size: 0, nlink: 2 };
    if (node.kind === 'symlink') {
      return { ino: node.ino, kind: 'symlink', perm: 0o777, size: this.readlink(node).length, nlink: 1 };
    }
    const content = this.read(node);
    return { ino: node.ino, kind: 'file', perm, size: typeof content === 'number' ? 0 : content.length, nlink: 1 };
  }

  read(node: MirroredNode): Buffer | number {
    try {
      return fs.readFileSync(node.hostPath);
    } catch (err) {
      return errnoOf(err);
    }
  }

  readlink(node: MirroredNode): Buffer {
    try {
      return fs.readlinkSync(node.hostPath, { encoding: 'buffer' });
    } catch {
      return Buffer.alloc(0);
    }
  }

  private walk(dir: string, depth: number): void {
    if (depth > MAX_DEPTH) return;
    const entries = this.list(dir);
    if (typeof entries === 'number') return;
    for (const { node } of entries) if (node.kind === 'dir') this.walk(node.hostPath, depth + 1);
  }
}
