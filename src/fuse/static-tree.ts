// A FileSystem over a fixed tree of directories and read-only files whose content is rendered per
// caller. Node ids are assigned by the tree's author and never change, so they stay valid across
// restarts of the daemon (the kernel keeps them in its cache).

import { Errno, O_ACCMODE, O_RDONLY, W_OK, X_OK } from './abi.js';
import type { CachedAttr, Caller, DirEntry, Entry, FileSystem, NodeAttr } from './filesystem.js';

export interface FileNode {
  kind: 'file';
  ino: number;
  /** The whole content for this caller, or an errno. */
  render(caller: Caller): Uint8Array | number;
  /** What stat(2) reports as the size (readers never depend on it: files are direct-I/O). */
  size(): number;
}

export interface DirNode {
  kind: 'dir';
  ino: number;
  children: Map<string, TreeNode>;
}

export type TreeNode = FileNode | DirNode;

export interface TreeTimeouts {
  /** How long the kernel may cache names and directory attributes: the shape never changes. */
  staticMs: number;
  /** How long the kernel may cache a file's attributes (its size follows the host file). */
  fileAttrMs: number;
}

const FILE_PERM = 0o444;
const DIR_PERM = 0o555;

export class StaticTreeFileSystem implements FileSystem {
  private readonly nodes = new Map<number, TreeNode>();
  private readonly parents = new Map<number, number>();

  constructor(
    root: DirNode,
    private readonly timeouts: TreeTimeouts,
  ) {
    this.index(root, root.ino);
  }

  private index(node: TreeNode, parent: number): void {
    if (this.nodes.has(node.ino)) throw new Error(`node id ${node.ino} is used twice`);
    this.nodes.set(node.ino, node);
    this.parents.set(node.ino, parent);
    if (node.kind === 'dir') for (const child of node.children.values()) this.index(child, node.ino);
  }

  lookup(parent: number, name: string): Entry | number {
    const dir = this.nodes.get(parent);
    if (!dir) return Errno.ENOENT;
    if (dir.kind !== 'dir') return Errno.ENOTDIR;
    const child = dir.children.get(name);
    if (!child) return Errno.ENOENT;
    return { ...this.cachedAttr(child), entryTtlMs: this.timeouts.staticMs };
  }

  getattr(ino: number): CachedAttr | number {
    const node = this.nodes.get(ino);
    return node ? this.cachedAttr(node) : Errno.ENOENT;
  }

  readdir(ino: number): DirEntry[] | number {
    const dir = this.nodes.get(ino);
    if (!dir) return Errno.ENOENT;
    if (dir.kind !== 'dir') return Errno.ENOTDIR;
    const entries: DirEntry[] = [
      { name: '.', ino, kind: 'dir' },
      { name: '..', ino: this.parents.get(ino)!, kind: 'dir' },
    ];
    for (const [name, child] of dir.children) entries.push({ name, ino: child.ino, kind: child.kind });
    return entries;
  }

  open(ino: number, flags: number): number {
    const node = this.nodes.get(ino);
    if (!node) return Errno.ENOENT;
    if (node.kind === 'dir') return Errno.EISDIR;
    // Mode 0444 means what it says, for root too (no default_permissions: the kernel leaves it to us).
    return (flags & O_ACCMODE) === O_RDONLY ? 0 : Errno.EACCES;
  }

  read(ino: number, caller: Caller): Uint8Array | number {
    const node = this.nodes.get(ino);
    if (!node) return Errno.ENOENT;
    if (node.kind === 'dir') return Errno.EISDIR;
    return node.render(caller);
  }

  access(ino: number, mask: number): number {
    const node = this.nodes.get(ino);
    if (!node) return Errno.ENOENT;
    const denied = node.kind === 'dir' ? W_OK : W_OK | X_OK;
    return mask & denied ? Errno.EACCES : 0;
  }

  private cachedAttr(node: TreeNode): CachedAttr {
    const attr: NodeAttr =
      node.kind === 'dir'
        ? { ino: node.ino, kind: 'dir', perm: DIR_PERM, size: 0, nlink: 2 + countDirs(node) }
        : { ino: node.ino, kind: 'file', perm: FILE_PERM, size: node.size(), nlink: 1 };
    return { attr, attrTtlMs: node.kind === 'dir' ? this.timeouts.staticMs : this.timeouts.fileAttrMs };
  }
}

function countDirs(dir: DirNode): number {
  let count = 0;
  for (const child of dir.children.values()) if (child.kind === 'dir') count++;
  return count;
}
