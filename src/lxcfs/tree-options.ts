// The tree's options: what the daemon's configuration makes of it, and the state the serving process's
// main thread shares with every reader. Apart from the tree (tree.ts), which only the readers load.

import { keptFilesPerReader } from '../host/files.js';
import { allocateCpuState } from './cpu-state.js';
import { allocateLoadavgTable } from './loadavg-sampler.js';
import { PsiTable, type PsiTableMemory } from './psi-table.js';
import type { ViewOptions } from './served-file.js';

/** Flags shared by the daemon's main thread and every reader (Int32Array over a SharedArrayBuffer). */
export const ControlField = { VIRTUALIZE: 0 } as const;
export const CONTROL_FIELDS = 1;

export interface TreeOptions extends ViewOptions {
  sysRoot: string;
  /** ControlField values, written by the main thread (SIGUSR2 toggles VIRTUALIZE). */
  control: SharedArrayBuffer;
  /** How many kernel files each reader thread keeps open (keptFilesPerReader in host/files.ts). */
  keptFilesPerReader: number;
  /** lxcfs --enable-psi-poll: the PSI triggers (psi-table.ts) that pressure files opened for writing arm,
   * evaluated by the main thread's sampler; without it pressure files are read-only and POLL answers
   * ENOSYS. */
  psiTable?: PsiTableMemory;
}

/** The settings of the daemon's configuration that shape the tree. */
export type TreeSettings = Pick<
  ViewOptions,
  'procRoot' | 'cgroupRoot' | 'disableSwap' | 'disableZswap' | 'enableCfs'
> & { enableLoadavg: boolean; enablePsiPoll: boolean; readers: number };

/** The tree's options from the daemon's configuration (shared by the daemon and `show`); allocates the
 * state shared by every reader thread. `stores`: files to write the per-cgroup state through to
 * (state-files.ts). */
export function treeOptionsFrom(
  config: TreeSettings,
  control: SharedArrayBuffer,
  stores: { cpu?: number; loadavg?: number; psi?: number } = {},
): TreeOptions {
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
    // Armed by the readers, evaluated by the serving process's main thread (psi-sampler.ts).
    psiTable: config.enablePsiPoll ? PsiTable.allocate(undefined, stores.psi) : undefined,
    keptFilesPerReader: keptFilesPerReader(config.readers),
  };
}
