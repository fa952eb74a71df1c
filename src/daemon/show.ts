// `lxcfs-ts show FILE [--pid N]`: what process N would read from one of our files, computed by the same
// code the daemon runs, without any mount. Answers "what does container X see?".

import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { Errno } from '../fuse/abi.js';
import { CONFIG_ENV_VAR, resolveConfig, type DaemonConfig } from './config.js';
import type { Logger } from 'pino';
import { createLogger } from '../util/log.js';
import { bindFiles } from '../lxcfs/bind.js';
import { SERVED_FILES } from '../lxcfs/paths.js';
import { buildTree } from '../lxcfs/tree.js';
import { CONTROL_FIELDS, ControlField, treeOptionsFrom } from '../lxcfs/tree-options.js';
import type { DirNode, FileNode } from '../fuse/static-tree.js';

/** Accepts `meminfo`, `proc/meminfo`, `/proc/meminfo`, `online`, `pressure/cpu`, ... */
export function servedFileFor(name: string): string | undefined {
  const wanted = name.replace(/^\/+/, '');
  return SERVED_FILES.find((file) => file === wanted || file.endsWith('/' + wanted));
}

function findFile(root: DirNode, file: string): FileNode {
  let node: DirNode | FileNode = root;
  for (const part of file.split('/')) node = (node as DirNode).children.get(part)!;
  return node as FileNode;
}

/** Renders any served file for any process with the daemon's own code (virtualization on), no mount
 * needed: `file` as in SERVED_FILES; the result is the content (a copy: the tree's own is valid only
 * until it renders again) or an errno. */
export function createRenderer(config: DaemonConfig, log: Logger): (file: string, pid: number) => Uint8Array | number {
  const control = new SharedArrayBuffer(CONTROL_FIELDS * 4);
  Atomics.store(new Int32Array(control), ControlField.VIRTUALIZE, 1);
  const treeOptions = treeOptionsFrom(config, control);
  const root = buildTree(treeOptions, bindFiles(treeOptions, log));
  return (file, pid) => {
    const content = findFile(root, file).render({ pid, uid: 0, gid: 0 });
    return typeof content === 'number' ? content : Buffer.from(content);
  };
}

export function showCommand(): Command {
  return new Command('show')
    .description('print what a process would read from one of our files (the daemon\'s own code, no mount needed)')
    .argument('<file>', `one of: ${SERVED_FILES.map((f) => f.split('/').pop()).join(', ')} (or a path like proc/meminfo)`)
    .option('--pid <pid>', 'the reading process (default: this one)')
    .option('--config <file>', `config file as for the daemon (or $${CONFIG_ENV_VAR})`)
    .action((name: string, options: { pid?: string; config?: string }) => {
      const file = servedFileFor(name);
      if (!file) throw new ShowError(`unknown file "${name}"; expected one of ${SERVED_FILES.join(', ')}`);
      const pid = options.pid === undefined ? process.pid : Number(options.pid);
      if (!Number.isInteger(pid) || pid <= 0) throw new ShowError(`--pid must be a positive whole number, not "${options.pid}"`);
      const { config } = resolveConfig({ cli: {}, configPath: options.config, env: process.env });
      if (!fs.existsSync(path.join(config.procRoot, String(pid)))) throw new ShowError(`there is no process ${pid}`);
      const log = createLogger({ level: config.logLevel, format: config.logFormat }, { pid: process.pid }, 2);
      const content = createRenderer(config, log)(file, pid);
      if (typeof content === 'number') {
        const why = Object.entries(Errno).find(([, code]) => code === content)?.[0] ?? `errno ${content}`;
        throw new ShowError(`cannot render ${file} for process ${pid}: ${why}`);
      }
      process.stdout.write(content);
    });
}

export class ShowError extends Error {
  override name = 'ShowError';
}
