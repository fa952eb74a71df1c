// The per-cgroup state /proc/stat keeps across reads. It lives in a SharedTable allocated once in the
// main thread: consecutive reads of one container may be served by different reader threads.

import fs from 'node:fs';
import { cgroupExists } from '../host/cpu.js';
import { parseCpuList } from '../views/cpuset.js';
import { cgroup2ViewFieldCount, cpuViewFieldCount } from '../views/stat.js';
import { SharedTable, type SharedTableMemory } from './shared-table.js';

/** Per-cgroup CPU state: the table and how many CPUs each record holds. */
export interface CpuStateMemory {
  table: SharedTableMemory;
  cpus: number;
}

/** Cgroups whose /proc/stat state is kept; records of removed cgroups are dropped, and beyond this the
 * least recently read give way (see SharedTable). */
const CPU_STATE_CAPACITY = 2048;
/** Records one container (pid namespace) may hold. */
export const CPU_STATE_SHARE = 64;
/** How often the records of removed cgroups are dropped (lxcfs: 10 s). */
const SWEEP_INTERVAL_SECONDS = 10;
const SWEEP_KEY = '#sweep';

/** Possible CPUs of the host (/sys/devices/system/cpu/possible), which bounds every CPU number. */
export function possibleCpuCount(sysRoot = '/sys'): number {
  try {
    const cpus = parseCpuList(fs.readFileSync(`${sysRoot}/devices/system/cpu/possible`, 'utf8'));
    if (cpus.length > 0) return cpus[cpus.length - 1]! + 1;
  } catch {
    // Not a Linux sysfs (tests with fixture roots): fall through.
  }
  return 64;
}

/** The shared state of /proc/stat; call once in the main thread and hand it to every reader. `store`:
 * a file to write it through to (see SharedTable). */
export function allocateCpuState(cpus = possibleCpuCount(), store?: number): CpuStateMemory {
  const fields = Math.max(cpuViewFieldCount(cpus), cgroup2ViewFieldCount(cpus), 1);
  return { table: SharedTable.allocate(CPU_STATE_CAPACITY, fields, { share: CPU_STATE_SHARE, store }), cpus };
}

/** One reader thread's handle on the shared CPU state. */
export class CpuStateTable {
  private readonly table: SharedTable;
  /** CPUs each record holds. */
  readonly cpus: number;
  constructor(memory: CpuStateMemory) {
    this.table = new SharedTable(memory.table);
    this.cpus = memory.cpus;
  }

  /** Advances the record of `key`, owned by the pid namespace `owner`, under the table's lock. */
  update(key: string, owner: number, advance: (record: Float64Array, created: boolean) => string): string {
    return this.table.update(key, owner, advance);
  }

  /** Drops, at most every 10 s, the records of cgroups that no longer exist. */
  sweep(now: number): void {
    const due = this.table.update(SWEEP_KEY, 0, (fields) => {
      if (now - fields[0]! < SWEEP_INTERVAL_SECONDS && now >= fields[0]!) return false;
      fields[0] = now;
      return true;
    });
    if (!due) return;
    const keys: string[] = [];
    this.table.sweep((key) => (keys.push(key), true));
    // Directory checks outside the lock; a cgroup created again meanwhile just starts over.
    const gone = new Set(keys.filter((key) => key !== SWEEP_KEY && !cgroupExists(key.slice(key.indexOf(':') + 1))));
    if (gone.size > 0) this.table.sweep((key) => !gone.has(key));
  }
}
