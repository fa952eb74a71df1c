// lxcfs --enable-psi-poll: what a handle of /proc/pressure/{cpu,io,memory} opened for writing does. A
// write registers a PSI trigger (`some|full <threshold µs> <window µs>`) on the pressure the container's
// reads show (its cgroup2 cgroup's file, else the host's /proc/pressure file); poll(2) then reports
// POLLPRI once per event, POLLERR when the trigger is gone; close frees it. The triggers live in the
// shared PsiTable and are evaluated by the PsiSampler in the main thread.

import path from 'node:path';
import type { Log } from '../util/thread-log.js';
import { DEFAULT_POLLMASK, Errno, PollEvent } from '../fuse/abi.js';
import type { Caller } from '../fuse/filesystem.js';
import type { FileHandleHooks } from '../fuse/static-tree.js';
import { readTextFile } from '../host/files.js';
import type { Host } from '../host/host.js';
import type { PressureResource } from '../host/pressure.js';
import { renderPressure } from '../views/pressure.js';
import { PsiTable } from './psi-table.js';
import { parsePressureTotals, parseTrigger } from './psi-trigger.js';

/** What the kernel answers for a pressure file without a trigger, and for one whose cgroup is gone. */
const NO_TRIGGER = DEFAULT_POLLMASK | PollEvent.ERR | PollEvent.PRI;

export interface PsiContext {
  host: Host;
  procRoot: string;
  table: PsiTable;
  /** Whether views are on (off: every file shows the host's values, triggers watch them too). */
  virtualizing: () => boolean;
  log: Log;
}

/** The pressure file a container's reads of /proc/pressure/<resource> show, and its text. */
function watchedFile(
  context: PsiContext,
  resource: PressureResource,
  caller: Caller,
): { path: string; text: string; owner: number } | number {
  const container = context.host.callers.resolve(caller.pid, caller.tenant);
  const owner = container.ok ? container.value.pidNamespace : 0;
  if (container.ok && context.virtualizing()) {
    const own = context.host.pressureFile(container.value.cgroupPid, resource);
    if (own.ok && renderPressure(own.value.text) !== undefined) return { ...own.value, owner };
  }
  const hostPath = path.join(context.procRoot, 'pressure', resource);
  const text = readTextFile(hostPath);
  return text === undefined ? Errno.EINVAL : { path: hostPath, text, owner };
}

export function pressureHandles(context: PsiContext, resource: PressureResource): FileHandleHooks {
  const { table, log } = context;
  return {
    write(fh, offset, data, caller) {
      // One trigger per open file, as the kernel (which says so whatever the offset).
      if (table.find(fh) >= 0) return Errno.EBUSY;
      // lxcfs: one write at offset 0 carries the whole trigger.
      if (offset !== 0 || data.length === 0) return Errno.EINVAL;
      const file = watchedFile(context, resource, caller);
      if (typeof file === 'number') return file;
      const totals = parsePressureTotals(file.text);
      if (totals === undefined) return Errno.EINVAL;
      const spec = parseTrigger(data, totals.full !== undefined);
      if (typeof spec === 'number') return spec;
      const armed = table.arm(fh, file.owner, spec, file.path);
      if (armed === 'busy') return Errno.EBUSY; // a concurrent write on the same handle won
      if (armed === 'share' || armed === 'full' || armed === 'path') {
        if (armed !== 'share' || table.claimShareWarning(file.owner)) {
          const why = {
            share: `a container may arm ${table.share} PSI triggers at once; more fail with ENOSPC until it closes some (logged once per container)`,
            full: `${table.capacity} PSI triggers are armed, the most the daemon keeps; more fail with ENOSPC`,
            path: "the pressure file's path is too long to watch; the trigger fails with ENOSPC",
          }[armed];
          log.warn({ pidNamespace: `pid:[${file.owner}]`, pid: caller.pid, resource, path: file.path }, why);
        }
        return Errno.ENOSPC;
      }
      log.debug({ pid: caller.pid, resource, path: file.path, ...spec }, 'PSI trigger armed');
      return { written: data.length };
    },
    poll(fh, kh) {
      const slot = table.find(fh);
      if (slot < 0) return { revents: NO_TRIGGER };
      table.setPollHandle(slot, kh);
      if (table.isGone(slot)) return { revents: NO_TRIGGER };
      return { revents: table.takeEvent(slot) ? DEFAULT_POLLMASK | PollEvent.PRI : DEFAULT_POLLMASK };
    },
    release(fh) {
      table.free(fh);
    },
  };
}
