// The paths of the lxcfs tree, relative to the mountpoint. No imports: the remount helper and other tools
// that only need the names load this alone, not the views behind them.

/** Every directory and file of the tree, in the order their node ids are derived from: the n-th entry
 * (the root first) has id n + 1. The kernel keeps node ids cached, and a container's bind mount keeps
 * its file's id for life, also across upgrades of the daemon: entries are appended, never reordered. */
export const TREE_PATHS = [
  '',
  'proc',
  'proc/cpuinfo',
  'proc/diskstats',
  'proc/loadavg',
  'proc/meminfo',
  'proc/slabinfo',
  'proc/stat',
  'proc/swaps',
  'proc/uptime',
  'proc/pressure',
  'proc/pressure/cpu',
  'proc/pressure/io',
  'proc/pressure/memory',
  'sys',
  'sys/devices',
  'sys/devices/system',
  'sys/devices/system/cpu',
  'sys/devices/system/cpu/online',
  'sys/devices/system/cpu/present',
  'sys/devices/system/cpu/possible',
  'sys/devices/system/cpu/offline',
] as const;

export type TreePath = (typeof TREE_PATHS)[number];

/** The directories of the tree. */
export const TREE_DIRECTORIES = [
  '',
  'proc',
  'proc/pressure',
  'sys',
  'sys/devices',
  'sys/devices/system',
  'sys/devices/system/cpu',
] as const;

export type DirectoryPath = (typeof TREE_DIRECTORIES)[number];

/** A file the daemon renders per caller. */
export type ServedPath = Exclude<TreePath, DirectoryPath>;

/** Every served file, in tree order. */
export const SERVED_FILES: readonly ServedPath[] = TREE_PATHS.filter(
  (p): p is ServedPath => !(TREE_DIRECTORIES as readonly string[]).includes(p),
);

/** Below this directory the tree shows the host's own entries, read-only, next to the served ones. */
export const MIRRORED_DIR: DirectoryPath = 'sys/devices/system/cpu';

/** The node id of a tree path (see TREE_PATHS). */
export function nodeIdOf(path: TreePath): number {
  return TREE_PATHS.indexOf(path) + 1;
}
