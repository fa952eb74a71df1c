// Binds every served file in one reader thread, and gives each the same first step: resolve the request
// pid to its container, render, and on any failure log why (at debug) and leave the file to its fallback.

import type { Log } from '../util/thread-log.js';
import type { Caller as RequestCaller } from '../fuse/filesystem.js';
import { Host } from '../host/host.js';
import { SERVED_FILES, type ServedPath } from './paths.js';
import { SERVED } from './registry.js';
import type { FileContext, HostText, ViewOptions } from './served-file.js';
import { encodeRendering } from './rendering.js';

/** A bound file: its content for one request, or undefined for its fallback. The content is valid until
 * the thread renders again (see rendering.ts). */
export type View = (caller: RequestCaller, hostText: HostText) => Buffer | undefined;

/** The views of this configuration; a file without one always serves its fallback. */
export type Views = Partial<Record<ServedPath, View>>;

export function bindFiles(
  options: ViewOptions,
  log: Log,
  host = new Host({ procRoot: options.procRoot, cgroupRoot: options.cgroupRoot }),
): Views {
  if (host.layout.problem) log.warn({ problem: host.layout.problem }, 'cgroup layout: views will show host values');
  const debug = log.isLevelEnabled('debug');
  const context: FileContext = { host, options, log };
  const views: Views = {};
  for (const file of SERVED_FILES) {
    const render = SERVED[file].bind(context);
    if (render === undefined) continue;
    views[file] = (caller, hostText) => {
      const container = host.callers.resolve(caller.pid, caller.tenant);
      const content = container.ok ? render(container.value, hostText) : container;
      if (content.ok) return encodeRendering(content.value);
      if (debug) log.debug({ file, pid: caller.pid, reason: content.error }, 'serving the fallback');
      return undefined;
    };
  }
  return views;
}
