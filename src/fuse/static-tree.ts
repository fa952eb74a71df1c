// A FileSystem over a fixed tree of directories and read-only files whose content is rendered per
// caller, plus directories that mirror a host directory read-only (with some entries overridden).
// Node ids are assigned by the tree's author (mirrored ones derive from the path) and never change, so
// they stay valid across restarts of the daemon (the kernel keeps them in its cache).

import { DEFAULT_POLLMASK, Errno, O_ACCMODE, O_RDONLY, W_OK, X_OK } from './abi.js';
import type { CachedAttr, Caller, DirEntry, Entry, FileSystem, NodeAttr } from './filesystem.js';
import { HostMirror, type MirroredNode, type MirrorSource } from './host-mirror.js';

export interface FileNode {
  kind: 'file';
  ino: number;
  /** The whole content for this caller, or an errno. */
  render(caller: Caller): Uint8Array | number;
  /** What a handle opened for writing may do (see FileHandleHooks); without it, opens for writing fail
   * with EACCES and polls see the file always ready. */
  handles?: FileHandleHooks;
}

/** Per-handle behaviour of a writable file, as FileSystem's write, poll and release. */
export interface FileHandleHooks {
  write(fh: number, offset: number, data: Buffer, caller: Caller): { written: number } | number;
  poll(fh: number, kh: number, notify: boolean, caller: Caller): { revents: number } | number;
  release(fh: number): void;
}

export interface DirNode {
  kind: 'dir';
  ino: number;
  children: Map<string, TreeNode>;
  /** Mirror a host directory: its entries appear below `children`, which win on a name clash. */
  mirrorOf?: MirrorSource;
}

export type TreeNode = FileNode | DirNode;

export interface TreeTimeouts {
  /** How long the kernel may cache names and directory attributes: the shape never changes. */
  staticMs: number;
  /** How long the kernel may cache a file's attributes, and anything about mirrored host nodes (CPUs
   * can come and go). */
  fileAttrMs: number;
  /** Answer POLL (files without handle hooks are always ready); without it POLL answers ENOSYS, which the
   * kernel latches for the connection: nothing then ever waits on us in poll(2). */
  pollable?: boolean;
}

const FILE_PERM = 0o444;
const DIR_PERM = 0o555;

