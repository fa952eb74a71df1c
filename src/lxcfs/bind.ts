// Binds every served file in one reader thread, and gives each the same first step: resolve the request
// pid to its container, render, and on any failure log why (at debug) and leave the file to its fallback.

import type { Log } from '../util/thread-log.js';
import type { Caller as RequestCaller } from '../fuse/filesystem.js';
import { Host } from '../host/host.js';
import { SERVED_FILES, type ServedPath } from './paths.js';
import { SERVED } from './registry.js';
import type { FileContext, HostText, ViewOptions } from './served-file.js';

/** A bound file: its content for one request, or undefined for its fallback. The content is valid until
 * the thread renders again (see encodeRendering). */
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

// A rendering is copied into the reply, or the handle's snapshot, before its thread renders again, so one
// buffer per thread holds every rendering's bytes. Buffer.from() took each from Node's 8 kB pools, whose
// memory comes from malloc and, once the pool has outlived two young collections, goes back only at a
// full collection: the serving process's malloc heap grew by about 20 MB over its first 400,000 reads.
let renderingBytes = Buffer.allocUnsafe(16 * 1024);

/** The latin1 bytes of `text` (one per character), in this thread's rendering buffer. */
export function encodeRendering(text: string): Buffer {
  if (text.length > renderingBytes.length)
    renderingBytes = Buffer.allocUnsafe(Math.max(text.length, renderingBytes.length * 2));
  return renderingBytes.subarray(0, renderingBytes.write(text, 0, 'latin1'));
}
