// The lxcfs tree: which files exist, their stable node ids, and where each one's content comes from.
// This module is loaded in every FUSE reader thread (see createFileSystem).

import path from 'node:path';
import { errnoOf } from '../fuse/host-mirror.js';
import { readRenderedBytes } from '../host/files.js';
import type { Logger } from 'pino';
import type { FileSystem } from '../fuse/filesystem.js';
import type { DaemonConfig } from './config.js';
import { createViews, type View, type ViewOptions } from './views.js';
import { allocateCpuState } from './cpu-views.js';
import { allocateLoadavgTable } from './loadavg-sampler.js';
import { StaticTreeFileSystem, type DirNode, type FileNode, type TreeNode } from '../fuse/static-tree.js';

/** Flags shared by the daemon's main thread and every reader (Int32Array over a SharedArrayBuffer). */
export const ControlField = { VIRTUALIZE: 0 } as const;
export const CONTROL_FIELDS = 1;

export interface TreeOptions extends ViewOptions {
  sysRoot: string;
  /** ControlField values, written by the main thread (SIGUSR2 toggles VIRTUALIZE). */
  control: SharedArrayBuffer;
}

/** One virtual file: its node id and where its host counterpart is. Its view, if any, comes from
 * createViews under the same path. */
interface VirtualFile {
  ino: number;
  /** Path of the host file relative to the proc or sys root; `recordwise` when the kernel hands it out a
   * record (CPU, disk, swap area, slab) at a time rather than in one piece (see readRenderedFile). */
  host: { root: 'proc' | 'sys'; path: string; recordwise?: boolean };
}

const MIRRORED_DIR = 'sys/devices/system/cpu';

// Node ids are part of the kernel's cache across daemon restarts: append, never renumber.
const ROOT = 1;
const DIRS = {
  proc: 2,
  'proc/pressure': 11,
  sys: 15,
  'sys/devices': 16,
  'sys/devices/system': 17,
  'sys/devices/system/cpu': 18,
} as const;

const FILES: Record<string, VirtualFile> = {
  'proc/cpuinfo': { ino: 3, host: { root: 'proc', path: 'cpuinfo', recordwise: true } },
  'proc/diskstats': { ino: 4, host: { root: 'proc', path: 'diskstats', recordwise: true } },
  'proc/loadavg': { ino: 5, host: { root: 'proc', path: 'loadavg' } },
  'proc/meminfo': { ino: 6, host: { root: 'proc', path: 'meminfo' } },
  'proc/slabinfo': { ino: 7, host: { root: 'proc', path: 'slabinfo', recordwise: true } },
  'proc/stat': { ino: 8, host: { root: 'proc', path: 'stat' } },
  'proc/swaps': { ino: 9, host: { root: 'proc', path: 'swaps', recordwise: true } },
  'proc/uptime': { ino: 10, host: { root: 'proc', path: 'uptime' } },
  'proc/pressure/cpu': { ino: 12, host: { root: 'proc', path: 'pressure/cpu' } },
  'proc/pressure/io': { ino: 13, host: { root: 'proc', path: 'pressure/io' } },
  'proc/pressure/memory': { ino: 14, host: { root: 'proc', path: 'pressure/memory' } },
  'sys/devices/system/cpu/online': { ino: 19, host: { root: 'sys', path: 'devices/system/cpu/online' } },
};

/** Paths of every file we serve, relative to the mountpoint (for tests and tools). */
export const SERVED_FILES = Object.keys(FILES);

/** The tree's options from the daemon's configuration (shared by the daemon and `show`); `stores`: files
 * to write the per-cgroup state through to (state-files.ts). */
export function treeOptionsFrom(config: DaemonConfig, control: SharedArrayBuffer, stores: { cpu?: number; loadavg?: number } = {}): TreeOptions {
  return {
    procRoot: config.procRoot,
    sysRoot: '/sys',
    cgroupRoot: config.cgroupRoot,
    disableSwap: config.disableSwap,
    disableZswap: config.disableZswap,
    enableCfs: config.enableCfs,
    cpuState: allocateCpuState(undefined, stores.cpu),
    enableLoadavg: config.enableLoadavg,
    // Updated by the serving process's main thread (loadavg-sampler.ts), read by every reader.
    loadavgTable: config.enableLoadavg ? allocateLoadavgTable(undefined, stores.loadavg) : undefined,
    control,
  };
}

/** Only the header of the host's slabinfo: the host file is root-only (0400), ours is 0444 and must
 * not leak the host's slab usage to containers (lxcfs does). Served even with virtualization off. */
function slabinfoHeader(host: Buffer): Buffer {
  const lines = host.toString('latin1').split('\n');
  return Buffer.from(lines.slice(0, 2).join('\n') + '\n');
}

export function buildTree(options: TreeOptions, views: Record<string, View>): DirNode {
  const control = new Int32Array(options.control);
  const root: DirNode = { kind: 'dir', ino: ROOT, children: new Map() };
  const dirs = new Map<string, DirNode>([['', root]]);
  for (const [dirPath, ino] of Object.entries(DIRS)) {
    const dir: DirNode = { kind: 'dir', ino, children: new Map() };
    // Everything else in the host's cpu directory is shown read-only as it is (lxcfs does the same).
    if (dirPath === MIRRORED_DIR) dir.mirrorOf = path.join(options.sysRoot, 'devices/system/cpu');
    dirs.get(path.dirname(dirPath).replace(/^\.$/, ''))!.children.set(path.basename(dirPath), dir);
    dirs.set(dirPath, dir);
  }
  for (const [filePath, file] of Object.entries(FILES)) {
    const hostPath = path.join(file.host.root === 'proc' ? options.procRoot : options.sysRoot, file.host.path);
    const readOptions = { singleRecord: !file.host.recordwise };
    const readHost = (): Buffer | number => {
      const content = readRenderedBytes(hostPath, readOptions);
      return typeof content === 'string' ? errnoOf({ code: content }) : content;
    };
    const view = views[filePath];
    const node: FileNode = {
      kind: 'file',
      ino: file.ino,
      render(caller) {
        // Read the host file only when needed: online, swaps and loadavg (-l) views never are.
        let host: Buffer | number | undefined;
        const readHostOnce = (): Buffer | number => (host ??= readHost());
        const hostText = (): string | undefined => {
          const content = readHostOnce();
          return typeof content === 'number' ? undefined : content.toString('latin1');
        };
        const virtualize = view !== undefined && Atomics.load(control, ControlField.VIRTUALIZE) !== 0;
        if (filePath === 'proc/slabinfo') {
          // The cgroup's own slab lines or the header: never the host's lines, whatever the mode.
          const content = readHostOnce();
          if (typeof content === 'number') return content;
          return (virtualize ? view(caller, hostText) : undefined) ?? slabinfoHeader(content);
        }
        return (virtualize ? view(caller, hostText) : undefined) ?? readHostOnce();
      },
    };
    dirs.get(path.dirname(filePath))!.children.set(path.basename(filePath), node as TreeNode);
  }
  return root;
}

export function createFileSystem(options: unknown, log: Logger): FileSystem {
  const treeOptions = options as TreeOptions;
  const tree = buildTree(treeOptions, createViews(treeOptions, log));
  return new StaticTreeFileSystem(tree, { staticMs: 24 * 3600_000, fileAttrMs: 1000 });
}