export class StaticTreeFileSystem implements FileSystem {
  private readonly nodes = new Map<number, TreeNode>();
  private readonly parents = new Map<number, number>();
  private readonly mirrors: HostMirror[] = [];

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
    if (node.kind !== 'dir') return;
    if (node.mirrorOf) this.mirrors.push(new HostMirror(node.ino, node.mirrorOf));
    for (const child of node.children.values()) this.index(child, node.ino);
  }

  lookup(parent: number, name: string, caller: Caller): Entry | number {
    const node = this.resolve(parent);
    if (!node) return Errno.ENOENT;
    if (node.kind !== 'dir') return Errno.ENOTDIR;
    const child = 'mirror' in node ? node.mirror.child(node.hostPath, name, caller) : this.staticChild(node, name, caller);
    if (typeof child === 'number') return child;
    const attr = this.cachedAttr(child);
    if (typeof attr === 'number') return attr;
    return { ...attr, entryTtlMs: this.entryTtlMs(node, name, child) };
  }

  /** Names a shape shows per caller (shaped entries, added files) are never cached: the kernel asks
   * again on every path walk, with the walker's pid. */
  private entryTtlMs(dir: DirNode | MirroredNode, name: string, child: TreeNode | MirroredNode): number {
    if (!('mirror' in child)) return this.timeouts.staticMs;
    const perCaller = 'mirror' in dir ? child.mirror.shape?.addedFiles.includes(name) : dir.mirrorOf?.shape?.isShaped(name);
    return perCaller ? 0 : this.timeouts.fileAttrMs;
  }

  getattr(ino: number): CachedAttr | number {
    const node = this.resolve(ino);
    return node ? this.cachedAttr(node) : Errno.ENOENT;
  }

  readdir(ino: number, caller: Caller): DirEntry[] | number {
    const node = this.resolve(ino);
    if (!node) return Errno.ENOENT;
    if (node.kind !== 'dir') return Errno.ENOTDIR;
    const entries: DirEntry[] = [
      { name: '.', ino, kind: 'dir' },
      { name: '..', ino: 'mirror' in node ? node.mirror.parentIdOf(node.hostPath) : this.parents.get(ino)!, kind: 'dir' },
    ];
    const names = new Set<string>();
    if (!('mirror' in node)) {
      for (const [name, child] of node.children) {
        names.add(name);
        entries.push({ name, ino: child.ino, kind: child.kind });
      }
    }
    const mirrored = this.mirroredDir(node);
    if (mirrored) {
      const host = mirrored.mirror.list(mirrored.hostPath, caller);
      if (typeof host === 'number') return host;
      const shape = 'mirror' in node ? undefined : node.mirrorOf?.shape;
      const view = shape?.viewFor(caller);
      // Overridden names are listed once (lxcfs 5.0 listed `online` twice).
      for (const { name, node: child } of host) {
        if (!names.has(name) && !(view && shape!.isShaped(name))) entries.push({ name, ino: child.ino, kind: child.kind });
      }
      for (const [name, hostName] of view?.entries ?? []) {
        const child = mirrored.mirror.child(mirrored.hostPath, hostName, caller);
        if (typeof child !== 'number') entries.push({ name, ino: child.ino, kind: child.kind });
      }
    }
    return entries;
  }

  /** Static directory listings never change; mirrored ones may. */
  listingIsStable(ino: number): boolean {
    const node = this.resolve(ino);
    return !!node && !('mirror' in node) && !(node.kind === 'dir' && node.mirrorOf);
  }

  open(ino: number, flags: number): number {
    const node = this.resolve(ino);
    if (!node) return Errno.ENOENT;
    if (node.kind === 'dir') return Errno.EISDIR;
    // Mode 0444 means what it says, for root too (no default_permissions: the kernel leaves it to us),
    // except for files that take writes (lxcfs shows /proc/pressure/* as 0444 too while they take them).
    return (flags & O_ACCMODE) === O_RDONLY || this.hooks(ino) ? 0 : Errno.EACCES;
  }

  write(ino: number, fh: number, offset: number, data: Buffer, caller: Caller): { written: number } | number {
    return this.hooks(ino)?.write(fh, offset, data, caller) ?? Errno.EROFS;
  }

  poll(ino: number, fh: number, kh: number, notify: boolean, caller: Caller): { revents: number } | number {
    if (!this.timeouts.pollable) return Errno.ENOSYS;
    return this.hooks(ino)?.poll(fh, kh, notify, caller) ?? { revents: DEFAULT_POLLMASK };
  }

  release(ino: number, fh: number): void {
    this.hooks(ino)?.release(fh);
  }

  /** The handle hooks of a static file node, if it has any. */
  private hooks(ino: number): FileHandleHooks | undefined {
    const node = this.nodes.get(ino);
    return node?.kind === 'file' ? node.handles : undefined;
  }

  read(ino: number, caller: Caller): Uint8Array | number {
    const node = this.resolve(ino);
    if (!node) return Errno.ENOENT;
    if (node.kind === 'dir') return Errno.EISDIR;
    if ('mirror' in node) return node.kind === 'file' ? node.mirror.readFor(node, caller) : Errno.EINVAL;
    return node.render(caller);
  }

  readlink(ino: number): Uint8Array | number {
    const node = this.resolve(ino);
    if (!node || !('mirror' in node) || node.kind !== 'symlink') return Errno.EINVAL;
    return node.mirror.readlink(node);
  }

  access(ino: number, mask: number): number {
    const node = this.resolve(ino);
    if (!node) return Errno.ENOENT;
    const denied = node.kind === 'dir' ? W_OK : W_OK | X_OK;
    return mask & denied ? Errno.EACCES : 0;
  }

  /** A static node, or a mirrored host node (tagged with its mirror). */
  private resolve(ino: number): TreeNode | MirroredNode | undefined {
    const known = this.nodes.get(ino);
    if (known) return known;
    for (const mirror of this.mirrors) {
      const node = mirror.owns(ino) ? mirror.node(ino) : undefined;
      if (node) return node;
    }
    return undefined;
  }

  private staticChild(dir: DirNode, name: string, caller: Caller): TreeNode | MirroredNode | number {
    const child = dir.children.get(name);
    if (child) return child;
    const mirrored = this.mirroredDir(dir);
    if (!mirrored) return Errno.ENOENT;
    const shape = dir.mirrorOf?.shape;
    const view = shape?.isShaped(name) ? shape.viewFor(caller) : undefined;
    const hostName = view ? view.entries.get(name) : name;
    return hostName === undefined ? Errno.ENOENT : mirrored.mirror.child(mirrored.hostPath, hostName, caller);
  }

  /** The host directory a directory node shows, if it mirrors one. */
  private mirroredDir(node: DirNode | MirroredNode): { mirror: HostMirror; hostPath: string } | undefined {
    if ('mirror' in node) return { mirror: node.mirror, hostPath: node.hostPath };
    if (!node.mirrorOf) return undefined;
    return { mirror: this.mirrors.find((m) => m.rootIno === node.ino)!, hostPath: node.mirrorOf.hostRoot };
  }

  private cachedAttr(node: TreeNode | MirroredNode): CachedAttr | number {
    if ('mirror' in node) {
      const attr = node.mirror.attr(node);
      return typeof attr === 'number' ? attr : { attr, attrTtlMs: this.timeouts.fileAttrMs };
    }
    const attr: NodeAttr =
      node.kind === 'dir'
        ? { ino: node.ino, kind: 'dir', perm: DIR_PERM, size: 0, nlink: 2 + countDirs(node) }
        // Size 0, as procfs: the kernel then never fills the page cache, which every reader of the inode
        // shares, with one caller's content (mmap faults past the end instead; read() is direct I/O).
        : { ino: node.ino, kind: 'file', perm: FILE_PERM, size: 0, nlink: 1 };
    return { attr, attrTtlMs: node.kind === 'dir' ? this.timeouts.staticMs : this.timeouts.fileAttrMs };
  }
}

function countDirs(dir: DirNode): number {
  let count = 0;
  for (const child of dir.children.values()) if (child.kind === 'dir') count++;
  return count;
}
