// The lxcfs tree: its directories and files under their stable node ids (paths.ts), each file rendered
// by its bound view (bind.ts) or else its fallback (registry.ts). This module is loaded in every FUSE
// reader thread (see createFileSystem).

import path from 'node:path';
import { errnoOf } from '../fuse/host-mirror.js';
import {
  KeptFiles,
  keepFilesUpTo,
  readRenderedBytes,
  readRenderedFile,
  type RenderedFileOptions,
} from '../host/files.js';
import type { Log } from '../util/thread-log.js';
import type { FileSystem } from '../fuse/filesystem.js';
import { Host } from '../host/host.js';
import type { MirrorShape } from '../fuse/host-mirror.js';
import { bindFiles, type Views } from './bind.js';
import { encodeRendering } from './rendering.js';
import { cpuDirectoryShape } from './cpu-directory.js';
import { pressureHandles } from './psi-files.js';
import { PsiTable } from './psi-table.js';
import { MIRRORED_DIR, nodeIdOf, SERVED_FILES, TREE_DIRECTORIES } from './paths.js';
import { SERVED } from './registry.js';
import { ControlField, type TreeOptions } from './tree-options.js';
import { StaticTreeFileSystem, type DirNode, type FileHandleHooks, type FileNode } from '../fuse/static-tree.js';
import { PRESSURE_RESOURCES } from '../host/pressure.js';

// Reader threads load this module: they find the tenants (containers) of requests here too.
export { createTenancy } from './tenancy.js';

/** The parent directory of a tree path ('' is the root). */
function parentOf(treePath: string): string {
  return path.dirname(treePath).replace(/^\.$/, '');
}

/** A host file's bytes through kept files (valid until the thread's next read), or the errno. */
function readHostBytes(hostPath: string, options: RenderedFileOptions, files?: KeptFiles): Buffer | number {
  const content = readRenderedBytes(hostPath, options, files);
  return typeof content === 'string' ? errnoOf({ code: content }) : content;
}

// The cpu directory's files are kept open too, in a pool apart from the served files' (a large host has
// thousands, which lscpu reads in one burst: they would close those). createFileSystem gives it an eighth
// of the reader's share of descriptors.
let cpuDirectoryFiles = new KeptFiles(32);
/** sysfs makes an attribute's whole text at each read: a short read is all of it (but see PAGE_BYTES). */
const SYSFS_READ = { singleRecord: true } as const;
const readCpuDirectoryFile = (hostPath: string): Buffer | number =>
  readHostBytes(hostPath, SYSFS_READ, cpuDirectoryFiles);

/** Whether views are on (SIGUSR2 turns them off). */
export function virtualizing(control: SharedArrayBuffer): () => boolean {
  const fields = new Int32Array(control);
  return () => Atomics.load(fields, ControlField.VIRTUALIZE) !== 0;
}

/** The tree; `cpuShape` shapes the mirrored cpu directory per caller (shown as the host has it without);
 * `handles` makes files writable and pollable (PSI triggers). */
export function buildTree(
  options: TreeOptions,
  views: Views,
  cpuShape?: MirrorShape,
  handles: Partial<Record<string, FileHandleHooks>> = {},
): DirNode {
  const isVirtualizing = virtualizing(options.control);
  const dirs = new Map<string, DirNode>();
  for (const dirPath of TREE_DIRECTORIES) {
    const dir: DirNode = { kind: 'dir', ino: nodeIdOf(dirPath), children: new Map() };
    // Everything else in the host's cpu directory is shown read-only, its CPUs as the caller sees them.
    if (dirPath === MIRRORED_DIR) {
      dir.mirrorOf = {
        hostRoot: path.join(options.sysRoot, 'devices/system/cpu'),
        shape: cpuShape,
        readFile: readCpuDirectoryFile,
      };
    }
    if (dirPath !== '') dirs.get(parentOf(dirPath))!.children.set(path.basename(dirPath), dir);
    dirs.set(dirPath, dir);
  }
  for (const filePath of SERVED_FILES) {
    const file = SERVED[filePath];
    const [top, ...rest] = filePath.split('/');
    const hostPath = path.join(top === 'proc' ? options.procRoot : options.sysRoot, ...rest);
    const readOptions = { singleRecord: !file.recordwise };
    const textOptions = { ...readOptions, latin1: true };
    const readHost = (): Buffer | number => readHostBytes(hostPath, readOptions);
    const view = views[filePath];
    const node: FileNode = {
      kind: 'file',
      ino: nodeIdOf(filePath),
      handles: handles[filePath],
      render(caller) {
        // Read the host file only when needed (online, swaps and loadavg -l views never are), and once:
        // views read it as text, the fallback as bytes, which latin1 text encodes back to.
        let text: string | undefined;
        let textRead = false;
        const hostText = (): string | undefined => {
          if (!textRead) text = readRenderedFile(hostPath, textOptions);
          textRead = true;
          return text;
        };
        const virtualize = view !== undefined && isVirtualizing();
        const rendered = virtualize ? view(caller, hostText) : undefined;
        if (rendered !== undefined) return rendered;
        const content = text === undefined ? readHost() : encodeRendering(text);
        return typeof content === 'number' || file.fallback === undefined ? content : file.fallback.from(content);
      },
    };
    dirs.get(parentOf(filePath))!.children.set(path.basename(filePath), node);
  }
  return dirs.get('')!;
}

export function createFileSystem(options: unknown, log: Log): FileSystem {
  const treeOptions = options as TreeOptions;
  const cpuDirectoryShare = Math.floor(treeOptions.keptFilesPerReader / 8);
  keepFilesUpTo(treeOptions.keptFilesPerReader - cpuDirectoryShare);
  cpuDirectoryFiles.closeAll();
  cpuDirectoryFiles = new KeptFiles(cpuDirectoryShare);
  const host = new Host({ procRoot: treeOptions.procRoot, cgroupRoot: treeOptions.cgroupRoot });
  const cpuShape = cpuDirectoryShape({ host, options: treeOptions, log }, virtualizing(treeOptions.control));
  const handles: Partial<Record<string, FileHandleHooks>> = {};
  if (treeOptions.psiTable) {
    const context = {
      host,
      procRoot: treeOptions.procRoot,
      table: new PsiTable(treeOptions.psiTable),
      virtualizing: virtualizing(treeOptions.control),
      log,
    };
    for (const resource of PRESSURE_RESOURCES)
      handles[`proc/pressure/${resource}`] = pressureHandles(context, resource);
  }
  const tree = buildTree(treeOptions, bindFiles(treeOptions, log, host), cpuShape, handles);
  // Without triggers POLL answers ENOSYS, as lxcfs without --enable-psi-poll: the kernel then never sends
  // it again and nothing can wait on us in poll(2).
  return new StaticTreeFileSystem(tree, {
    staticMs: 24 * 3600_000,
    fileAttrMs: 1000,
    pollable: treeOptions.psiTable !== undefined,
  });
}
