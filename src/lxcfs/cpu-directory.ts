// /sys/devices/system/cpu below the served files: the host's directory, read-only, shaped per caller so
// that it shows the container's visible CPUs only (cpuN entries under the numbers of `online`, each the
// host CPU it stands for, online), their CPU masks and lists in the container's numbering.

import path from 'node:path';
import type { MirrorShape, MirrorView } from '../fuse/host-mirror.js';
import { isCpuSetFile, rewriteCpuFile, shownCpus } from '../views/cpu-topology.js';
import type { VisibleCpus } from '../views/cpuset.js';
import { cpusOf } from './cpu-files.js';
import type { FileContext } from './served-file.js';
import { encodeRendering } from './rendering.js';
import { BoundedMap } from '../util/bounded-map.js';

const CPU_ENTRY = /^cpu\d+$/;
const ONLINE_OF_ENTRY = /^cpu\d+\/online$/;

/** The cpu directory as a container with these CPUs sees it. */
function cpuDirectoryView(cpus: VisibleCpus): MirrorView {
  const shown = shownCpus(cpus);
  const toShown = new Map([...shown].map(([number, hostCpu]) => [hostCpu, number]));
  const entries = new Map([...shown].map(([number, hostCpu]) => [`cpu${number}`, `cpu${hostCpu}`]));
  return {
    entries,
    rewrite(relative, host) {
      const name = path.basename(relative);
      // The host's cpu0 usually has no `online` (it cannot be unplugged): every CPU shown is online.
      if (ONLINE_OF_ENTRY.test(relative)) return encodeRendering('1\n');
      const text = rewriteCpuFile(name, host.toString('latin1'), toShown);
      return text === undefined ? host : encodeRendering(text);
    },
  };
}

/** The shape of the cpu directory; `virtualizing` says whether views are on (SIGUSR2 turns them off). */
export function cpuDirectoryShape({ host, options }: FileContext, virtualizing: () => boolean): MirrorShape {
  const views = new BoundedMap<string, MirrorView>(1024);
  return {
    isShaped: (name) => CPU_ENTRY.test(name),
    addedFiles: ['online'],
    rewrites: (relative) => isCpuSetFile(path.basename(relative)) || ONLINE_OF_ENTRY.test(relative),
    viewFor(caller) {
      if (!virtualizing()) return undefined;
      // Whoever `online` is rendered for sees the directory that agrees with it; the rest the host's.
      const container = host.callers.resolve(caller.pid, caller.tenant);
      if (!container.ok) return undefined;
      const cpus = cpusOf(host, options.enableCfs, container.value);
      if (!cpus.ok || cpus.value.count === 0) return undefined;
      const { count, cfsView, cpusetText } = cpus.value;
      // The view depends on nothing else: kept by these, as the parsed cpuset is kept by its text.
      const key = `${count} ${cfsView ? 'cfs' : ''} ${cpusetText}`;
      let view = views.get(key);
      if (view === undefined) views.set(key, (view = cpuDirectoryView(cpus.value)));
      return view;
    },
  };
}
